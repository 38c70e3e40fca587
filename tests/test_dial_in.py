"""Dialling in with the PIN through the phone line: the simulator calls the dial-in number's
Voice URL on the real callback server, keys in digits, and joins the room as Twilio would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from callbacks.dial_in import ENDED_GOODBYE, PROMPT, RETRY, TOO_MANY_GOODBYE, WRONG_PIN_GOODBYE
from carrier.simulator import Scenario
from carrier.simulator.client import place_inbound_call
from carrier.simulator.scenario import NumberPlan
from directory import conference_with_pin
from domain.events import EndRequest
from domain.run_view import RunView
from tests.support import FAST, SCENARIO, Harness, eventually, harness
from workflows.procedure_run import ProcedureRun

CHLOE_MOBILE = "+41795550103"
ALICE_MOBILE = "+41795550101"


async def dial_in(h: Harness, caller: str, *digits: str) -> dict[str, Any]:
    return await place_inbound_call(h.simulator_url, caller, list(digits))


def transcript(call: dict[str, Any]) -> list[str]:
    """The call's transcript, each line heard without the language it was spoken in."""
    return [
        f"heard: {line.partition(']: ')[2]}" if line.startswith("heard [") else line
        for line in call["transcript"]
    ]


def person(report: RunView, participant_id: str) -> Any:
    return next(p for p in report.people if p.id == participant_id)


@pytest.fixture
async def line(dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path):
    async with harness(dev_env.client, tmp_path, contacts_file) as h, h.worker():
        yield h


async def end(h: Harness, workflow_id: str) -> RunView:
    handle = h.client.get_workflow_handle_for(ProcedureRun.run, workflow_id)
    await handle.execute_update(ProcedureRun.end, EndRequest())
    return await handle.result()


async def test_right_pin_hears_the_welcome_and_joins_the_bridge(line: Harness) -> None:
    launched = await line.launch("alice", "chloe", welcome="Server room flooded")
    call = await dial_in(line, CHLOE_MOBILE, launched.pin)
    assert call["joined"] == launched.workflow_id
    assert transcript(call) == [
        f"heard: {PROMPT.format(digits=line.settings.pin_digits)}",
        f"keyed: {launched.pin}",
        "heard: Server room flooded",
        f"joined conference {launched.workflow_id}",
    ]
    report = await eventually(lambda: line.roster(launched), lambda r: person(r, "chloe").in_conference)
    assert [(a.from_number, a.accepted) for a in report.pin_attempts] == [(CHLOE_MOBILE, True)]
    final = await end(line, launched.workflow_id)
    assert not person(final, "chloe").in_conference, "ending the bridge disconnects the dial-in too"


async def test_wrong_pin_then_right_pin_every_attempt_recorded(line: Harness) -> None:
    launched = await line.launch("alice", "chloe")
    call = await dial_in(line, CHLOE_MOBILE, "000000", launched.pin)
    assert call["joined"] == launched.workflow_id
    assert f"heard: {RETRY}" in transcript(call)
    report = await eventually(lambda: line.roster(launched), lambda r: person(r, "chloe").in_conference)
    assert [(a.from_number, a.accepted) for a in report.pin_attempts] == [
        (CHLOE_MOBILE, False),
        (CHLOE_MOBILE, True),
    ], "the wrong PIN is recorded on the conference the caller belongs to"
    await end(line, launched.workflow_id)


async def test_three_wrong_pins_and_the_line_hangs_up(line: Harness) -> None:
    launched = await line.launch("alice")
    call = await dial_in(line, "+447400100001", "111111", "222222", "333333", launched.pin)
    assert call["joined"] is None and call["status"] == "completed"
    assert transcript(call)[-2:] == [f"heard: {WRONG_PIN_GOODBYE}", "hung up by the application"]
    assert transcript(call).count("heard: " + RETRY) == 2, "three tries, then goodbye"
    await end(line, launched.workflow_id)


async def test_a_caller_guessing_pins_is_turned_away(line: Harness) -> None:
    launched = await line.launch("alice")
    guesser = "+447400100002"
    await dial_in(line, guesser, "111111", "222222", "333333")
    second = await dial_in(line, guesser, "444444", "555555", "666666")
    assert transcript(second)[-2:] == [f"heard: {TOO_MANY_GOODBYE}", "hung up by the application"]
    assert transcript(second).count("heard: " + RETRY) == 1, "the fifth wrong PIN in ten minutes ends it"
    third = await dial_in(line, guesser, launched.pin)
    assert third["joined"] is None and transcript(third)[0] == f"heard: {TOO_MANY_GOODBYE}"
    other = await dial_in(line, "+447400100003", launched.pin)
    assert other["joined"] == launched.workflow_id, "other callers are not affected"
    await end(line, launched.workflow_id)


