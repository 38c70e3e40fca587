"""Placing calls. Each call is one activity on the deployment's calls task queue, whose rate is
the carrier account's, kept by the Temporal server for every worker at once
(`domain.call_queue`): the server starts a call in its turn, ahead of calls of lower priority,
or never, since its schedule-to-start deadline is its step's. A call no longer wanted while it
waits (its person reached, the step's objective met, the run ended) is withdrawn before it
starts. Every call not placed says why on its person's row and counts in the
`rallycall_calls_not_placed` metric: nobody the scheme wanted is left out silently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import Priority
from temporalio.exceptions import ActivityError, CancelledError, TimeoutType
from temporalio.exceptions import TimeoutError as ActivityTimeout
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.calls import CarrierActivities, PlaceCall
    from domain.call_queue import PRIORITY, CallQueue
    from domain.contacts import masked_text
    from domain.plan import Alert, StepPlan
    from domain.run_view import MEDIUM_LABELS
    from workflows.activity_policies import CARRIER_RETRY, HEARTBEAT, error_type, failure_message
    from workflows.run_context import RunContext

CALL_TIME = timedelta(seconds=20)
"""One try at placing a call: the carrier's answer to one request, however slow (the adapter
gives up after 15 s)."""
NO_TURN = "no turn at the account's call rate before the deadline (or no calls worker running)"
"""The server could not start the call before its step's deadline (schedule-to-start timeout)."""
BEFORE_ITS_TURN = "the deadline came while their previous call was still waiting or ringing"
"""A person's next medium, never asked for: the deadline came first."""
CARRIER_REFUSED = "the carrier refused our configuration"

Withdrawal = Callable[[Alert], str | None]
"""Why a call waiting for its turn is no longer wanted (None: it still is)."""


class Calls:
    def __init__(self, run: RunContext, queue: CallQueue) -> None:
        self.run = run
        self.queue = queue

    async def place(
        self, step: StepPlan, alerts: list[Alert], deadline: datetime, withdrawn: Withdrawal
    ) -> None:
        """Each call in its turn, until `deadline`; every attempt is on the roster from now."""
        now = workflow.now()
        attempts = [self.run.roster.attempt_queued(a, a.address or "", now) for a in alerts]
        self.run.publish()
        await asyncio.gather(
            *(
                self.place_one(step, alert, attempt.attempt_id, deadline, withdrawn)
                for alert, attempt in zip(alerts, attempts, strict=True)
            )
        )

    async def place_one(
        self, step: StepPlan, alert: Alert, attempt_id: str, deadline: datetime, withdrawn: Withdrawal
    ) -> None:
        reason = self.why_not(alert, withdrawn)
        if reason is not None:
            self.not_placed(attempt_id, reason)
            return
        left = max(deadline - workflow.now(), timedelta(seconds=1))
        placing = workflow.start_activity_method(
            CarrierActivities.place_call,
            PlaceCall(
                attempt_id=attempt_id,
                to=alert.address or "",
                caller_id=self.run.plan.dial_in_number,
                objective=step.objective,
                message=step.message,
                record=self.run.plan.record,
                ring_timeout=self.run.plan.scheme_for(step, alert.contact).ring_timeout,
                queued_at=workflow.now(),
                not_after=deadline,
            ),
            task_queue=self.queue.task_queue,
            priority=Priority(
                priority_key=1 if alert.tag else PRIORITY[step.objective], fairness_key=self.queue.account
            ),
            schedule_to_start_timeout=left,
            start_to_close_timeout=CALL_TIME,
            schedule_to_close_timeout=left + CALL_TIME,
            heartbeat_timeout=HEARTBEAT,
            retry_policy=CARRIER_RETRY,
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"call {alert.contact.name} on {MEDIUM_LABELS[alert.medium]}",
        )
        await workflow.wait_condition(lambda: placing.done() or self.why_not(alert, withdrawn) is not None)
        if not placing.done():
            placing.cancel()  # not started: it never will; being dialled: it finishes
        try:
            call_sid = await placing
        except (ActivityError, asyncio.CancelledError) as err:
            self.not_started(attempt_id, err, self.why_not(alert, withdrawn))
        else:
            self.run.roster.call_placed(attempt_id, call_sid, workflow.now())
        self.run.publish()

    def not_attempted(self, alert: Alert, reason: str) -> None:
        """A call the step ended before it could be asked for: on the roster, not placed."""
        attempt = self.run.roster.attempt_queued(alert, alert.address or "", workflow.now())
        self.not_placed(attempt.attempt_id, reason)

    def why_not(self, alert: Alert, withdrawn: Withdrawal) -> str | None:
        return CARRIER_REFUSED if self.run.carrier_refused else withdrawn(alert)

    def not_started(
        self, attempt_id: str, err: ActivityError | asyncio.CancelledError, withdrawal: str | None
    ) -> None:
        """Why a call was not placed, in words its person's row can show."""
        if isinstance(err, asyncio.CancelledError) or isinstance(err.cause, CancelledError):
            self.not_placed(attempt_id, withdrawal or NO_TURN)
            return
        cause = err.cause
        if no_turn(err):
            self.not_placed(attempt_id, NO_TURN)
        elif isinstance(cause, ActivityTimeout):
            last = failure_message(err) if cause.cause is None else str(cause.cause)
            self.failed(attempt_id, f"not placed before the deadline: the carrier kept failing ({last})")
        else:
            if error_type(err) == "CarrierMisconfigured":
                self.run.refused_by_carrier(failure_message(err))
            self.failed(attempt_id, failure_message(err))

    def not_placed(self, attempt_id: str, reason: str) -> None:
        self.run.roster.not_placed(attempt_id, reason, workflow.now())
        count_not_placed("deadline" if reason in (NO_TURN, BEFORE_ITS_TURN) else "withdrawn")
        self.run.publish()

    def failed(self, attempt_id: str, error: str) -> None:
        workflow.logger.warning("call %s not placed: %s", masked_text(attempt_id), error)
        self.run.roster.attempt_failed(attempt_id, error, workflow.now())
        count_not_placed("failed")


def no_turn(err: ActivityError) -> bool:
    """The server never started it before its deadline, or it started too late to dial."""
    cause = err.cause
    never_started = isinstance(cause, ActivityTimeout) and cause.type == TimeoutType.SCHEDULE_TO_START
    return never_started or error_type(err) == "TooLate"


def count_not_placed(kind: str) -> None:
    """`deadline` (no turn before it: the account's rate, or no calls worker), `withdrawn` (no
    longer wanted: reached, objective met, run ended), `failed` (the carrier refused it)."""
    workflow.metric_meter().create_counter(
        "rallycall_calls_not_placed", "Calls an alert scheme wanted and did not place"
    ).add(1, {"reason": kind})
