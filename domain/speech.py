"""What a call says, in parts that each name their language, so each is spoken by a voice of
that language: a German prompt after a launcher's French text is two parts, never French text
read by a German voice (or the reverse)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Said(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    language: str = ""
    """The text's language tag (`fr`, `de-CH`); "" for runs launched before 0.2.0, spoken in
    the carrier's default voice as they always were."""


Speech = tuple[Said, ...]


def spoken(text: str, language: str) -> Speech:
    """One part, or none for an empty text (nothing to say)."""
    return (Said(text=text.strip(), language=language),) if text.strip() else ()


def plain(speech: Speech) -> str:
    """The words alone, as an SMS or an email carries them."""
    return "".join(part.text for part in speech).strip()
