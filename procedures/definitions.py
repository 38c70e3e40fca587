"""Alert schemes and procedures as files a team can review and version.

    schemes.yaml                    procedures/NAME.yaml
    schemes:                        name: conference-call
      - name: CONFCALL              title: Conference call
        media:                      form:
          - {medium: voice_pro}       - {name: body, kind: text, required: false}
          - {medium: voice_home,      - {name: Contacts.S001, kind: contacts}
             after: 1m}             steps:
                                      - number: "001"
                                        objective: conference
                                        percent: 100
                                        contact_fields: [Contacts.S001]
                                        message: "#{Body}"
                                        scheme: CONFCALL
                                        deadline: 2m
                                        post_objective: {subject: ..., body: ...}

Everything is checked when loaded (pydantic, then the templates' fields), and every error names
the file and the path inside it, so a broken definition never reaches a crisis.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from domain.errors import InvalidDefinition, InvalidLaunch
from domain.messages import check_fields
from i18n.languages import SHIPPED

M = TypeVar("M", bound=BaseModel)
Medium = Literal["voice_pro", "voice_home", "voice_mobile", "sms", "email"]
Objective = Literal["conference", "acknowledgement", "information"]
BRIDGE_FIELDS = frozenset({"ConferenceNumber", "Pin"})
"""Fields of procedures with a conference step: the bridge's number and PIN. Post-objective
messages may also name their recipient, `#{Contact.Name}` and `#{Contact.Id}`."""
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, None: 1}


def _duration(value: Any) -> Any:
    """`90`, `"90s"`, `"2m"`, `"4h"`: seconds, minutes, hours."""
    if isinstance(value, str):
        found = _DURATION.match(value)
        if not found:
            raise ValueError(f"{value!r} is not a duration (write 30s, 2m or 4h)")
        return timedelta(seconds=float(found[1]) * _UNITS[found[2]])
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SchemeMedium(Strict):
    medium: Medium
    after: Duration = timedelta(0)


class SchemeDefinition(Strict):
    """An administrator's alert scheme: which medium to try, when, for whoever is not reached."""

    name: str = Field(min_length=1)
    media: tuple[SchemeMedium, ...] = Field(min_length=1)
    ring_timeout: Duration = timedelta(seconds=30)


class SchemeBook(Strict):
    schemes: tuple[SchemeDefinition, ...] = Field(min_length=1)
    default: str
    """The scheme of a contact who has no personal one, when a step names none."""

    @model_validator(mode="after")
    def _names(self) -> SchemeBook:
        names = [s.name for s in self.schemes]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"scheme names must be unique: {', '.join(twice)} appear twice")
        if self.default not in names:
            raise ValueError(f"default scheme {self.default!r} is not defined")
        return self

    def get(self, name: str) -> SchemeDefinition | None:
        return next((s for s in self.schemes if s.name == name), None)


