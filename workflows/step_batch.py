"""A batch of a step without a bridge: up to BATCH_SIZE of its destinations, alerted by their
schemes in a workflow of their own, so a step can reach thousands without any one history
growing past Temporal's limits (10,240 events warned, 2,000 pending activities).

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
    from domain.plan import RunPlan, StepPlan
    from domain.roster import Roster, RosterState
    from domain.run_view import RunView
    from rendering.webui import current_details
    from workflows.step_timeline import StepTimeline

BATCH_SIZE = 200
REPORT_EVERY = timedelta(seconds=5)


class BatchInput(BaseModel):
    plan: RunPlan
    """The run's plan cut down to this batch: one step, its destinations here."""
    parent_id: str
    started_at: datetime
    """When the step started in the run: the schemes' times count from it."""
    calls: CallQueue
    lifetime: timedelta
    """A batch the run never closes (it was terminated) closes itself after this long."""


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
        self.details_stale = True
        self.alerting = StepTimeline(batch.plan, self.roster, batch.calls, self.step_done, self.publish)

    @workflow.run
    async def run(self, batch: BatchInput) -> BatchSummary:
        step = self.step
        self.details = asyncio.create_task(self.keep_details_fresh())
        self.roster.step_started(step, batch.started_at)
        self.publish()
        reports = asyncio.create_task(self.report_progress())
        await self.alerting.run_step(step, batch.started_at)
        self.roster.step_ended(step, workflow.now())
        self.publish()
        await reports
        if step.post_objective and not self.closing:
            self.alerting.run.background(self.alerting.messages.send_post_objective(step))
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(
                lambda: self.closing,
                timeout=batch.lifetime,
                timeout_summary="record answers that come too late",
            )
        self.roster.end(workflow.now(), "the run closed")
        self.publish()
        await self.alerting.calls.all_placed()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return BatchSummary(
            workflow_id=workflow.info().workflow_id, size=len(step.destinations), counted=self.reached()
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

    async def report_progress(self) -> None:
        """Tell the run how many this batch reached: when it changes (at most every
        REPORT_EVERY), and once, final, when the step is over here."""
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
                    timeout=REPORT_EVERY,
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
    def view(self) -> RunView:
        return self.roster.view()
