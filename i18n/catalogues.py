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


def words(message: str, language: str, default: str = SOURCE_LANGUAGE, **fields: object) -> str:
    """`message` (as marked with `N_`) in `language`, its `{fields}` filled."""
    for candidate in dict.fromkeys((language_of(language or default), language_of(default))):
        text = translations(candidate).get(message)
        if text is None:
            continue
        if placeholders(text) != placeholders(message):
            log.warning("the %s translation of %r breaks its placeholders: not used", candidate, message)
            continue
        return text.format(**fields) if fields else text
    return message.format(**fields) if fields else message


def in_language(message: str, language: str, default: str = SOURCE_LANGUAGE) -> str:
    """The language `words` really gives `message` in: a text missing from a catalogue is in
    the default language, or English (an email's Content-Language must say which)."""
    for candidate in dict.fromkeys((language_of(language or default), language_of(default))):
        if candidate == SOURCE_LANGUAGE or message in translations(candidate):
            return candidate
    return SOURCE_LANGUAGE
