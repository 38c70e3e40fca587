"""The dial-in line under attack and under failure, on the dev server: wrong PINs are counted in
Temporal (across callback servers and their restarts), rotating caller IDs hit the line-wide
limit, a worker that is down is never a wrong PIN, and fifty right PINs keyed in the same second
into one conference are all admitted (Temporal takes ten updates in flight per run)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from callbacks import urls
from callbacks.dial_in import (
    HOLD,
    LINE_BUSY_GOODBYE,
    LINE_PROBLEM_GOODBYE,
    RETRY,
    TOO_MANY_GOODBYE,
)
from callbacks.server import build_app, serve
from callbacks.urls import callback_url
from carrier.simulator import CarrierSimulator
from carrier.simulator.client import place_inbound_call
from carrier.twilio import TwilioCarrier
from config import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN
from domain.events import EndRequest
from i18n.catalogues import words
from stack.ports import free_port
from tests.histories import keep
from tests.support import SCENARIO, Harness, eventually, harness
from workflows.dial_in_guard import Attempt, guard_id
from workflows.procedure_run import ProcedureRun

STRANGER = "+4474001{:05d}"
"""Guests calling from abroad: a British number is asked for its PIN in English at once (a Swiss
number nobody knows is offered the language menu first: tests/test_scale_languages.py)."""
CHLOE_MOBILE = "+41795550103"
ALICE_NUMBERS = ["+41215550101", "+41215550111", "+41795550101"]
CHLOE_NUMBERS = [CHLOE_MOBILE, "+41215550103", "+41215550113"]


async def dial(simulator_url: str, caller: str, *digits: str) -> dict[str, Any]:
    return await place_inbound_call(simulator_url, caller, list(digits))


def heard(call: dict[str, Any]) -> list[str]:
    """What the caller heard, without the language it was spoken in (`heard [en-US]: text`)."""
    return [line.partition("]: ")[2] for line in call["transcript"] if line.startswith("heard [")]


async def end(h: Harness, workflow_id: str) -> None:
    handle = h.client.get_workflow_handle_for(ProcedureRun.run, workflow_id)
    await handle.execute_update(ProcedureRun.end, EndRequest())
    await handle.result()


@pytest.fixture
async def line(dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path) -> AsyncIterator[Harness]:
    async with harness(dev_env.client, tmp_path, contacts_file, pin_failures_per_line=6) as h, h.worker():
        yield h


async def second_callback_server(h: Harness) -> AsyncIterator[str]:
    """Another replica of the callback server, sharing nothing with the first but Temporal; a
    simulator of its own sends the dial-in line there. Yields that simulator's URL."""
    port = free_port()
    config = h.settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    carrier = TwilioCarrier(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, h.simulator_url)
    replica = await serve(build_app(carrier, h.client, config), "127.0.0.1", port)
    phones = CarrierSimulator(
        DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, SCENARIO, None, dial_in_number=config.dial_in_number,
        voice_url=callback_url(config.public_url, urls.VOICE_INBOUND),
    )  # fmt: skip
    runner = await serve(phones.app(), "127.0.0.1", 0)
    try:
        yield "http://{}:{}".format(*runner.addresses[0][:2])
    finally:
        await runner.cleanup()
        await replica.cleanup()
        await carrier.close()


async def test_wrong_pins_are_counted_across_callback_servers(line: Harness) -> None:
    launched = await line.launch("alice")
    guesser = STRANGER.format(1)
    first = await dial(line.simulator_url, guesser, "111111", "222222", "333333")
    assert first["joined"] is None
    async for other_replica in second_callback_server(line):
        second = await dial(other_replica, guesser, "444444", "555555")
        assert heard(second)[-1] == TOO_MANY_GOODBYE, "the fifth wrong PIN, on another replica, ends it"
        third = await dial(other_replica, guesser, launched.pin)
        assert third["joined"] is None and heard(third) == [TOO_MANY_GOODBYE], "turned away before any PIN"
    again = await dial(line.simulator_url, guesser, launched.pin)
    assert heard(again) == [TOO_MANY_GOODBYE], "and the first replica knows it too"
    await end(line, launched.workflow_id)
    guard = await line.client.get_workflow_handle(guard_id(line.settings.task_queue)).fetch_history()
    keep("dial_in_guard", guard)


