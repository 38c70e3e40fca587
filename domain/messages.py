"""Message templates in the spec's field syntax (`#{Pin}`), rendered in Jinja2's sandbox.

Templates are read from `templates/` at launch and frozen into the workflow input; fields are
checked then, so a typo fails the launch instead of a message at t=+2 min.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import phonenumbers
from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict

from domain.errors import InvalidLaunch

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
FIELDS = frozenset({"Body", "ConferenceNumber", "Pin", "Contact"})
"""What a message may name: the welcome text, the dial-in number, the PIN, the recipient."""

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")
SMS_SEGMENT = 160


class MessageTemplates(BaseModel):
    """Sources of the PIN invitation, as frozen into a conference at launch."""

    model_config = ConfigDict(frozen=True)

    sms: str
    email_subject: str
    email_text: str
    email_html: str


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


def load_templates(directory: Path = TEMPLATES_DIR) -> MessageTemplates:
    """Read the invitation templates and check every field they name exists."""
    names = {
        "sms": "pin_invitation.sms.txt",
        "email_subject": "pin_invitation.subject.txt",
        "email_text": "pin_invitation.email.txt",
        "email_html": "pin_invitation.email.html",
    }
    sources = {}
    for key, filename in names.items():
        path = directory / filename
        try:
            sources[key] = path.read_text(encoding="utf-8").strip("\n")
        except OSError as exc:
            raise InvalidLaunch([f"cannot read template {path}: {exc.strerror}"]) from exc
        check_fields(sources[key], where=str(path))
    return MessageTemplates(**sources)


def check_fields(source: str, where: str, fields: frozenset[str] = FIELDS) -> None:
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


class Invitation(BaseModel):
    """Who gets the PIN invitation and what it says; turned into template fields where sent."""

    model_config = ConfigDict(frozen=True)

    body: str
    dial_in_number: str
    pin: str
    contact_id: str
    contact_name: str

    def fields(self) -> dict[str, Any]:
        number = phonenumbers.format_number(
            phonenumbers.parse(self.dial_in_number, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )
        return {
            "Body": self.body,
            "ConferenceNumber": number,
            "Pin": self.pin,
            "Contact": {"Id": self.contact_id, "Name": self.contact_name},
        }


def render(source: str, fields: dict[str, Any], *, html: bool = False) -> str:
    return (_HTML if html else _TEXT).from_string(source).render(fields).strip()


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
    """An invitation must fit one GSM-7 segment: split or UCS-2 SMS arrive late or garbled."""
    units = gsm7_units(text)
    if units is None:
        bad = next(c for c in text if c not in GSM7_BASIC | GSM7_EXTENDED)
        raise InvalidLaunch([f"SMS for {who}: character {bad!r} is not GSM-7 (the SMS would split)"])
    if units > SMS_SEGMENT:
        raise InvalidLaunch([f"SMS for {who} is {units} GSM-7 characters; one SMS holds {SMS_SEGMENT}"])
