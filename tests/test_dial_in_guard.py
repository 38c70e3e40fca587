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
from temporalio.testing import WorkflowEnvironment

from callbacks import urls
from callbacks.dial_in import (
    HOLD,
    LINE_BUSY_GOODBYE,
    LINE_PROBLEM_GOODBYE,
    TOO_MANY_GOODBYE,
)
from callbacks.server import build_app, serve
from callbacks.urls import callback_url
from carrier.simulator import CarrierSimulator
from carrier.simulator.client import place_inbound_call
from carrier.twilio import TwilioCarrier
from config import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN
from domain.events import EndRequest
from stack.ports import free_port
from tests.histories import keep
from tests.support import SCENARIO, Harness, eventually, harness
from workflows.dial_in_guard import guard_id
from workflows.procedure_run import ProcedureRun

STRANGER = "+41797770{:03d}"
CHLOE_MOBILE = "+41795550103"


async def dial(simulator_url: str, caller: str, *digits: str) -> dict[str, Any]:
    return await place_inbound_call(simulator_url, caller, list(digits))


def heard(call: dict[str, Any]) -> list[str]:
    return [line.removeprefix("heard: ") for line in call["transcript"] if line.startswith("heard: ")]


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
        stranded = await dial(h.simulator_url, CHLOE_MOBILE, launched.pin)
        assert stranded["joined"] is None
        assert heard(stranded)[1:] == [HOLD, HOLD, HOLD, LINE_PROBLEM_GOODBYE], (
            "asked to hold, then told the line has a problem; never that the PIN is wrong"
        )
        call = asyncio.create_task(dial(h.simulator_url, CHLOE_MOBILE, launched.pin))
        await asyncio.sleep(1.5)  # the caller is holding
        async with h.worker():
            answered = await call
            assert answered["joined"] == launched.workflow_id and HOLD in heard(answered)
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