class FormField(Strict):
    """What the launcher fills in: a text, or a selection of contacts (the spec's system data
    `Contacts.S001`)."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.]*$")
    kind: Literal["text", "contacts"] = "text"
    label: str = ""
    required: bool = True
    max_length: int = Field(default=500, ge=1)

    @property
    def template_name(self) -> str:
        """How messages name a text field: `body` is `#{Body}`, as in the spec."""
        return self.name[:1].upper() + self.name[1:]


class PostObjectiveMessage(Strict):
    subject: str = Field(min_length=1)
    body: str = Field(min_length=1)
    sms: str | None = None
    """The SMS text, when the body is too long for an SMS (at most 3 parts; `n°` makes it UCS-2)."""


def _shipped_language(value: Any) -> Any:
    """A key of texts by language: a language rallycall ships (`fr`, not `fr-CH`: a text is
    for everyone served in French)."""
    if not isinstance(value, str) or value not in SHIPPED:
        raise ValueError(f"{value!r} is not a language rallycall ships ({', '.join(SHIPPED)})")
    return value


Language = Annotated[str, BeforeValidator(_shipped_language)]


class StepDefinition(Strict):
    number: str = Field(pattern=r"^\d{3}$")
    objective: Objective
    percent: int = Field(ge=1, le=100)
    contacts: tuple[str, ...] = ()
    """Fixed destinations: contact ids or E.164 numbers."""
    contact_fields: tuple[str, ...] = ()
    """Destinations chosen at launch: names of `contacts` form fields."""
    message: str | dict[Language, str] = ""
    """Spoken on calls and sent by the scheme's sms/email media: one text in the procedure's
    language, or one per language (`{fr: ..., de: ...}`)."""
    scheme: str | None = None
    """A global scheme for every destination; without it each contact's personal scheme."""
    deadline: Duration
    post_objective: PostObjectiveMessage | dict[Language, PostObjectiveMessage] | None = None
    """One message, or one per language (`{fr: {subject: ..., body: ...}, de: ...}`)."""
    run: Literal["always", "if_previous_not_reached"] = "always"

    def messages(self, language: str) -> dict[str, str]:
        """The message by language; one text is in the procedure's `language`."""
        return dict(self.message) if isinstance(self.message, dict) else {language: self.message}

    def post_objectives(self, language: str) -> dict[str, PostObjectiveMessage]:
        if self.post_objective is None:
            return {}
        if isinstance(self.post_objective, PostObjectiveMessage):
            return {language: self.post_objective}
        return dict(self.post_objective)

    def by_language(self) -> bool:
        return isinstance(self.message, dict) or isinstance(self.post_objective, dict)

    @model_validator(mode="after")
    def _has_destinations(self) -> StepDefinition:
        if not self.contacts and not self.contact_fields:
            raise ValueError("a step needs destinations: contacts and/or contact_fields")
        return self


