"""The system's own words in each shipped language, from gettext catalogues a translator edits
(`locale/<language>/LC_MESSAGES/rallycall.po`, read with Babel; nothing to compile).

Code marks each text with `N_` where it is written, in English, the source language; `words`
gives it in a language. A text a catalogue lacks, or whose translation is marked fuzzy or
breaks its placeholders, comes in the default language, else in English: never blank.
`python -m i18n.extract` refreshes the template and the catalogues from the code.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path
from string import Formatter

from babel.messages.pofile import read_po

from domain.speech import Speech, spoken
from i18n.languages import SHIPPED, language_of

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "rallycall"
SOURCE_LANGUAGE = "en"
log = logging.getLogger("rallycall.i18n")


def N_(message: str) -> str:
    """Marks `message` for the catalogues; it is translated where it is used (`words`)."""
    return message


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=len(SHIPPED))
def translations(language: str) -> dict[str, str]:
    """A catalogue's finished translations by English text (none for English, the source)."""
    path = catalogue_path(language)
    if language == SOURCE_LANGUAGE or not path.is_file():
        return {}
    with path.open("rb") as po:
        catalogue = read_po(po, locale=language, domain=DOMAIN)
    return {
        str(message.id): str(message.string)
        for message in catalogue
        if message.id and isinstance(message.id, str) and message.string and not message.fuzzy
    }


TEMPLATE_FIELD = re.compile(r"#\{[^}]*\}")
"""A message template's field (`#{Pin}`), filled later by the template, not by `words`."""


def placeholders(text: str) -> set[str]:
    """What a translation must keep: the `{name}` fields `words` fills and the `#{Field}`s of
    a message template (a text whose braces do not parse has the mark `{?}`)."""
    kept = set(TEMPLATE_FIELD.findall(text))
    try:
        return kept | {name for _, name, _, _ in Formatter().parse(TEMPLATE_FIELD.sub("", text)) if name}
    except ValueError:
        return kept | {"{?}"}


def translated(
    message: str, language: str, default: str = SOURCE_LANGUAGE, **fields: object
) -> tuple[str, str]:
    """`message` (as marked with `N_`) in `language`, its `{fields}` filled, and the language
    it really is in: a catalogue that lacks it, or breaks its placeholders, gives way to the
    default language, then English (so a voice of that language says it)."""
    for candidate in dict.fromkeys((language_of(language or default), language_of(default))):
        text = translations(candidate).get(message)
        if text is None:
            continue
        if placeholders(text) != placeholders(message):
            log.warning("the %s translation of %r breaks its placeholders: not used", candidate, message)
            continue
        return (text.format(**fields) if fields else text), candidate
    return (message.format(**fields) if fields else message), SOURCE_LANGUAGE


def words(message: str, language: str, default: str = SOURCE_LANGUAGE, **fields: object) -> str:
    """`translated`'s text alone, for what is written whatever its language (a web page)."""
    return translated(message, language, default, **fields)[0]


def said(message: str, language: str, default: str = SOURCE_LANGUAGE, **fields: object) -> Speech:
    """`message` as a voice of the language it comes in says it; a run launched before 0.2.0
    (`language` "") keeps the carrier's default voice."""
    text, really = translated(message, language, default, **fields)
    return spoken(text, really if language else "")