async def test_the_pin_of_a_conference_that_has_ended_is_told_so_and_not_counted(line: Harness) -> None:
    """Someone who kept the invitation dials in after the end: not a wrong PIN, not a guess."""
    launched = await line.launch("alice")
    await end(line, launched.workflow_id)
    late = "+447400100009"
    for _ in range(6):  # more than the per-caller limit of wrong PINs
        call = await dial_in(line, late, launched.pin)
        assert call["joined"] is None
        assert transcript(call)[-2:] == [f"heard: {ENDED_GOODBYE}", "hung up by the application"]
    wrong = "0" * 6 if launched.pin != "0" * 6 else "1" * 6
    guess = await dial_in(line, late, wrong)
    assert f"heard: {RETRY}" in transcript(guess), "none of the six counted against the number"


async def test_unknown_number_with_the_right_pin_joins_as_a_guest(line: Harness) -> None:
    launched = await line.launch("alice")
    call = await dial_in(line, "+41797770004", "2", launched.pin)  # a Swiss number: the menu first
    assert call["transcript"][5].startswith("heard [fr-FR]: Bienvenue sur la ligne de conférence.")
    report = await eventually(
        lambda: line.roster(launched), lambda r: any(p.guest and p.in_conference for p in r.people)
    )
    guest = next(p for p in report.people if p.guest)
    assert (guest.name, guest.language) == ("Guest +41797770004", "fr"), "the guest's choice is kept"
    await end(line, launched.workflow_id)


async def test_hang_up_by_mistake_then_dial_back_in(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    clumsy = SCENARIO.model_copy(
        update={
            "numbers": {**SCENARIO.numbers, "+41215550101": NumberPlan(answer="answer", hangup_after_s=0.3)}
        }
    )
    async with harness(dev_env.client, tmp_path, contacts_file, clumsy) as h, h.worker():
        launched = await h.launch("alice")
        report = await eventually(
            lambda: h.roster(launched), lambda r: person(r, "alice").left_at is not None
        )
        alice = person(report, "alice")
        assert not alice.in_conference and alice.joined_at is not None and alice.rejoins == 0
        assert [e["to"] for e in h.carrier_entries("callee-hangup")] == ["+41215550101"]

        await dial_in(h, ALICE_MOBILE, launched.pin)
        report = await eventually(lambda: h.roster(launched), lambda r: person(r, "alice").in_conference)
        alice = person(report, "alice")
        assert alice.rejoins == 1 and alice.left_at is None
        await end(h, launched.workflow_id)


async def test_machine_on_the_work_phone_falls_back_to_home(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    machines = Scenario(ring_seconds=0.05, numbers={"+41215550101": "machine", "+41215550111": "answer"})
    async with harness(dev_env.client, tmp_path, contacts_file, machines) as h, h.worker():
        launched = await h.launch("alice", definitions=FAST)
        report = await eventually(lambda: h.roster(launched), lambda r: person(r, "alice").in_conference, 15)
        assert [(a.medium, a.outcome) for a in person(report, "alice").attempts] == [
            ("voice_pro", "machine"),
            ("voice_home", "answered"),
        ]
        assert [e["to"] for e in h.carrier_entries("hangup")] == ["+41215550101"], (
            "the machine leg is hung up"
        )
        await end(h, launched.workflow_id)


async def test_pin_is_never_shared_by_two_running_conferences(
    line: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the dev server: ending a run withdraws its queued calls, and the time-skipping server
    wedges a run that cancels an activity in the workflow task where it completed (sdk-java#2391,
    seen here with one core busy); Temporal's own server takes that race."""
    h = line
    first = await h.launch("alice")
    draws = iter([int(first.pin), int(first.pin), 424242])
    monkeypatch.setattr("launching.secrets.randbelow", lambda _: next(draws))
    second = await h.launch("bruno")
    drawn = f"{424242:0{h.settings.pin_digits}d}"
    assert first.pin != second.pin == drawn, "the held PIN was drawn twice and skipped"
    assert await conference_with_pin(h.client, h.settings.pin_secret, first.pin) == first.workflow_id
    assert await conference_with_pin(h.client, h.settings.pin_secret, second.pin) == second.workflow_id
    for launched in (first, second):
        await h.handle(launched).execute_update(ProcedureRun.end, EndRequest())
        await h.handle(launched).result()
