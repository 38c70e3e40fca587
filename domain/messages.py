"""Messages in the spec's field syntax (`#{Body}`, `#{Pin}`), rendered in Jinja2's sandbox.

Procedures' messages are checked when their definitions load, so a typo fails there, never
when a message is due. Emails get an HTML part from the layout in `templates/`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict

from domain.errors import InvalidLaunch

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")
SMS_SEGMENT = 160


def _environment(autoescape: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        variable_start_string="#{",
        variable_end_string="}",
        block_start_string="#{%",
        block_end_string="%}",
        comment_start_string="#{!",
        comment_end_string="!}",
        undefined=StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=False,
    )


_TEXT = _environment(autoescape=False)
_HTML = _environment(autoescape=True)


@lru_cache(maxsize=256)
def _compiled(source: str) -> Template:
    """A run sends the same few texts to everyone: compile each once, not once per message."""
    return _TEXT.from_string(source)


@lru_cache(maxsize=1)
def _layout() -> Template:
    return _HTML.from_string((TEMPLATES_DIR / "email.html").read_text(encoding="utf-8"))


def render(source: str, fields: dict[str, Any]) -> str:
    return _compiled(source).render(fields).strip()


class Outgoing(BaseModel):
    """An SMS or email to send: templates and the fields to fill them with, or final text
    when `fields` is None (an alert whose text was rendered at launch)."""

    model_config = ConfigDict(frozen=True)

    subject: str
    body: str
    fields: dict[str, Any] | None = None

    def rendered(self) -> tuple[str, str]:
        if self.fields is None:
            return self.subject, self.body
        return render(self.subject, self.fields), render(self.body, self.fields)


def email_html(subject: str, body: str) -> str:
    """The HTML part of an email: the layout in `templates/`, the text escaped into it."""
    return _layout().render(subject=subject, paragraphs=body.split("\n\n")).strip()


def fields_of(source: str) -> set[str]:
    """The fields a template names (`#{Body}`, `#{Contact.Name}` as `Contact`)."""
    return set(meta.find_undeclared_variables(_TEXT.parse(source)))


def check_fields(source: str, where: str, fields: frozenset[str]) -> None:
    """Refuse a template that does not parse or names a field no message can fill; the error
    says where (line and column) the offending field stands."""
    try:
        names = meta.find_undeclared_variables(_TEXT.parse(source))
    except TemplateSyntaxError as exc:
        raise InvalidLaunch([f"{where}, line {exc.lineno}: {exc.message}"]) from exc
    unknown = sorted(names - fields)
    if unknown:
        allowed = ", ".join(f"#{{{name}}}" for name in sorted(fields))
        raise InvalidLaunch(
            [
                f"{where}, {_position(source, name)}: unknown field #{{{name}}} (fields: {allowed})"
                for name in unknown
            ]
        )


def _position(source: str, name: str) -> str:
    offset = source.find("#{" + name)
    offset = offset if offset >= 0 else source.find(name)
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def gsm7_units(text: str) -> int | None:
    """Length in GSM-7 septets, or None when a character forces UCS-2 (70 per segment)."""
    units = 0
    for char in text:
        if char in GSM7_BASIC:
            units += 1
        elif char in GSM7_EXTENDED:
            units += 2
        else:
            return None
    return units


def check_single_sms(text: str, who: str) -> None:
    """An SMS must fit one GSM-7 segment: split or UCS-2 SMS arrive late or garbled."""
    units = gsm7_units(text)
    if units is None:
        bad = next(c for c in text if c not in GSM7_BASIC | GSM7_EXTENDED)
        raise InvalidLaunch([f"SMS for {who}: character {bad!r} is not GSM-7 (the SMS would split)"])
    if units > SMS_SEGMENT:
        raise InvalidLaunch([f"SMS for {who} is {units} GSM-7 characters; one SMS holds {SMS_SEGMENT}"])
