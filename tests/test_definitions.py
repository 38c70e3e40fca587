"""Definitions are checked when loaded and launches when prepared: every error names the file
and the path inside it (or the form field, or the contact), so nothing broken reaches a crisis."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from config import EXAMPLES, Settings
from domain.errors import InvalidLaunch
from launching import LaunchRequest, prepare
from procedures.definitions import load_definitions

SCHEMES = yaml.safe_load((EXAMPLES / "schemes.yaml").read_text())
CONFERENCE = yaml.safe_load((EXAMPLES / "procedures" / "conference-call.yaml").read_text())
CONTACTS = {
    "contacts": [
        {
            "id": "alice",
            "name": "Alice",
            "voice_pro": "+41215550101",
            "mobile": "+41795550101",
            "scheme": "MOBILE_FIRST",
        },
        {"id": "bruno", "name": "Bruno", "voice_pro": "+41215550102", "voice_home": "+41215550112"},
        {"id": "eve", "name": "Eve", "voice_pro": "+41215550105", "scheme": "NOBODY_KNOWS"},
    ]
}


def folder(tmp_path: Path, procedure: dict[str, Any] | str | None = None, schemes: Any = None) -> Path:
    (tmp_path / "procedures").mkdir(exist_ok=True)
    (tmp_path / "schemes.yaml").write_text(yaml.safe_dump(SCHEMES if schemes is None else schemes))
    text = (
        procedure
        if isinstance(procedure, str)
        else yaml.safe_dump(procedure or CONFERENCE, allow_unicode=True)
    )
    name = yaml.safe_load(text)["name"]
    (tmp_path / "procedures" / f"{name}.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def with_step(**changes: Any) -> dict[str, Any]:
    step = {**CONFERENCE["steps"][0], **changes}
    return {**CONFERENCE, "steps": [step]}


def refused(tmp_path: Path, procedure: dict[str, Any] | str | None = None, schemes: Any = None) -> str:
    with pytest.raises(InvalidLaunch) as error:
        load_definitions(folder(tmp_path, procedure, schemes))
    return str(error.value)


def test_the_shipped_definitions_load() -> None:
    definitions = load_definitions(EXAMPLES)
    assert set(definitions.procedures) >= {"conference-call", "crisis-with-deputies"}
    step = definitions.procedure("conference-call").steps[0]
    assert (step.objective, step.percent, step.scheme, step.deadline) == (
        "conference",
        100,
        "CONFCALL",
        timedelta(minutes=2),
    )
    assert step.post_objectives("en")["en"].subject == "Invitation Conference Call - Pin"
    confcall = definitions.schemes.get("CONFCALL")
    assert confcall and [(m.medium, m.after) for m in confcall.media] == [
        ("voice_pro", timedelta(0)),
        ("voice_home", timedelta(minutes=1)),
    ]


@pytest.mark.parametrize(
    ("procedure", "message"),
    [
        (
            with_step(scheme="NOPE"),
            "conference-call.yaml: steps[0] (step 001).scheme: unknown alert scheme 'NOPE'",
        ),
        (
            with_step(contact_fields=["Contacts.S009"]),
            "steps[0] (step 001).contact_fields: 'Contacts.S009' is not a contacts field of the form",
        ),
        (
            with_step(deadline="soon"),
            "steps[0].deadline: Value error, 'soon' is not a duration (write 30s, 2m or 4h)",
        ),
        (
            with_step(percent=120),
            "conference-call.yaml: steps[0].percent: Input should be less than or equal to 100",
        ),
        (
            with_step(objective="party"),
            "steps[0].objective: Input should be 'conference', 'acknowledgement' or 'information'",
        ),
        (
            with_step(contact_fields=[]),
            "steps[0]: Value error, a step needs destinations: contacts and/or contact_fields",
        ),
        (
            with_step(message="Subject: #{Bdy}"),
            "steps[0] (step 001).message, line 1, column 10: unknown field #{Bdy}",
        ),
        (
            with_step(message="Hi #{Contact.Name}"),
            "steps[0] (step 001).message, line 1, column 4: unknown field #{Contact}",
        ),
        (
            with_step(message="#{% if Body %}open"),
            "steps[0] (step 001).message, line 1: Unexpected end of template",
        ),
        (with_step(run="if_previous_not_reached"), "steps[0] (step 001).run: the first step always runs"),
        (
            {**CONFERENCE, "steps": [CONFERENCE["steps"][0]] * 2},
            "steps: numbers must be unique and in order, got 001, 001",
        ),
        ({**CONFERENCE, "name": "renamed"}, "renamed.yaml: name: 'renamed' must match"),
        ({**CONFERENCE, "colour": "red"}, "conference-call.yaml: colour: Extra inputs are not permitted"),
    ],
)
def test_a_broken_procedure_is_refused_with_file_and_path(
    tmp_path: Path, procedure: Any, message: str
) -> None:
    if procedure.get("name") == "renamed":
        folder(tmp_path)  # the file keeps its name, its content says otherwise
        (tmp_path / "procedures" / "conference-call.yaml").write_text(yaml.safe_dump(procedure))
        with pytest.raises(InvalidLaunch) as error:
            load_definitions(tmp_path)
        assert "conference-call.yaml: name: 'renamed' must match the file name 'conference-call'" in str(
            error.value
        )
        return
    assert message in refused(tmp_path, procedure)


def test_an_unquoted_hash_would_cut_a_message_short(tmp_path: Path) -> None:
    text = (
        yaml.safe_dump(CONFERENCE, allow_unicode=True, width=1000)
        .replace("'To join the conference call", "To join the conference call")
        .replace("pin code #{Pin}.'", "pin code #{Pin}.")
    )
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if "body: To join the" in row)
    assert f"line {line}: body has ' #' in an unquoted value, which YAML reads as a comment" in refused(
        tmp_path, text
    )


@pytest.mark.parametrize(
    ("schemes", "message"),
    [
        (
            {**SCHEMES, "default": "GONE"},
            "schemes.yaml: (top): Value error, default scheme 'GONE' is not defined",
        ),
        (
            {**SCHEMES, "schemes": SCHEMES["schemes"] * 2},
            "scheme names must be unique: CONFCALL, MOBILE_FIRST, NOTIFY appear twice",
        ),
        (
            {**SCHEMES, "schemes": [{"name": "X", "media": []}]},
            "schemes.yaml: schemes[0].media: Tuple should have at least 1 item",
        ),
        (
            {**SCHEMES, "schemes": [{"name": "X", "media": [{"medium": "fax"}]}]},
            "schemes[0].media[0].medium: Input should be",
        ),
    ],
)
def test_a_broken_scheme_book_is_refused_with_file_and_path(
    tmp_path: Path, schemes: Any, message: str
) -> None:
    assert message in refused(tmp_path, schemes=schemes)


def launch_request(tmp_path: Path, procedure: dict[str, Any], fields: dict[str, str]) -> LaunchRequest:
    definitions = load_definitions(folder(tmp_path, procedure))
    contacts = tmp_path / "contacts.yaml"
    contacts.write_text(yaml.safe_dump(CONTACTS))
    return LaunchRequest(
        definitions.procedure(procedure["name"]), definitions.schemes, fields, contacts_file=contacts
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"body": "x"}, "field 'Contacts.S001' (Destinations) is required"),
        (
            {"Contacts.S001": "alice", "colour": "red"},
            "unknown field 'colour' (the form of 'conference-call' has: body, Contacts.S001)",
        ),
        ({"Contacts.S001": "alice", "body": "x" * 501}, "field 'body' is 501 characters; at most 500"),
        ({"Contacts.S001": "zoe"}, "step 001: unknown contact 'zoe'"),
        ({"Contacts.S001": "alice,alice"}, "step 001: destination 'alice' is given more than once"),
    ],
)
def test_a_bad_launch_form_is_refused_by_field(tmp_path: Path, fields: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidLaunch) as error:
        prepare(launch_request(tmp_path, CONFERENCE, fields), Settings(_env_file=None), "123456")
    assert message in str(error.value)


def test_global_scheme_overrides_personal_ones_and_personal_ones_apply_otherwise(tmp_path: Path) -> None:
    fields = {"Contacts.S001": "alice,bruno"}
    global_run = prepare(launch_request(tmp_path, CONFERENCE, fields), Settings(_env_file=None), "123456")
    assert {(a.contact.id, a.medium) for a in global_run.alerts(global_run.steps[0])} == {
        ("alice", "voice_pro"), ("alice", "voice_home"), ("bruno", "voice_pro"), ("bruno", "voice_home"),
    }  # fmt: skip
    personal = with_step(scheme=None)
    personal_run = prepare(launch_request(tmp_path, personal, fields), Settings(_env_file=None), "123456")
    personal_alerts = personal_run.alerts(personal_run.steps[0])
    assert [(a.contact.id, a.medium, a.after.seconds) for a in personal_alerts] == [
        ("alice", "voice_mobile", 0), ("alice", "sms", 30), ("alice", "voice_pro", 60),  # her MOBILE_FIRST
        ("bruno", "voice_pro", 0), ("bruno", "voice_home", 60),  # no scheme of his own: the default
    ]  # fmt: skip
    with pytest.raises(
        InvalidLaunch, match="contact 'eve': personal alert scheme 'NOBODY_KNOWS' is not defined"
    ):
        prepare(launch_request(tmp_path, personal, {"Contacts.S001": "eve"}), Settings(_env_file=None), "1")


def test_a_post_objective_sms_over_three_parts_is_refused_at_launch(tmp_path: Path) -> None:
    post = {**CONFERENCE["steps"][0]["post_objective"]["en"]}
    del post["sms"]  # the body alone has 'n°', which is not GSM-7: every part holds 67
    post["body"] = " ".join([post["body"]] * 3)
    procedure = with_step(post_objective=post)
    with pytest.raises(
        InvalidLaunch,
        match=r"SMS for alice \(step 001\) takes 4 parts \(UCS-2, \d+ characters\): at most 3 parts; "
        r"character '°' is not GSM-7",
    ):
        prepare(
            launch_request(tmp_path, procedure, {"Contacts.S001": "alice"}), Settings(_env_file=None), "1"
        )
