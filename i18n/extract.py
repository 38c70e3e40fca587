"""Refresh the catalogues from the code: `python -m i18n.extract` (or `make catalogues`).

Writes `i18n/rallycall.pot` with every text marked `N_` in the Python code and `_()` in the
console's templates, then merges it into each shipped language's `.po`: new texts arrive
untranslated (they are spoken in the default language until translated), texts gone from the
code are kept as obsolete for the translator to see.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from i18n.catalogues import DOMAIN, SOURCE_LANGUAGE, catalogue_path
from i18n.languages import SHIPPED

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / f"{DOMAIN}.pot"
METHODS = [
    ("console/templates/**.html", "jinja2"),
    (".venv/**", "ignore"),
    ("tests/**", "ignore"),
    ("bench/**", "ignore"),
    ("**.py", "python"),
]
KEYWORDS = {"N_": None, "_": None}


def extracted() -> Catalog:
    """Every marked text in the code, with where it is used."""
    catalogue = Catalog(project="rallycall", domain=DOMAIN, fuzzy=False)
    for filename, lineno, message, comments, _ in extract_from_dir(
        ROOT, METHODS, keywords=KEYWORDS, strip_comment_tags=True
    ):
        catalogue.add(message, None, [(filename, lineno)], auto_comments=comments, flags=flags(message))
    return catalogue


def flags(message: object) -> tuple[str, ...]:
    return ("python-brace-format",) if isinstance(message, str) and "{" in message.replace("#{", "") else ()


def main() -> None:
    template = extracted()
    with TEMPLATE.open("wb") as out:
        write_po(out, template, width=100, omit_header=False, sort_output=False)
    for language in SHIPPED:
        if language == SOURCE_LANGUAGE:
            continue
        path = catalogue_path(language)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open("rb") as po:
                catalogue = read_po(po, locale=language, domain=DOMAIN)
        else:
            catalogue = Catalog(locale=language, domain=DOMAIN, project="rallycall", fuzzy=False)
        catalogue.update(template, no_fuzzy_matching=True)
        with path.open("wb") as out:
            write_po(out, catalogue, width=100, ignore_obsolete=False)
        missing = sum(1 for m in catalogue if m.id and not m.string)
        print(f"{path.relative_to(ROOT)}: {len(catalogue) - missing} translated, {missing} to translate")


if __name__ == "__main__":
    main()
