"""Bad input is refused at launch with a message naming the contact, field or file, and every
problem is listed at once. These checks run before anything reaches Temporal."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config import Settings
from domain.errors import InvalidLaunch
from domain.messages import check_single_sms, load_templates
from launcher import LaunchRequest, prepare

GOOD = {"id": "alice", "name": "Alice", "voice_pro": "+41215550101", "email": "alice@example.com"}


def settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[arg-type]


def refused(tmp_path: Path, contacts: object, to: list[str], **request: object) -> str:
    path = tmp_path / "contacts.yaml"
    path.write_text(contacts if isinstance(contacts, str) else yaml.safe_dump(contacts), encoding="utf-8")
    with pytest.raises(InvalidLaunch) as error:
        prepare(LaunchRequest(destinations=to, contacts_file=path, **request), settings(), pin="123456")  # type: ignore[arg-type]
    return str(error.value)


@pytest.mark.parametrize(
    ("contacts", "to", "message"),
    [
        ({"contacts": [GOOD]}, [], "no destination given"),
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
            {"contacts": [{**GOOD, "voice_pro": None}]},
            ["alice"],
            "contact 'alice': has neither voice_pro nor voice_home to call",
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


def test_missing_contacts_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidLaunch, match=r"cannot read contacts file .*missing\.yaml"):
        prepare(
            LaunchRequest(destinations=["a"], contacts_file=tmp_path / "missing.yaml"), settings(), "123456"
        )


def test_a_conference_holds_at_most_250(tmp_path: Path) -> None:
    numbers = [f"+4121555{n:04d}" for n in range(251)]
    assert "251 destinations: a conference holds at most 250" in refused(tmp_path, {"contacts": []}, numbers)


def test_welcome_message_length(tmp_path: Path) -> None:
    assert "welcome message is 1001 characters; at most 1000" in refused(
        tmp_path, {"contacts": [GOOD]}, ["alice"], welcome="x" * 1001
    )


def test_misconfigured_dial_in_number(tmp_path: Path) -> None:
    path = tmp_path / "contacts.yaml"
    path.write_text(yaml.safe_dump({"contacts": [GOOD]}))
    with pytest.raises(InvalidLaunch, match="RALLYCALL_DIAL_IN_NUMBER: '12345' is not a phone number"):
        prepare(
            LaunchRequest(destinations=["alice"], contacts_file=path), settings(dial_in_number="12345"), "1"
        )


def test_raw_numbers_are_called_and_texted_only_when_mobile(tmp_path: Path) -> None:
    conference = prepare(
        LaunchRequest(destinations=["+41 79 555 01 01", "+41215550101"]), settings(), "123456"
    )
    mobile, landline = conference.participants
    assert (mobile.voice_pro, mobile.mobile) == ("+41795550101", "+41795550101")
    assert (landline.voice_pro, landline.mobile) == ("+41215550101", None)


def write_templates(folder: Path, **overrides: str) -> Path:
    folder.mkdir()
    defaults = load_templates()
    sources = {
        "pin_invitation.sms.txt": defaults.sms,
        "pin_invitation.subject.txt": defaults.email_subject,
        "pin_invitation.email.txt": defaults.email_text,
        "pin_invitation.email.html": defaults.email_html,
        **overrides,
    }
    for name, text in sources.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_template_naming_an_unknown_field(tmp_path: Path) -> None:
    folder = write_templates(
        tmp_path / "t", **{"pin_invitation.sms.txt": "Dial #{ConferenceNumber}, PIN #{PinCode}"}
    )
    with pytest.raises(
        InvalidLaunch, match=r"pin_invitation.sms.txt, line 1, column 31: unknown field #\{PinCode\}"
    ):
        load_templates(folder)


def test_template_that_does_not_parse(tmp_path: Path) -> None:
    folder = write_templates(tmp_path / "t", **{"pin_invitation.email.txt": "Hi\n#{% if Body %}no end"})
    with pytest.raises(InvalidLaunch, match=r"pin_invitation.email.txt, line 2: Unexpected end of template"):
        load_templates(folder)


def test_shipped_templates_keep_braces_and_hashes_literal() -> None:
    templates = load_templates()
    assert "#{Pin}" in templates.sms and "#{ConferenceNumber}" in templates.sms


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("PIN 123456 \u2014 dial now", "character '\u2014' is not GSM-7"),
        ("x" * 161, "is 161 GSM-7 characters; one SMS holds 160"),
        ("{" * 81, "is 162 GSM-7 characters"),
    ],
)
def test_sms_must_fit_one_gsm7_segment(text: str, message: str) -> None:
    with pytest.raises(InvalidLaunch, match=message):
        check_single_sms(text, "alice")


def test_sms_of_exactly_one_segment_is_accepted() -> None:
    check_single_sms("é" * 160, "alice")
