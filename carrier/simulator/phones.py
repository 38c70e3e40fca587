"""The far ends of calls, as the scenario says: phones that ring, then answer or not, a key
pressed when asked, a hang-up by mistake; and callers dialling the conference number."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from carrier.simulator.calls import Call, Calls
from carrier.simulator.dial_queue import DialQueue
from carrier.simulator.journal import Journal
from carrier.simulator.rooms import ADD_FAILED
from carrier.simulator.runtime import Runtime
from carrier.simulator.scenario import NumberPlan, Scenario
from carrier.simulator.switch import Switch

UNANSWERED = {"no-answer": "no-answer", "busy": "busy", "fail": "failed"}


class Phones:
    def __init__(
        self, scenario: Scenario, calls: Calls, switch: Switch, runtime: Runtime, journal: Journal
    ) -> None:
        self._scenario = scenario
        self._calls = calls
        self._switch = switch
        self._runtime = runtime
        self._journal = journal
        self._queue = DialQueue(scenario.calls_per_second)

    async def dial(self, call: Call, ring_timeout: str | None) -> None:
        """Place an outbound call: `initiated` is told as the API answers (not after the client
        got its answer: one whose answer is lost still hears of the call, and the answer does not
        wait for the application's webhook, as with Twilio); it then rings in the background.
        Beyond the account's calls per second it first waits its turn in the account's queue
        (`queue_ms` in the journal: the carrier dialled it that much after `at`)."""
        plan = self._scenario.plan(call.to)
        queued = self._queue.take_turn()
        call.queue_ms = round(queued * 1000)
        placed = {"sid": call.sid, "to": call.to, "from": call.sender, "behaviour": plan.answer}
        self._journal.record(
            "call", {**placed, "twiml": call.twiml, "timeout": ring_timeout, "queue_ms": call.queue_ms}
        )
        self._calls.start(call, self._initiate_and_ring(call, plan, queued))

    async def _initiate_and_ring(self, call: Call, plan: NumberPlan, queued: float) -> None:
        if queued:
            await asyncio.sleep(queued)
        await self._calls.report(call, "initiated")
        await self._ring(call, plan)

    async def dial_in(
        self, number: str, voice_url: str, caller: str, keys: list[str], hangup_after_s: float | None
    ) -> dict[str, Any]:
        """`caller` dials `number`, whose Voice URL answers, and keys `keys` at the prompts; with
        `hangup_after_s`, they hang up that long after joining a room."""
        call = self._calls.open(number, caller, "inbound", "ringing")
        call.answered_at = datetime.now(UTC)
        self._journal.record("inbound", {"sid": call.sid, "from": caller, "to": number})
        transcript: list[str] = []
        await self._runtime.run(call, await self._runtime.fetch(voice_url, call), voice_url, keys, transcript)
        if call.room and hangup_after_s:
            self._calls.start(call, self._hang_up_later(call, hangup_after_s))
        return {"call_sid": call.sid, "joined": call.room, "status": call.status, "transcript": transcript}

    async def _ring(self, call: Call, plan: NumberPlan) -> None:
        await self._calls.report(call, "ringing")
        await asyncio.sleep(self._scenario.ring_seconds)
        if plan.answer not in ("answer", "machine"):
            await self._switch.hang_up(call, UNANSWERED[plan.answer], ADD_FAILED)
            return
        await self._calls.answer(call, "human" if plan.answer == "answer" else "machine_start")
        left_to_its_application = plan.answer == "machine" and call.detects_machines
        if left_to_its_application or not call.twiml or call.status != "in-progress":
            return
        await self._runtime.run(call, call.twiml, "", [plan.press] if plan.press else [], [])
        if plan.hangup_after_s and call.status == "in-progress":
            await self._hang_up_later(call, plan.hangup_after_s)

    async def _hang_up_later(self, call: Call, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if call.status == "in-progress":
            self._journal.record("callee-hangup", {"sid": call.sid, "to": call.to, "from": call.sender})
            await self._switch.hang_up(call, "completed")
