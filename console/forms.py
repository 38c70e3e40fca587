"""A procedure's launch form as the browser sends it, and the launcher's refusals put back
beside the fields they are about.

Field inputs are named after the definition's form fields: `f:NAME` for a text field, and for
a contacts field `c:NAME` (each contact ticked) and `n:NAME` (other numbers, typed);
`text_language` says which language the texts are written in. The launcher (`launching.py`,
the same as the CLI's) says what is wrong in sentences that name the field, the step, or the
destination as it was given; `place` finds the field from that.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from multidict import MultiMapping

from procedures.definitions import ProcedureDefinition

TEXT, CHOSEN, NUMBERS = "f:", "c:", "n:"
RECORD, FORCE, TEXT_LANGUAGE = "record", "force", "text_language"
NUMBER_SEPARATORS = re.compile(r"[\n,;]+")
FIELD_PROBLEM = re.compile(r"^field '(?P<name>[^']+)'(?: \([^)]*\))? (?P<rest>.+)$")
STEP_PROBLEM = re.compile(r"^step (?P<step>\d{3}): (?P<rest>.+)$")
SMS_PROBLEM = re.compile(r"^SMS for \S+ \(step \d{3}\)")
"""An SMS of too many parts: the text typed in is what can be shortened."""
QUOTED = re.compile(r"'([^']+)'")
LANGUAGE_PROBLEM = re.compile(r"^language of the texts: (?P<rest>.+)$")


@dataclass(frozen=True)
class FilledForm:
    text: dict[str, str] = field(default_factory=dict)
    chosen: dict[str, list[str]] = field(default_factory=dict)
    """Contacts ticked in each contacts field."""
    numbers: dict[str, str] = field(default_factory=dict)
    """What was typed in each contacts field's box for other numbers."""
    record: bool = False
    force: bool = False
    text_language: str = ""
    """The language the texts are written in, as chosen; "": the procedure's."""

    @classmethod
    def read(cls, procedure: ProcedureDefinition, form: MultiMapping[object]) -> FilledForm:
        def text(name: str) -> str:
            value = form.get(name)
            return value if isinstance(value, str) else ""

        texts, chosen, numbers = {}, {}, {}
        for form_field in procedure.form:
            if form_field.kind == "text":
                texts[form_field.name] = text(TEXT + form_field.name)
            else:
                ticked = form.getall(CHOSEN + form_field.name, [])
                chosen[form_field.name] = [v for v in ticked if isinstance(v, str) and v]
                numbers[form_field.name] = text(NUMBERS + form_field.name)
        return cls(texts, chosen, numbers, record=bool(form.get(RECORD)), force=bool(form.get(FORCE)),
                   text_language=text(TEXT_LANGUAGE).strip())  # fmt: skip

    @classmethod
    def blank(cls, procedure: ProcedureDefinition) -> FilledForm:
        return cls(record=procedure.record)

    def destinations(self, name: str) -> list[str]:
        typed = [d.strip() for d in NUMBER_SEPARATORS.split(self.numbers.get(name, "")) if d.strip()]
        return [*self.chosen.get(name, []), *typed]

    def fields(self) -> dict[str, str]:
        """The form as `launching` takes it: text, or `id,id,+41…` for a contacts field."""
        return {**self.text, **{name: ",".join(self.destinations(name)) for name in self.chosen}}

    def hidden(self) -> list[tuple[str, str]]:
        """The form again as hidden inputs, carried through the confirmation page."""
        pairs = [(TEXT + name, value) for name, value in self.text.items()]
        pairs += [(CHOSEN + name, value) for name, ids in self.chosen.items() for value in ids]
        pairs += [(NUMBERS + name, value) for name, value in self.numbers.items() if value]
        pairs += [(TEXT_LANGUAGE, self.text_language)] if self.text_language else []
        return pairs + ([(RECORD, "on")] if self.record else [])


@dataclass
class Placed:
    """The launcher's problems: those about a field, by field name, and the others."""

    general: list[str] = field(default_factory=list)
    by_field: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str | None, problem: str) -> None:
        if name is None:
            self.general.append(problem)
        else:
            self.by_field.setdefault(name, []).append(problem)


def place(procedure: ProcedureDefinition, filled: FilledForm, problems: Iterable[str]) -> Placed:
    """Each problem beside the field it is about, worded for that place: `field 'body' is
    required` becomes `This is required.` beside the body field."""
    placed = Placed()
    for problem in problems:
        if found := LANGUAGE_PROBLEM.match(problem):
            placed.add(TEXT_LANGUAGE, f"{found['rest']}.")
        elif found := FIELD_PROBLEM.match(problem):
            name = found["name"] if procedure.field(found["name"]) else None
            placed.add(name, f"This {found['rest']}." if name else problem)
        elif found := STEP_PROBLEM.match(problem):
            name = _contacts_field(procedure, filled, found["step"], QUOTED.findall(found["rest"]))
            alone = name is not None and _steps_using(procedure, name) == 1
            placed.add(name, found["rest"] if alone else problem)
        elif SMS_PROBLEM.match(problem):
            texts = [f.name for f in procedure.form if f.kind == "text"]
            placed.add(texts[0] if len(texts) == 1 else None, problem)
        else:
            placed.add(_contacts_field(procedure, filled, None, QUOTED.findall(problem)), problem)
    return placed


def _contacts_field(
    procedure: ProcedureDefinition, filled: FilledForm, step: str | None, named: list[str]
) -> str | None:
    """The contacts field holding a destination the problem names; else the step's only one."""
    candidates = [
        name for s in procedure.steps if step is None or s.number == step for name in s.contact_fields
    ]
    for name in candidates:
        if any(destination in filled.destinations(name) for destination in named):
            return name
    return candidates[0] if step is not None and len(set(candidates)) == 1 else None


def _steps_using(procedure: ProcedureDefinition, name: str) -> int:
    return sum(name in step.contact_fields for step in procedure.steps)
