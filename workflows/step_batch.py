"""A batch of a step without a bridge: up to BATCH_SIZE of its destinations, alerted by their
schemes in a workflow of their own, so a step can reach thousands without any one history
growing past Temporal's limits (10,240 events warned, 2,000 pending activities). The launcher
starts a run's batches with their people frozen in their inputs (`hand_to_batches`), so no
payload of the run grows with the people it warns; each waits for the run to begin its step.

    until the run begins the step (or closes)          wait
    until the step's deadline (or the run says stop)   alert whoever is not reached yet
    then                                               send the post-objective message
    until the run closes                               record answers that come too late

It reports how many it reached to the run, at most every REPORT_EVERY and once when its step
is over; the run adds the batches up against the step's objective.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from functools import partial

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from domain.call_queue import CallQueue
    from domain.events import SEALED_SIGNALS, Acknowledgement, AttemptCalls, CallProgress, FromRun
    from domain.plan import RunPlan, StepPlan, batch_id
    from domain.roster import Roster, RosterState
    from domain.run_view import PeoplePage, PeopleQuery, RunView, page_of
    from rendering.webui import current_details
    from workflows.step_timeline import StepTimeline

BATCH_SIZE = 200
REPORT_EVERY = timedelta(seconds=5)
REPORTS_PER_SECOND = 5
"""What all of a step's batches report to their run together, at most (batches beyond 25 report
less often than REPORT_EVERY), so the run's history does not grow with its batches' reports."""


class BatchInput(BaseModel):
    plan: RunPlan
    """The run's plan cut down to this batch: one step, its destinations here."""
    parent_id: str
    started_at: datetime | None
    """When the step started in the run: the schemes' times count from it. None for a batch
    started at launch: the run's `begin` says when."""
    calls: CallQueue
    lifetime: timedelta
    """A batch the run never closes (it was terminated) closes itself after this long; one
    started at launch waits this long for its `begin`."""


class StepBegun(BaseModel):
    """The run's word that the step began: a batch started at launch alerts from then."""

    run_id: str
    started_at: datetime
    lifetime: timedelta
    report_every: timedelta


def report_every(batches: int) -> timedelta:
    return max(REPORT_EVERY, timedelta(seconds=batches / REPORTS_PER_SECOND))


def hand_to_batches(
    plan: RunPlan, run_id: str, attempt: str, calls: CallQueue, late_answers: timedelta
) -> tuple[RunPlan, list[tuple[str, BatchInput]]]:
    """Split a launch: each step without a bridge goes to batches of BATCH_SIZE, their people
    frozen in their own inputs; the run's plan keeps its bridge steps' people and, for the other
    steps, only how many each batch holds. `attempt` marks this launch's batches apart from
    those of another attempt at the same run (a retry after a crash, a second console replica):
    theirs carry another PIN."""
    prefix = f"{run_id}-{attempt}"
    batches: list[tuple[str, BatchInput]] = []
    steps = []
    waits = plan.max_duration + sum((s.deadline for s in plan.steps), timedelta()) + late_answers
    for step in plan.steps:
        if step.has_bridge:
            steps.append(step)
            continue
        sizes = []
        for index, first in enumerate(range(0, len(step.destinations), BATCH_SIZE), start=1):
            chunk = step.destinations[first : first + BATCH_SIZE]
            cut = plan.model_copy(
                update={
                    "steps": (step.model_copy(update={"destinations": chunk}),),
                    "people": tuple(plan.person(cid) for cid in chunk),
                    "call_me_links": {
                        cid: plan.call_me_links[cid] for cid in chunk if cid in plan.call_me_links
                    },
                }
            )
            batches.append((batch_id(prefix, step.number, index), BatchInput(
                plan=cut, parent_id=run_id, started_at=None, calls=calls, lifetime=waits
            )))  # fmt: skip
            sizes.append(len(chunk))
        steps.append(step.model_copy(update={"destinations": (), "batch_sizes": tuple(sizes)}))
    kept = plan.bridge_people()
    run_plan = plan.model_copy(
        update={
            "steps": tuple(steps),
            "people": tuple(c for c in plan.people if c.id in kept),
            "call_me_links": {cid: link for cid, link in plan.call_me_links.items() if cid in kept},
            "batch_prefix": prefix,
            "participants": len(plan.people),
        }
    )
    return run_plan, batches


class BatchProgress(BaseModel):
    workflow_id: str
    counted: int
    step_over: bool = False


class BatchSummary(BaseModel):
    workflow_id: str
    size: int
    counted: int


