"""Made-up people at real sizes, shared by the benchmarks and the scale tests: person `n` has a
work phone, a home phone, a mobile and an email address, all distinct and all valid (Swiss
numbering plan, so `phonenumbers` accepts them), for up to 50,000 people."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from carrier.simulator.scenario import Behaviour, Scenario

LIMIT = 50_000


def work(n: int) -> str:
    return f"+4121{5_550_000 + _checked(n)}"


def home(n: int) -> str:
    return f"+4122{5_550_000 + _checked(n)}"


def mobile(n: int) -> str:
    return f"+4179{5_550_000 + _checked(n)}"


def email(n: int) -> str:
    return f"p{_checked(n)}@example.com"


def person_id(n: int) -> str:
    return f"p{n:05d}"


def _checked(n: int) -> int:
    if not 0 <= n < LIMIT:
        raise ValueError(f"person {n}: the numbering plan holds {LIMIT} people")
    return n


def contacts(count: int, *, phones: bool = True, first: int = 0) -> list[dict[str, Any]]:
    """`count` people from number `first`; without `phones` they have a mobile and an email only,
    as residents warned by SMS and email are known (a messages-only step calls nobody)."""
    people = []
    for n in range(first, first + count):
        entry: dict[str, Any] = {
            "id": person_id(n),
            "name": f"Person {n}",
            "mobile": mobile(n),
            "email": email(n),
        }
        if phones:
            entry["voice_pro"] = work(n)
            entry["voice_home"] = home(n)
        people.append(entry)
    return people


def write_contacts(path: Path, people: Iterable[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"contacts": list(people)}, sort_keys=False), encoding="utf-8")
    return path


def scenario(
    count: int,
    *,
    at_work: Callable[[int], Behaviour],
    at_home: Callable[[int], Behaviour],
    ring_seconds: float,
    first: int = 0,
) -> Scenario:
    """How each person's work and home phones answer (every other number: no answer)."""
    numbers: dict[str, Behaviour] = {}
    for n in range(first, first + count):
        numbers[work(n)] = at_work(n)
        numbers[home(n)] = at_home(n)
    return Scenario(ring_seconds=ring_seconds, default="no-answer", numbers=dict(numbers))