async def test_rotating_caller_ids_hit_the_line_wide_limit(
    line: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    launched = await line.launch("alice", "chloe")
    caplog.set_level(logging.WARNING)
    for n in range(6):  # RALLYCALL_PIN_FAILURES_PER_LINE=6 here
        await dial(line.simulator_url, STRANGER.format(100 + n), f"{900000 + n}")
    spoofed = await dial(line.simulator_url, STRANGER.format(200), launched.pin)
    assert spoofed["joined"] is None and heard(spoofed) == [LINE_BUSY_GOODBYE], (
        "even the right PIN from a number of no running run is turned away: guessing learns nothing"
    )
    chloe = await dial(line.simulator_url, CHLOE_MOBILE, launched.pin)
    assert chloe["joined"] == launched.workflow_id, "a participant's own number still gets in"
    assert any("dial-in line locked" in record.getMessage() for record in caplog.records), "an alert"
    await end(line, launched.workflow_id)


async def test_a_worker_that_is_down_is_never_a_wrong_pin(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    async with harness(dev_env.client, tmp_path, contacts_file, dial_in_patience_s=1.0) as h:
        async with h.worker():
            launched = await h.launch("alice", "chloe")
            await eventually(lambda: h.roster(launched), lambda r: r.person("alice").in_conference)
        stranded = await dial(h.simulator_url, CHLOE_MOBILE, "2", launched.pin)
        assert stranded["joined"] is None
        assert heard(stranded)[1] == "Pour le français, tapez 2.", (
            "with no worker to say which language is hers, her Swiss number is offered the menu"
        )
        hold, problem = words(HOLD, "fr"), words(LINE_PROBLEM_GOODBYE, "fr")
        assert heard(stranded)[5:] == [hold, hold, hold, problem], (
            "asked to hold, then told the line has a problem, in the language she chose (it is carried "
            "over each hold); never that the PIN is wrong"
        )
        call = asyncio.create_task(dial(h.simulator_url, CHLOE_MOBILE, "2", launched.pin))
        await asyncio.sleep(1.5)  # the caller is holding
        async with h.worker():
            answered = await call
            assert answered["joined"] == launched.workflow_id and hold in heard(answered)
            view = await eventually(lambda: h.roster(launched), lambda r: r.person("chloe").in_conference)
            assert all(a.accepted for a in view.pin_attempts), "no wrong PIN was recorded"
            after = await dial(h.simulator_url, CHLOE_MOBILE, "000000", launched.pin)
            assert after["joined"] == launched.workflow_id, "and nothing counted against her number"
            await end(h, launched.workflow_id)


async def test_fifty_right_pins_in_the_same_second_are_all_admitted(line: Harness) -> None:
    launched = await line.launch("alice")
    callers = [STRANGER.format(500 + n) for n in range(50)]
    calls = await asyncio.gather(*(dial(line.simulator_url, caller, launched.pin) for caller in callers))
    assert [c["joined"] for c in calls] == [launched.workflow_id] * 50
    view = await eventually(lambda: line.roster(launched), lambda r: r.in_bridge >= 51)
    assert sum(p.guest and p.in_conference for p in view.people) == 50
    await end(line, launched.workflow_id)


async def checks_counted(h: Harness) -> int:
    """Wrong PINs the guard counted: each `check` of a wrong PIN it accepted (the ones it
    refused are not written to its history)."""
    counted = 0
    async for event in h.client.get_workflow_handle(guard_id(h.settings.task_queue)).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            payloads = event.workflow_execution_update_accepted_event_attributes.accepted_request.input.args
            [attempt] = await h.client.data_converter.decode(payloads.payloads, [Attempt])
            counted += not attempt.right
    return counted


async def test_wrong_pins_at_once_never_get_past_the_line_limit(line: Harness) -> None:
    """Counted before the verdict: twenty strangers keying a wrong PIN in the same second, with
    the line's limit at six, get six checked and counted; the fourteen others are turned away
    unchecked."""
    launched = await line.launch("alice", "chloe")
    wrong = [f"{9_000_000_000 + n}" for n in range(20)]
    calls = await asyncio.gather(
        *(dial(line.simulator_url, STRANGER.format(300 + n), pin) for n, pin in enumerate(wrong))
    )
    assert sum(RETRY in heard(c) for c in calls) == 5, "five asked again, the sixth reached the limit"
    assert sum(heard(c)[-1] == LINE_BUSY_GOODBYE for c in calls) == 15
    assert await checks_counted(line) == 6
    stranger = await dial(line.simulator_url, STRANGER.format(400), launched.pin)
    assert stranger["joined"] is None and heard(stranger) == [LINE_BUSY_GOODBYE]
    chloe = await dial(line.simulator_url, CHLOE_MOBILE, launched.pin)
    assert chloe["joined"] == launched.workflow_id, "her own number is checked by her own run"
    await end(line, launched.workflow_id)


async def test_wrong_pins_at_once_from_a_runs_people_never_get_past_its_limit(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    """The run counts its own people's wrong PINs in the update that compares them: eight at
    once from its numbers, with its limit at three, get three counted; then its people are
    turned away, right PIN or not, and the line still lets a guest in."""
    async with harness(dev_env.client, tmp_path, contacts_file, pin_failures_per_run=3) as h, h.worker():
        launched = await h.launch("alice", "chloe")
        numbers = [*ALICE_NUMBERS, *CHLOE_NUMBERS, ALICE_NUMBERS[0], CHLOE_NUMBERS[0]]
        wrong = "1" * len(launched.pin) if set(launched.pin) != {"1"} else "2" * len(launched.pin)
        calls = await asyncio.gather(*(dial(h.simulator_url, number, wrong) for number in numbers))
        assert sum(RETRY in heard(c) for c in calls) == 2, "asked again twice; the third reached the limit"
        assert sum(heard(c)[-1] == TOO_MANY_GOODBYE for c in calls) == 6
        view = await h.roster(launched)
        assert [(a.accepted, a.turned_away) for a in view.pin_attempts] == [(False, None)] * 2 + [
            (False, "run")
        ], "three compared and recorded, the third turning the run's numbers away"
        assert any(
            "turns away every number of this run's people for 10 minutes" in p for p in view.problems
        ), "nothing silent: the run says who cannot dial in now (the refusals after are not recorded)"
        chloe = await dial(h.simulator_url, CHLOE_MOBILE, launched.pin)
        assert chloe["joined"] is None and heard(chloe)[-1] == TOO_MANY_GOODBYE
        guest = await dial(h.simulator_url, STRANGER.format(600), launched.pin)
        assert guest["joined"] == launched.workflow_id, "the run's limit turns away its own people only"
        await end(h, launched.workflow_id)


async def test_a_person_turned_away_by_their_numbers_limit_is_said_on_the_run(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    """Nothing silent: the wrong PIN that reaches a person's limit is recorded as turning their
    number away, and the run's problems say so and what still brings them in; the refusals
    after it are not recorded (a flood of them must not grow the run's history)."""
    async with harness(dev_env.client, tmp_path, contacts_file, pin_failures_per_caller=2) as h, h.worker():
        launched = await h.launch("alice", "chloe")
        wrong = "1" * len(launched.pin) if set(launched.pin) != {"1"} else "2" * len(launched.pin)
        first = await dial(h.simulator_url, CHLOE_MOBILE, wrong, wrong)
        assert heard(first)[-1] == TOO_MANY_GOODBYE
        refused = await dial(h.simulator_url, CHLOE_MOBILE, launched.pin)
        assert refused["joined"] is None and heard(refused)[-1] == TOO_MANY_GOODBYE
        view = await h.roster(launched)
        assert [(a.participant_id, a.turned_away) for a in view.pin_attempts] == [
            ("chloe", None), ("chloe", "caller"),
        ]  # fmt: skip
        assert (
            "the dial-in line turns away Chloé Rochat's number +41*****0103 for 10 minutes "
            "(too many wrong PINs "
            "from it): bring them in with 'call again now' or their call-me link"
        ) in view.problems
        await end(h, launched.workflow_id)


async def test_a_locked_line_checks_a_persons_pin_against_their_own_runs_only(line: Harness) -> None:
    """Chloe belongs to one conference; another's PIN from her number lets her in as a guest
    while the line is open, and is "not valid" once it is locked (as any wrong PIN: a spoofed
    number learns nothing about other runs' PINs), while her own run's PIN still lets her in."""
    hers = await line.launch("alice", "chloe")
    other = await line.launch("bruno")
    open_line = await dial(line.simulator_url, CHLOE_MOBILE, other.pin)
    assert open_line["joined"] == other.workflow_id
    for n in range(6):  # RALLYCALL_PIN_FAILURES_PER_LINE=6 here
        await dial(line.simulator_url, STRANGER.format(700 + n), f"{9_100_000_000 + n}")
    locked = await dial(line.simulator_url, CHLOE_MOBILE, other.pin, hers.pin)
    assert heard(locked)[1] == RETRY and locked["joined"] == hers.workflow_id
    assert await checks_counted(line) == 6, "the line's limit was reached by the strangers"
    others = await line.roster(other)
    assert [(a.from_number, a.accepted) for a in others.pin_attempts] == [(CHLOE_MOBILE, True)], (
        "the other run heard of her PIN while the line was open, not once it was locked"
    )
    view = await line.roster(hers)
    assert [a.accepted for a in view.pin_attempts] == [False, False, True], (
        "her own run compares first: the other run's PIN is a wrong one there, both times"
    )
    await end(line, hers.workflow_id)
    await end(line, other.workflow_id)
