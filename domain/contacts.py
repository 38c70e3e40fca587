"""Contacts and destinations: loaded from YAML, checked with phonenumbers and email-validator.

A destination is a contact id or a raw E.164 number. Every problem names the contact and the
field, so the launcher can fix the file under pressure, and nothing starts until all are fixed.
"""

from __future__ import annotations

import functools
import re
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any

import phonenumbers
import yaml
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict

from domain.errors import InvalidLaunch
from i18n.languages import normalised, spoken_in

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's loader when PyYAML has it (its wheels do): measured 3 to 5 times faster on 1,000 people."""

PHONE_FIELDS = ("voice_pro", "voice_home", "mobile")
MOBILE_TYPES = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}


class Contact(BaseModel):
    """A person with the media the alert scheme may use; numbers in E.164, email normalised."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    voice_pro: str | None = None
    voice_home: str | None = None
    mobile: str | None = None
    email: str | None = None
    scheme: str | None = None
    """A personal alert scheme, used by steps that name no global one."""
    language: str | None = None
    """What they are spoken to and written in (a BCP 47 tag, `fr-CH`); else the run's."""

    def numbers(self) -> set[str]:
        return {n for n in (self.voice_pro, self.voice_home, self.mobile) if n}


def to_e164(value: str) -> str:
    """Normalise a phone number written in international form; ValueError says why not."""
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{value!r} is not a phone number in international form (+41215550100)") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"{value!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def masked(number: str) -> str:
    """A number as logs may show it: `+41******0101` (a whole number is personal data)."""
    return number[:3] + "*" * max(0, len(number) - 7) + number[-4:] if len(number) > 7 else "***"


E164_IN_TEXT = re.compile(r"\+\d{7,15}")


def masked_text(text: str) -> str:
    """Any number in `text` masked (a contact given as a raw number has it for an id)."""
    return E164_IN_TEXT.sub(lambda found: masked(found.group()), text)


def is_mobile(e164: str) -> bool:
    return phonenumbers.number_type(phonenumbers.parse(e164, None)) in MOBILE_TYPES


def load_contacts(path: Path) -> dict[str, dict[str, Any]]:
    """Read the contacts file: raw entries by id. Structure errors name the file and entry.
    Parsed once per version of the file: a console or bench launching a hundred runs from a
    directory of a thousand people parsed it twice per launch (a third of the launcher's CPU)."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise InvalidLaunch([f"cannot read contacts file {path}: {exc.strerror}"]) from exc
    return dict(_parsed_contacts(path, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _parsed_contacts(path: Path, mtime_ns: int, size: int) -> dict[str, dict[str, Any]]:
    """One version of the file (its modification time and size), read-only to callers."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=SafeLoader)
    except OSError as exc:
        raise InvalidLaunch([f"cannot read contacts file {path}: {exc.strerror}"]) from exc
    except yaml.YAMLError as exc:
        raise InvalidLaunch([f"{path} is not valid YAML: {exc}"]) from exc
    entries = data.get("contacts") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise InvalidLaunch([f"{path}: expected a top-level 'contacts:' list"])
    problems: list[str] = []
    by_id: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(entries):
        contact_id = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(contact_id, str) or not contact_id.strip():
            problems.append(f"{path}: contacts[{index}] has no 'id'")
        elif contact_id in by_id:
            problems.append(f"{path}: contact id {contact_id!r} appears twice")
        else:
            by_id[contact_id] = entry
    if problems:
        raise InvalidLaunch(problems)
    return by_id


def validate_contact(raw: dict[str, Any]) -> Contact:
    """Check and normalise one contact entry; every bad field is reported."""
    contact_id = raw["id"]
    problems: list[str] = []
    fields: dict[str, str | None] = {"id": contact_id}
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"contact {contact_id!r}: 'name' is empty")
    else:
        fields["name"] = name.strip()
    for field in PHONE_FIELDS:
        value = raw.get(field)
        if value in (None, ""):
            continue
        try:
            fields[field] = to_e164(str(value))
        except ValueError as exc:
            problems.append(f"contact {contact_id!r}: {field} {exc}")
    email = raw.get("email")
    if email not in (None, ""):
        try:
            fields["email"] = validate_email(str(email), check_deliverability=False).normalized
        except EmailNotValidError as exc:
            problems.append(f"contact {contact_id!r}: email {email!r} is not valid ({exc})")
    scheme = raw.get("scheme")
    if scheme not in (None, ""):
        fields["scheme"] = str(scheme)
    language = raw.get("language")
    if language not in (None, ""):
        try:
            fields["language"] = normalised(str(language))
        except ValueError as exc:
            problems.append(f"contact {contact_id!r}: language {exc}")
    unknown = set(raw) - {"id", "name", "email", "scheme", "language", *PHONE_FIELDS}
    if unknown:
        problems.append(f"contact {contact_id!r}: unknown field(s) {', '.join(sorted(unknown))}")
    if not problems and not any(fields.get(f) for f in (*PHONE_FIELDS, "email")):
        problems.append(f"contact {contact_id!r}: has no phone number and no email to reach them at")
    if problems:
        raise InvalidLaunch(problems)
    return Contact.model_validate(fields)


