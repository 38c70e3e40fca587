"""Faults a carrier really has, through the real `twilio` SDK: a reply lost after the call was
placed, an API down for a while, webhooks lost while our side is down; and the journal of
what the outside world was told."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from twilio.base.exceptions import TwilioRestException

from carrier.simulator import Scenario
from carrier.simulator.client import open_fault_windows
from tests.test_simulator_support import CALLER_ID, Bench, bench, until

ALICE, MOBILE = "+41215550101", "+41795550101"
SCENARIO = Scenario(ring_seconds=0.05, numbers={ALICE: "answer"})


async def place_call(b: Bench, *events: str) -> str:
    call = await b.client.calls.create_async(
        to=ALICE,
        from_=CALLER_ID,
        twiml="<Response><Say>Test</Say></Response>",
        status_callback=b.hook("/call"),
        status_callback_event=list(events),
    )
    return str(call.sid)


async def test_initiated_is_told_as_the_api_answers(tmp_path: Path) -> None:
    async with bench(tmp_path, SCENARIO) as b:
        sid = await place_call(b, "initiated", "completed")

        await until(lambda: len(b.hooks.at("/call")) >= 1)
        assert [(p["CallSid"], p["CallStatus"]) for p in b.hooks.at("/call")][:1] == [(sid, "queued")]
        await until(lambda: len(b.hooks.at("/call")) == 2)
        assert b.hooks.at("/call")[-1]["CallStatus"] == "completed"


async def test_a_lost_response_is_a_500_but_the_call_is_placed_and_told(tmp_path: Path) -> None:
    lossy = SCENARIO.model_copy(update={"faults": {ALICE: ["lost-response"]}})
    async with bench(tmp_path, lossy) as b:
        with pytest.raises(TwilioRestException) as lost:
            await place_call(b, "initiated")

        assert (lost.value.status, lost.value.code) == (500, 20500)
        [placed] = await b.client.calls.list_async(to=ALICE)
        await until(lambda: len(b.hooks.at("/call")) >= 1)
        assert [p["CallSid"] for p in b.hooks.at("/call")] == [placed.sid], "told, though the answer was lost"


async def test_during_a_server_error_window_every_request_fails_and_nothing_is_done(tmp_path: Path) -> None:
    async with bench(tmp_path, SCENARIO) as b:
        left = await open_fault_windows(b.url, server_errors_for_s=60)
        assert left["server_errors_for_s"] > 59 and left["webhooks_paused_for_s"] == 0

        with pytest.raises(TwilioRestException) as call_refused:
            await place_call(b)
        with pytest.raises(TwilioRestException) as sms_refused:
            await b.client.messages.create_async(to=MOBILE, from_=CALLER_ID, body="PIN 123456")

        assert {(e.value.status, e.value.code) for e in (call_refused, sms_refused)} == {(500, 20500)}
        assert b.simulator.calls == {} and b.simulator.messages == []
        refused = [e["request"].rsplit("/", 1)[-1] for e in b.entries("fault")]
        assert refused == ["Calls.json", "Messages.json"]

        await open_fault_windows(b.url, server_errors_for_s=0)
        assert await place_call(b) in b.simulator.calls


async def test_webhooks_are_lost_while_paused_and_each_one_told_is_journaled(tmp_path: Path) -> None:
    async with bench(tmp_path, SCENARIO) as b:
        callback = b.hook("/sms?run=secret-run-id")
        await open_fault_windows(b.url, webhooks_paused_for_s=30)
        lost = await b.client.messages.create_async(
            to=MOBILE, from_=CALLER_ID, body="PIN 1", status_callback=callback
        )
        await until(lambda: len(b.entries("webhook-lost")) == 2)

        await open_fault_windows(b.url, webhooks_paused_for_s=0)
        told = await b.client.messages.create_async(
            to=MOBILE, from_=CALLER_ID, body="PIN 2", status_callback=callback
        )
        await until(lambda: len(b.hooks.at("/sms")) == 2)

        assert {p["MessageSid"] for p in b.hooks.at("/sms")} == {told.sid}
        assert [(e["event"], e["sid"]) for e in b.entries("webhook-lost")] == [
            ("sms sent", lost.sid),
            ("sms delivered", lost.sid),
        ]
        journaled = b.entries("webhook")
        assert [(e["event"], e["sid"], e["status"]) for e in journaled] == [
            ("sms sent", told.sid, 200),
            ("sms delivered", told.sid, 200),
        ]
        assert {e["url"] for e in journaled} == {b.hook("/sms")}, "query strings stay out of the journal"


async def test_a_fault_window_that_makes_no_sense_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    async with bench(tmp_path, SCENARIO) as b:
        with pytest.raises(RuntimeError, match="400"):
            await open_fault_windows(b.url, server_errors_for_s=-1)
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{b.url}/simulator/faults", json={"server_errors_for": 60}) as typo,
        ):
            assert typo.status == 400
        assert b.entries("fault-window") == []
        assert await place_call(b) in b.simulator.calls
