"""A long, busy conference on the time-skipping server: four hours receiving 2,000 dial-in
attempts (right and wrong PINs, the `rejoin` update) and 5,000 bridge events (join and leave of
the dial-in calls), spread over its life. It continues as new before Temporal's per-run limits
(2,000 updates, 10,000 signals, 51,200 events), carrying everything over; afterwards the right
PIN is still accepted and `end` returns the view with every attempt recorded. The time-skipping
server enforces none of those limits, so each run's history is counted here."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from domain.events import BridgeUpdate, EndRequest, RejoinRequest
from tests.support import harness
from workflows.procedure_run import ProcedureRun

ATTEMPTS, BRIDGE_EVENTS, SLICES = 2_000, 5_000, 40
LIFE = timedelta(hours=4)
CALLERS = ["+41795550101", "+41795550102", "+41795550103", "+41215550111"]


async def bounded(work: Sequence[Awaitable[object]], at_once: int) -> None:
    """At most `at_once` in flight (a run takes 10 updates in flight)."""
    gate = asyncio.Semaphore(at_once)

    async def one(item: Awaitable[object]) -> None:
        async with gate:
            await item

    await asyncio.gather(*(one(item) for item in work))


async def runs_of(client: Client, workflow_id: str, first_run: str) -> list[dict[str, int]]:
    """Each run of the chain, from the first: its events, updates and signals."""
    counted, run_id = [], first_run
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        kinds = [event.event_type for event in history.events]
        counted.append({
            "events": len(kinds),
            "updates": kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED),
            "signals": kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED),
        })  # fmt: skip
        last = history.events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
            else ""
        )
    return counted


async def test_four_busy_hours_stay_within_each_runs_limits(
    time_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    async with harness(time_env.client, tmp_path, contacts_file) as h, h.worker():
        launched = await h.launch("alice", "bruno", "chloe", "dan")
        handle = h.handle(launched)
        first_run = (await handle.describe()).run_id
        assert first_run
        wrong = (
            "0" * len(launched.pin) if launched.pin != "0" * len(launched.pin) else "1" * len(launched.pin)
        )
        attempt = 0
        events_sent = 0
        for piece in range(SLICES):
            await time_env.sleep(LIFE / (SLICES + 1))
            rejoins, dial_ins = [], []
            for _ in range(ATTEMPTS // SLICES):
                right = attempt % 4 == 0
                call_sid = f"CAdialin{attempt:05d}" if right else None
                request = RejoinRequest(
                    pin=launched.pin if right else wrong, from_number=CALLERS[attempt % 4], call_sid=call_sid
                )
                rejoins.append(handle.execute_update(ProcedureRun.rejoin, request))
                if call_sid:
                    dial_ins.append(call_sid)
                attempt += 1
            await bounded(rejoins, 5)
            share = BRIDGE_EVENTS * (piece + 1) // SLICES - events_sent
            updates = [
                BridgeUpdate(kind=("join", "leave")[n % 2], conference_sid="CFroom", call_sid=sid)
                for n in range(share)
                if (sid := dial_ins[n // 2 % len(dial_ins)])
            ]
            await bounded([handle.signal(ProcedureRun.bridge_event, u) for u in updates], 20)
            events_sent += share

        result = await handle.execute_update(
            ProcedureRun.rejoin, RejoinRequest(pin=launched.pin, from_number=CALLERS[0])
        )
        assert result.accepted and result.participant_id == "alice", "the right PIN still lets alice in"
        await handle.execute_update(ProcedureRun.end, EndRequest(reason="four hours"))
        final = await handle.result()

    assert final.state == "ended" and final.end_reason == "four hours"
    assert len(final.pin_attempts) == ATTEMPTS + 1, "every attempt recorded, across runs"
    assert sum(a.accepted for a in final.pin_attempts) == ATTEMPTS // 4 + 1
    assert not any(p.in_conference for p in final.people)
    runs = await runs_of(h.client, launched.workflow_id, first_run)
    assert len(runs) >= 2, f"continued as new: {runs}"
    for run in runs:
        assert run["updates"] <= 2_000 and run["signals"] <= 10_000 and run["events"] <= 51_200, runs
    assert sum(r["updates"] for r in runs) == ATTEMPTS + 2, "every rejoin and the end, each once"
    assert sum(r["signals"] for r in runs) >= BRIDGE_EVENTS