@workflow.defn(versioning_behavior=VersioningBehavior.PINNED)
class StepBatch:
    @workflow.init
    def __init__(self, batch: BatchInput) -> None:
        self.batch = batch
        self.step: StepPlan = batch.plan.steps[0]
        info = workflow.info()
        self.roster = Roster(
            batch.plan, info.workflow_id, RosterState.fresh(batch.plan, workflow.now()), batch.parent_id
        )
        self.stopped = False
        self.closing = False
        self.begun: StepBegun | None = None
        self.details_stale = True
        self.alerting = StepTimeline(batch.plan, self.roster, batch.calls, self.step_done, self.publish)

    @workflow.run
    async def run(self, batch: BatchInput) -> BatchSummary:
        step = self.step
        self.details = asyncio.create_task(self.keep_details_fresh())
        started_at, lifetime, every = batch.started_at, batch.lifetime, REPORT_EVERY
        if started_at is None:  # started at launch: the run says when its step begins
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(
                    lambda: self.begun is not None or self.closing,
                    timeout=batch.lifetime,
                    timeout_summary="wait for the run to begin this step",
                )
            if self.begun is None:
                return self.never_begun()
            started_at, lifetime, every = self.begun.started_at, self.begun.lifetime, self.begun.report_every
        self.roster.step_started(step, started_at)
        self.publish()
        reports = asyncio.create_task(self.report_progress(every))
        await self.alerting.run_step(step, started_at)
        self.roster.step_ended(step, workflow.now())
        self.publish()
        await reports
        if step.post_objective and not self.closing:
            self.alerting.run.background(self.alerting.messages.send_post_objective(step))
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(
                lambda: self.closing,
                timeout=lifetime,
                timeout_summary="record answers that come too late",
            )
        self.roster.end(workflow.now(), "the run closed")
        self.publish()
        await self.alerting.calls.all_placed()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return BatchSummary(
            workflow_id=workflow.info().workflow_id, size=len(step.destinations), counted=self.reached()
        )

    def never_begun(self) -> BatchSummary:
        """The run closed (its step skipped, or the run ended first) or is gone: nobody here was
        alerted."""
        self.roster.end(
            workflow.now(), "the step never began" if self.closing else "the run never began the step"
        )
        self.publish()
        return BatchSummary(
            workflow_id=workflow.info().workflow_id, size=len(self.step.destinations), counted=0
        )

    def step_done(self, step: StepPlan) -> str | None:
        """Why this batch wants no more alerts, or None."""
        if self.closing:
            return "the run was ended first"
        if self.stopped:
            return "the step's objective was reached first"
        return "everyone in this batch was reached" if self.reached() == len(step.destinations) else None

    def reached(self) -> int:
        return self.roster.count(self.step)

    async def report_progress(self, every: timedelta) -> None:
        """Tell the run how many this batch reached: when it changes (at most `every`), and
        once, final, when the step is over here."""
        parent = workflow.get_external_workflow_handle(self.batch.parent_id)
        reported = 0
        while not self.roster.step_over(self.step):
            await workflow.wait_condition(partial(self.changed_since, reported))
            if self.roster.step_over(self.step):
                break
            reported = self.reached()
            await parent.signal("batch_progress", BatchProgress(workflow_id=self.id, counted=reported))
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(
                    lambda: self.roster.step_over(self.step),
                    timeout=every,
                    timeout_summary="report again",
                )
        final = self.roster.state.steps[self.step.number].counted
        await parent.signal(
            "batch_progress", BatchProgress(workflow_id=self.id, counted=final, step_over=True)
        )

    def changed_since(self, reported: int) -> bool:
        return self.reached() != reported or self.roster.step_over(self.step)

    @property
    def id(self) -> str:
        return workflow.info().workflow_id

    def publish(self) -> None:
        self.details_stale = True

    async def keep_details_fresh(self) -> None:
        """Once per workflow task, as the run does (`ProcedureRun.keep_details_fresh`)."""
        while True:
            await workflow.wait_condition(lambda: self.details_stale)
            self.details_stale = False
            workflow.set_current_details(current_details(self.roster.view()))

    @workflow.signal
    async def call_progress(self, event: CallProgress) -> None:
        unwanted_call = self.roster.call_progress(event, workflow.now())
        self.publish()
        if unwanted_call:
            await self.alerting.carrier.hang_up(unwanted_call)

    @workflow.signal
    def acknowledged(self, event: Acknowledgement) -> None:
        self.roster.acknowledged(event, workflow.now())
        self.publish()

    @workflow.signal
    def begin(self, begun: StepBegun) -> None:
        """The run began the step (a batch started at launch); a second word changes nothing."""
        if self.begun is None and begun.run_id == self.batch.parent_id:
            self.begun = begun

    @workflow.signal
    def stop(self, by: FromRun | None = None) -> None:
        """The run's objective for this step is reached: no more alerts."""
        if self.sealed(by):
            self.stopped = True

    @workflow.signal
    def close(self, by: FromRun | None = None) -> None:
        """The run is closing: nothing more to record."""
        if self.sealed(by):
            self.closing = True

    @staticmethod
    def sealed(by: FromRun | None) -> bool:
        """From the run, sealed by the codec; one with no argument is forged: ignored."""
        if by is None and workflow.patched(SEALED_SIGNALS):
            workflow.logger.warning("a stop or close without its sealed argument: ignored")
            return False
        return True

    @workflow.query
    def attempt_calls(self, attempt_id: str) -> AttemptCalls:
        """For a retried call whose answer was lost: its own call, if a callback told it."""
        return self.roster.attempt_calls(attempt_id)

    @workflow.query
    def people(self, query: PeopleQuery) -> PeoplePage:
        """A page of the people listed here: a roster of any size is read page by page."""
        return page_of(self.roster.state.people.values(), query)

    @workflow.query
    def view(self) -> RunView:
        return self.roster.view()
