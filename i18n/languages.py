"""Language tags (BCP 47, read with Babel), the languages rallycall speaks, and the voice the
carrier is asked for in each.

A person's tag may be more precise than what is shipped (`fr-CH`): they are served in its
language (`fr`), and its region picks the voice where the carrier has one (`en-GB`), else the
language's usual one (`fr-FR`). A tag in a language not shipped is served in the default.
"""

from __future__ import annotations

from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.languages import get_official_languages

SHIPPED = ("en", "fr", "de", "it")
"""The languages the catalogues translate everything into, in the dial-in menu's order."""
VOICES = frozenset({"en-US", "en-GB", "en-AU", "en-CA", "en-IN", "fr-FR", "fr-CA", "de-DE", "it-IT"})
"""Language and region pairs the carrier's standard voices speak (Twilio's <Say language>)."""
USUAL_VOICE = {"en": "en-GB", "fr": "fr-FR", "de": "de-DE", "it": "it-IT"}
"""The voice of a language whose region has none of its own (a Swiss French speaker: fr-FR)."""


@lru_cache(maxsize=1024)
def normalised(tag: str) -> str:
    """`fr_ch`, `FR-ch`, `fr-CH` -> `fr-CH`; ValueError naming the tag when it is none."""
    cleaned = tag.strip().replace("_", "-")
    try:
        locale = Locale.parse(cleaned, sep="-")
    except (ValueError, UnknownLocaleError) as exc:
        raise ValueError(f"{tag!r} is not a language tag (write en, fr, de-CH, it-IT)") from exc
    return f"{locale.language}-{locale.territory}" if locale.territory else locale.language


def language_of(tag: str) -> str:
    """The language part of a normalised tag: `fr-CH` -> `fr`."""
    return tag.split("-", 1)[0]


def served(tag: str | None, default: str) -> str:
    """The shipped language someone with `tag` is served in: theirs, else `default`."""
    if tag and language_of(tag) in SHIPPED:
        return language_of(tag)
    return default


def voice(tag: str) -> str:
    """The voice locale for text in `tag`'s language: its region's if the carrier has one."""
    if tag in VOICES:
        return tag
    return USUAL_VOICE.get(language_of(tag), tag)


def spoken_in(region: str | None) -> tuple[str, ...]:
    """The shipped languages spoken officially (or de facto) in a country, in Babel's order
    of importance: one for France, three for Switzerland, none for Spain."""
    if not region:
        return ()
    return tuple(lang for lang in get_official_languages(region, de_facto=True) if lang in SHIPPED)
