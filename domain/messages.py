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
from domain.speech import Said, Speech

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")
SMS_SEGMENTS_AT_MOST = 3
"""Parts one SMS may take: an accented French or Italian text (ê, ô, ï) is UCS-2, 70 characters
a part, and its PIN invitation takes two; beyond three, parts arrive late or out of order on
some networks, and each is billed."""


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
    language: str = ""
    """The language it is written in: an email says so (`Content-Language`)."""

    def rendered(self) -> tuple[str, str]:
        if self.fields is None:
            return self.subject, self.body
        return render(self.subject, self.fields), render(self.body, self.fields)


def email_html(subject: str, body: str, language: str = "") -> str:
    """The HTML part of an email: the layout in `templates/`, the text escaped into it."""
    return _layout().render(subject=subject, paragraphs=body.split("\n\n"), language=language).strip()


MARK = "\x00"


def render_spoken(source: str, fields: dict[str, Any], language: str, own: dict[str, str]) -> Speech:
    """A message as spoken: the template's words in `language`, and each launcher's field
    (`own`: field name -> the language the launcher wrote it in) a part in its own language.
    The fields are rendered as marks first, so the parts are cut where the template put them."""
    marked = {**fields, **{name: f"{MARK}{name}{MARK}" for name in own if fields.get(name)}}
    pieces = render(source, marked).split(MARK)
    if len(pieces) % 2 == 0 or any(pieces[i] not in own for i in range(1, len(pieces), 2)):
        return (Said(text=render(source, fields), language=language),)  # a filter ate a mark
    parts = []
    for index, piece in enumerate(pieces):
        text = piece if index % 2 == 0 else str(fields.get(piece, ""))
        if text.strip():
            parts.append(Said(text=text, language=language if index % 2 == 0 else own[piece]))
    return tuple(parts)


@lru_cache(maxsize=256)
def fields_of(source: str) -> frozenset[str]:
    """The fields a template names (`#{Body}`, `#{Contact.Name}` as `Contact`)."""
    return frozenset(meta.find_undeclared_variables(_TEXT.parse(source)))


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


class SmsSize(BaseModel):
    """How an SMS travels: its encoding, its length in that encoding's units, and its parts."""

    model_config = ConfigDict(frozen=True)

    encoding: str
    """`GSM-7` (160 septets in one part, 153 a part when split) or `UCS-2` (70 and 67)."""
    units: int
    segments: int

    @property
    def described(self) -> str:
        parts = "1 part" if self.segments == 1 else f"{self.segments} parts"
        return f"{parts} ({self.encoding}, {self.units} characters)"


def sms_size(text: str) -> SmsSize:
    """The parts the carrier sends `text` in: one character outside GSM-7 makes it all UCS-2,
    counted in UTF-16 units (an emoji is two)."""
    septets = gsm7_units(text)
    if septets is not None:
        return SmsSize(encoding="GSM-7", units=septets, segments=1 if septets <= 160 else -(-septets // 153))
    units = len(text.encode("utf-16-le")) // 2
    return SmsSize(encoding="UCS-2", units=units, segments=1 if units <= 70 else -(-units // 67))


def check_sms(text: str, who: str) -> SmsSize:
    """An SMS may take SMS_SEGMENTS_AT_MOST parts; the error says what makes it long."""
    size = sms_size(text)
    if size.segments > SMS_SEGMENTS_AT_MOST:
        why = ""
        if size.encoding == "UCS-2":
            bad = next(c for c in text if c not in GSM7_BASIC | GSM7_EXTENDED)
            why = f"; character {bad!r} is not GSM-7, which makes every part 67 characters"
        raise InvalidLaunch(
            [f"SMS for {who} takes {size.described}: at most {SMS_SEGMENTS_AT_MOST} parts{why}"]
        )
    return size