class ProcedureDefinition(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = Field(min_length=1)
    form: tuple[FormField, ...] = ()
    steps: tuple[StepDefinition, ...] = Field(min_length=1)
    record: bool = False
    after_drop: Literal["sms", "call", "none"] = "sms"
    """Someone whose leg drops out of the bridge gets the dial-in number and PIN by SMS at once,
    or is called back into it, or nothing."""
    call_me_link: bool = False
    """Each person's PIN SMS may carry `#{CallMeLink}`: a personal link that makes the bridge
    call them."""
    language: Language | None = None
    """The language its texts are written in, and anyone's whose own is not shipped; unset:
    the installation's (`RALLYCALL_LANGUAGE`). Required when texts are given by language."""

    def field(self, name: str) -> FormField | None:
        return next((f for f in self.form if f.name == name), None)

    def has_conference(self) -> bool:
        return any(step.objective == "conference" for step in self.steps)


def _path(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top)"


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidDefinition([f"cannot read {path}: {exc.strerror}"]) from exc
    except yaml.YAMLError as exc:
        raise InvalidDefinition([f"{path} is not valid YAML: {exc}"]) from exc


def _validated(model: type[M], path: Path) -> M:
    try:
        return model.model_validate(_read(path))
    except ValidationError as exc:
        raise InvalidDefinition([f"{path}: {_path(e['loc'])}: {e['msg']}" for e in exc.errors()]) from exc


def load_schemes(path: Path) -> SchemeBook:
    return _validated(SchemeBook, path)


UNQUOTED_FIELD = re.compile(r"^\s*(?:-\s*)?(message|subject|body|sms|en|fr|de|it):\s*[^'\"|>\s{].*\s#")


def _unquoted_fields(path: Path) -> list[str]:
    """`body: call n°#{ConferenceNumber} and enter #{Pin}` loses everything from ` #` on:
    YAML reads it as a comment. Catch it rather than send a message cut short."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [
        f"{path}, line {number}: {found[1]} has ' #' in an unquoted value, which YAML reads as a comment: "
        f"put the text in quotes"
        for number, line in enumerate(lines, start=1)
        if (found := UNQUOTED_FIELD.match(line))
    ]


def load_procedure(path: Path, schemes: SchemeBook) -> ProcedureDefinition:
    """Load one procedure and check what pydantic cannot: the schemes and form fields its steps
    name, and the fields its messages use."""
    procedure = _validated(ProcedureDefinition, path)
    problems: list[str] = _unquoted_fields(path)
    if path.stem != procedure.name:
        problems.append(f"{path}: name: {procedure.name!r} must match the file name {path.stem!r}")
    text_fields = frozenset(f.template_name for f in procedure.form if f.kind == "text")
    bridge_fields = BRIDGE_FIELDS if procedure.has_conference() else frozenset()
    message_fields = text_fields | bridge_fields  # rendered once at launch: no recipient in it
    post_fields = message_fields | {"Contact"} | ({"CallMeLink"} if procedure.call_me_link else set())
    numbers = [s.number for s in procedure.steps]
    if numbers != sorted(set(numbers)):
        problems.append(f"{path}: steps: numbers must be unique and in order, got {', '.join(numbers)}")
    for index, step in enumerate(procedure.steps):
        where = f"{path}: steps[{index}] (step {step.number})"
        if step.scheme is not None and schemes.get(step.scheme) is None:
            problems.append(f"{where}.scheme: unknown alert scheme {step.scheme!r}")
        for name in step.contact_fields:
            field = procedure.field(name)
            if field is None or field.kind != "contacts":
                problems.append(f"{where}.contact_fields: {name!r} is not a contacts field of the form")
        if index == 0 and step.run != "always":
            problems.append(f"{where}.run: the first step always runs")
        problems += _language_problems(where, step, procedure.language)
        for key, source in _sources(step).items():
            try:
                check_fields(
                    source, f"{where}.{key}", message_fields if key.startswith("message") else post_fields
                )
            except InvalidLaunch as exc:
                problems += exc.problems
    if problems:
        raise InvalidDefinition(problems)
    return procedure


def _language_problems(where: str, step: StepDefinition, language: str | None) -> list[str]:
    """Texts by language need the procedure's `language`, and a text in it: the one for whoever
    has no version of their own."""
    if not step.by_language():
        return []
    if language is None:
        return [f"{where}: texts given by language need the procedure's 'language:' (its default)"]
    languages: dict[str, set[str]] = {
        "message": set(step.messages(language)),
        "post_objective": set(step.post_objectives(language)),
    }
    return [
        f"{where}.{name}: no text in {language}, the procedure's language"
        for name, written in languages.items()
        if written and language not in written
    ]


def _sources(step: StepDefinition) -> dict[str, str]:
    """Every template of a step, by where it stands (`message.fr`, `post_objective.de.sms`)."""
    by_language = step.by_language()
    sources: dict[str, str] = {}
    for language, text in step.messages("").items():
        sources[f"message.{language}" if by_language and language else "message"] = text
    for language, post in step.post_objectives("").items():
        prefix = f"post_objective.{language}" if isinstance(step.post_objective, dict) else "post_objective"
        sources |= {f"{prefix}.subject": post.subject, f"{prefix}.body": post.body}
        if post.sms is not None:
            sources[f"{prefix}.sms"] = post.sms
    return sources


class Definitions(BaseModel):
    """Everything in a definitions folder: `schemes.yaml` and `procedures/*.yaml`."""

    model_config = ConfigDict(frozen=True)

    schemes: SchemeBook
    procedures: dict[str, ProcedureDefinition]

    def procedure(self, name: str) -> ProcedureDefinition:
        found = self.procedures.get(name)
        if found is None:
            known = ", ".join(sorted(self.procedures)) or "none"
            raise InvalidLaunch([f"unknown procedure {name!r} (known: {known})"])
        return found


def load_definitions(folder: Path) -> Definitions:
    schemes = load_schemes(folder / "schemes.yaml")
    procedures: dict[str, ProcedureDefinition] = {}
    problems: list[str] = []
    for path in sorted((folder / "procedures").glob("*.yaml")):
        try:
            procedure = load_procedure(path, schemes)
        except InvalidLaunch as exc:
            problems += exc.problems
            continue
        procedures[procedure.name] = procedure
    if problems:
        raise InvalidDefinition(problems)
    return Definitions(schemes=schemes, procedures=procedures)