def contact_for_number(value: str) -> Contact:
    """A destination given as a raw number: called as work phone, texted if it is a mobile, in
    its country's language when the country speaks one that is shipped (a French number: French;
    a Swiss one: the run's)."""
    e164 = to_e164(value)
    spoken = spoken_in(phonenumbers.region_code_for_number(phonenumbers.parse(e164, None)))
    return Contact(
        id=e164, name=e164, voice_pro=e164, mobile=e164 if is_mobile(e164) else None,
        language=spoken[0] if len(spoken) == 1 else None,
    )  # fmt: skip


_VALIDATED: OrderedDict[int, tuple[dict[str, Any], Contact]] = OrderedDict()
VALIDATED_AT_MOST = 100_000
"""Entries already validated, by the entry itself (`load_contacts` hands out the same entries
for one version of its file): a launch prepares its plan twice, and a console launches from one
file again and again; 50,000 contacts take seconds to validate."""


def validated(entry: dict[str, Any]) -> Contact:
    """`validate_contact`, once per entry of a contacts file's version (a refusal is not kept)."""
    held = _VALIDATED.get(id(entry))
    if held is not None and held[0] is entry:
        return held[1]
    contact = validate_contact(entry)
    _VALIDATED[id(entry)] = (entry, contact)  # the entry is held: its id is not reused meanwhile
    if len(_VALIDATED) > VALIDATED_AT_MOST:
        _VALIDATED.popitem(last=False)
    return contact


def resolve_destinations(destinations: list[str], contacts: dict[str, dict[str, Any]]) -> list[Contact]:
    """Turn `--to` values into validated contacts, refusing unknown, invalid and duplicate ones."""
    if not destinations:
        raise InvalidLaunch(["no destination given (use --to with a contact id or an E.164 number)"])
    problems: list[str] = []
    repeated = [d for d, n in Counter(destinations).items() if n > 1]
    problems += [f"destination {d!r} is given more than once" for d in repeated]
    resolved: list[Contact] = []
    for destination in dict.fromkeys(destinations):
        try:
            if destination.startswith("+"):
                resolved.append(contact_for_number(destination))
            elif destination in contacts:
                resolved.append(validated(contacts[destination]))
            else:
                known = ", ".join(sorted(contacts)[:10]) or "none"
                problems.append(f"unknown contact {destination!r} (known ids: {known})")
        except ValueError as exc:
            problems += exc.problems if isinstance(exc, InvalidLaunch) else [f"destination {exc}"]
    problems += shared_numbers(resolved)
    if problems:
        raise InvalidLaunch(problems)
    return resolved


def shared_numbers(contacts: list[Contact]) -> list[str]:
    """Two destinations reaching the same phone would ring it twice and blur the roster."""
    owners: dict[str, str] = {}
    problems = []
    for contact in contacts:
        for number in sorted(contact.numbers()):
            if number in owners and owners[number] != contact.id:
                problems.append(
                    f"destinations {owners[number]!r} and {contact.id!r} share the number {number}"
                )
            owners.setdefault(number, contact.id)
    return problems
