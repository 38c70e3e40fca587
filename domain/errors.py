"""Errors a launcher can act on: each names the contact or file, the field, and what was expected."""

from __future__ import annotations


class InvalidLaunch(ValueError):
    """A launch refused before anything starts; carries every problem found, not just the first."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return f"cannot launch: {self.problems[0]}"
        return "cannot launch:\n" + "\n".join(f"  - {p}" for p in self.problems)


class InvalidDefinition(InvalidLaunch):
    """A scheme or procedure file that cannot be used; every problem names the file and path."""

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return f"invalid definitions: {self.problems[0]}"
        return "invalid definitions:\n" + "\n".join(f"  - {p}" for p in self.problems)
