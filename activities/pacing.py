"""Asking the account's call pacer for call slots. An activity, because a workflow cannot send
an update to another workflow; the pacer is started on first use."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from workflows.call_pacer import CallPacer, PacerState, SlotRequest, pacer_id, pacer_queue


class Slots(BaseModel):
    slots: list[datetime | None]
    answered_at: datetime
    """The worker's clock when the pacer's answer came back. A run's timer counts from when the
    server records it, not from the run's `workflow.now()` (its task's start, before this
    lookup): timers counted from this clock fire on their slot, not a task's length late."""


GATHER_AT_MOST = 500
"""Requests in one update to the pacer (each a few hundred bytes)."""


class PacingActivities:
    """Requests to the pacer from this worker's runs go together: while one update is answered,
    the next requests gather and go in the next one. Every run asks the same workflow; 100 runs
    launched together asking one update each kept its lock busy until requests timed out, which
    clears the server's record of the updates in flight, so they were aborted and asked again
    (measured: 56,000 aborted updates in five minutes, the pacer answering one run a second)."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue
        self._waiting: list[tuple[SlotRequest, asyncio.Future[list[datetime | None]]]] = []
        self._sending: asyncio.Task[None] | None = None

    @activity.defn
    async def reserve_call_slots(self, request: SlotRequest) -> list[datetime | None]:
        """Slots for `count` calls (runs recorded before `Slots`)."""
        return await self._reserve(request)

    @activity.defn
    async def reserve_timed_call_slots(self, request: SlotRequest) -> Slots:
        """Slots for `count` calls, and when they came back. Safe to retry: the pacer gives a
        request it has seen (its `request_id`) the slots it gave it before."""
        slots = await self._reserve(request)
        return Slots(slots=slots, answered_at=datetime.now(UTC))

    async def _reserve(self, request: SlotRequest) -> list[datetime | None]:
        answer: asyncio.Future[list[datetime | None]] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, answer))
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send_gathered())
        return await answer

    async def _send_gathered(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:GATHER_AT_MOST], self._waiting[GATHER_AT_MOST:]
            batch = [(request, answer) for request, answer in batch if not answer.done()]
            if not batch:
                continue
            try:
                answers = await self._ask_pacer([request for request, _ in batch])
            except Exception as exc:  # each asking activity fails with it, and is retried
                for _, answer in batch:
                    if not answer.done():
                        answer.set_exception(exc)
                continue
            for (_, answer), slots in zip(batch, answers, strict=True):
                if not answer.done():
                    answer.set_result(slots)

    async def _ask_pacer(self, requests: list[SlotRequest]) -> list[list[datetime | None]]:
        """Safe to repeat: the pacer gives a request it has seen (its `request_id`) the slots it
        gave it before."""
        handle = self._client.get_workflow_handle_for(CallPacer.run, pacer_id(self._task_queue))
        try:
            return await handle.execute_update(CallPacer.reserve_together, requests)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
        await self._client.start_workflow(
            CallPacer.run,
            PacerState(),
            id=pacer_id(self._task_queue),
            task_queue=pacer_queue(self._task_queue),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary="Call pacer: slots for outbound calls across all runs",
        )
        return await handle.execute_update(CallPacer.reserve_together, requests)
