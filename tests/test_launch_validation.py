"""Bad input is refused at launch with a message naming the contact, field or file, and every
problem is listed at once. These checks run before anything reaches Temporal."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench import scale
from config import Settings
from domain.errors import InvalidLaunch
from domain.messages import check_sms, sms_size
from launching import LaunchRequest, prepare, red_button
from tests.support import DEFINITIONS

GOOD = {"id": "alice", "name": "Alice", "voice_pro": "+41215550101", "email": "alice@example.com"}


def settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[arg-type]


def red(to: list[str], contacts_file: Path | None, welcome: str = "") -> LaunchRequest:
    """The red button, as `starter.py conference --to … --welcome …` presses it."""
    procedure = DEFINITIONS.procedure("conference-call")
    return red_button(procedure, DEFINITIONS.schemes, to, welcome, contacts_file=contacts_file)


def refused(tmp_path: Path, contacts: object, to: list[str], welcome: str = "") -> str:
    path = tmp_path / "contacts.yaml"
    path.write_text(contacts if isinstance(contacts, str) else yaml.safe_dump(contacts), encoding="utf-8")
    with pytest.raises(InvalidLaunch) as error:
        prepare(red(to, path, welcome), settings(), pin="123456")
    return str(error.value)


@pytest.mark.parametrize(
    ("contacts", "to", "message"),
    [
        ({"contacts": [GOOD]}, [], "field 'Contacts.S001' (Destinations) is required"),
        ({"contacts": [GOOD]}, ["zoe"], "unknown contact 'zoe' (known ids: alice)"),
        ({"contacts": [GOOD]}, ["alice", "alice"], "destination 'alice' is given more than once"),
        (
            {"contacts": [{**GOOD, "voice_pro": "+41 12"}]},
            ["alice"],
            "contact 'alice': voice_pro '+41 12' is not a valid phone number",
        ),
        (
            {"contacts": [{**GOOD, "voice_home": "021 555 01 01"}]},
            ["alice"],
            "contact 'alice': voice_home '021 555 01 01' is not a phone number in international form",
        ),
        (
            {"contacts": [{**GOOD, "mobile": "call me"}]},
            ["alice"],
            "contact 'alice': mobile 'call me' is not a phone number",
        ),
        (
            {"contacts": [{**GOOD, "email": "alice@"}]},
            ["alice"],
            "contact 'alice': email 'alice@' is not valid",
        ),
        ({"contacts": [{**GOOD, "name": " "}]}, ["alice"], "contact 'alice': 'name' is empty"),
        (
            {"contacts": [{**GOOD, "voice_pro": None, "mobile": "+41795550101"}]},
            ["alice"],
            "contact 'alice' (step 001): has no voice_pro or voice_home for scheme CONFCALL",
        ),
        (
            {"contacts": [{"id": "alice", "name": "Alice"}]},
            ["alice"],
            "contact 'alice': has no phone number and no email to reach them at",
        ),
        ({"contacts": [{**GOOD, "pager": "123"}]}, ["alice"], "contact 'alice': unknown field(s) pager"),
        ({"contacts": [GOOD, GOOD]}, ["alice"], "contact id 'alice' appears twice"),
        ({"contacts": [{"name": "No Id"}]}, ["alice"], "contacts[0] has no 'id'"),
        ({"people": [GOOD]}, ["alice"], "expected a top-level 'contacts:' list"),
        ("contacts: [unclosed", ["alice"], "is not valid YAML"),
        ({"contacts": [GOOD]}, ["+4112"], "destination '+4112' is not a valid phone number"),
        (
            {"contacts": [GOOD]},
            ["alice", "+41215550101"],
            "destinations 'alice' and '+41215550101' share the number +41215550101",
        ),
    ],
)
def test_refused_with_a_message_naming_what_to_fix(
    tmp_path: Path, contacts: object, to: list[str], message: str
) -> None:
    assert message in refused(tmp_path, contacts, to)


def test_every_problem_is_listed_not_just_the_first(tmp_path: Path) -> None:
    bad = {**GOOD, "voice_pro": "+41 12", "email": "nope"}
    text = refused(tmp_path, {"contacts": [bad]}, ["alice", "zoe"])
    assert "voice_pro '+41 12'" in text and "email 'nope'" in text and "unknown contact 'zoe'" in text


def test_a_step_needs_only_the_addresses_its_scheme_uses(tmp_path: Path) -> None:
    """Residents known by a mobile number or an email only can be warned by SMS and email."""
    path = tmp_path / "contacts.yaml"
    texted = {"id": "bob", "name": "Bob", "mobile": "+41795550102"}
    mailed = {"id": "carol", "name": "Carol", "email": "carol@example.com"}
    path.write_text(yaml.safe_dump({"contacts": [texted, mailed]}), encoding="utf-8")
    inform = scale.INFORMATION.procedure("inform")
    fields = {"body": "22:00-23:00", "Contacts.S001": "bob,carol"}
    request = LaunchRequest(inform, scale.INFORMATION.schemes, fields, contacts_file=path)
    plan = prepare(request, settings(), pin=None)
    assert [p.id for p in plan.people] == ["bob", "carol"]
    with pytest.raises(InvalidLaunch) as error:
        prepare(red(["bob"], path), settings(), pin="123456")
    assert "contact 'bob' (step 001): has no voice_pro or voice_home for scheme CONFCALL" in str(error.value)


def test_missing_contacts_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidLaunch, match=r"cannot read contacts file .*missing\.yaml"):
        prepare(red(["a"], tmp_path / "missing.yaml"), settings(), "123456")


def test_a_conference_holds_at_most_250(tmp_path: Path) -> None:
    numbers = [f"+4121555{n:04d}" for n in range(251)]
    assert (
        "251 people could be called into this run's bridge (step 001: 251); a bridge holds at most 250"
        in refused(tmp_path, {"contacts": []}, numbers)
    )


def test_welcome_message_length(tmp_path: Path) -> None:
    assert "field 'body' is 501 characters; at most 500" in refused(
        tmp_path, {"contacts": [GOOD]}, ["alice"], welcome="x" * 501
    )


def test_misconfigured_dial_in_number(tmp_path: Path) -> None:
    path = tmp_path / "contacts.yaml"
    path.write_text(yaml.safe_dump({"contacts": [GOOD]}))
    with pytest.raises(InvalidLaunch, match="RALLYCALL_DIAL_IN_NUMBER: '12345' is not a phone number"):
        prepare(red(["alice"], path), settings(dial_in_number="12345"), "1")


def test_raw_numbers_are_called_and_texted_only_when_mobile(tmp_path: Path) -> None:
    conference = prepare(red(["+41 79 555 01 01", "+41215550101"], None), settings(), "123456")
    mobile, landline = conference.people
    assert (mobile.voice_pro, mobile.mobile) == ("+41795550101", "+41795550101")
    assert (landline.voice_pro, landline.mobile) == ("+41215550101", None)


@pytest.mark.parametrize(
    ("text", "encoding", "units", "parts"),
    [
        ("x" * 160, "GSM-7", 160, 1),
        ("x" * 161, "GSM-7", 161, 2),  # split parts hold 153 (their header takes 7)
        ("{" * 80, "GSM-7", 160, 1),  # an extended character takes two septets
        ("é" * 160, "GSM-7", 160, 1),  # French é, è, à and German ä, ö, ü, ß are GSM-7
        ("ê" * 70, "UCS-2", 70, 1),  # ê, ô, î, ç lower case are not: the whole SMS is UCS-2
        ("ê" * 71, "UCS-2", 71, 2),
        ("\U0001f525" * 35, "UCS-2", 70, 1),  # an emoji is two UTF-16 units
    ],
)
def test_sms_parts_are_counted_in_the_encoding_the_text_needs(
    text: str, encoding: str, units: int, parts: int
) -> None:
    size = sms_size(text)
    assert (size.encoding, size.units, size.segments) == (encoding, units, parts)


def test_an_sms_over_three_parts_is_refused_naming_what_makes_it_long() -> None:
    check_sms("x" * 153 * 3, "alice")
    with pytest.raises(InvalidLaunch, match=r"SMS for alice takes 4 parts \(GSM-7, 460 characters\)"):
        check_sms("x" * (153 * 3 + 1), "alice")
    with pytest.raises(InvalidLaunch, match="character 'ê' is not GSM-7, which makes every part 67"):
        check_sms("Fenêtre " + "x" * 200, "alice")
