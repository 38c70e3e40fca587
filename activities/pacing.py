"""Asking the account's call pacer for call slots. An activity, because a workflow cannot send
an update to another workflow; the pacer is started on first use."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from workflows.call_pacer import CallPacer, PacerState, SlotRequest, pacer_id


class Slots(BaseModel):
    slots: list[datetime | None]
    answered_at: datetime
    """The worker's clock when the pacer's answer came back. A run's timer counts from when the
    server records it, not from the run's `workflow.now()` (its task's start, before this
    lookup): timers counted from this clock fire on their slot, not a task's length late."""


class PacingActivities:
    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue

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
        handle = self._client.get_workflow_handle_for(CallPacer.run, pacer_id(self._task_queue))
        try:
            return await handle.execute_update(CallPacer.reserve, request, id=request.request_id or None)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
        await self._client.start_workflow(
            CallPacer.run,
            PacerState(),
            id=pacer_id(self._task_queue),
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary="Call pacer: slots for outbound calls across all runs",
        )
        return await handle.execute_update(CallPacer.reserve, request, id=request.request_id or None)
