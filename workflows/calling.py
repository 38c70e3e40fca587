"""Placing calls. Each call is one activity on the deployment's calls task queue, whose rate is
the carrier account's, kept by the Temporal server for every worker at once
(`domain.call_queue`): the server starts a call in its turn, ahead of calls of lower priority,
or never, since its schedule-to-start deadline is its step's. A call no longer wanted while it
waits (its person reached, the step's objective met, the run ended) is withdrawn before it
starts; one already being dialled then is hung up once placed. Every call not placed says why
on its person's row and counts in the `rallycall_calls_not_placed` metric: nobody the scheme
wanted is left out silently.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import Priority
from temporalio.exceptions import ActivityError, CancelledError, TimeoutType
from temporalio.exceptions import TimeoutError as ActivityTimeout
from temporalio.workflow import ActivityCancellationType, ActivityHandle

with workflow.unsafe.imports_passed_through():
    from activities.calls import CARRIER_DOWN, CarrierActivities, PlaceCall
    from domain.call_queue import PRIORITY, CallQueue, CarrierRoute
    from domain.contacts import masked_text
    from domain.plan import Alert, StepPlan
    from domain.run_view import MEDIUM_LABELS, CallAttempt
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
MOVING = "its carrier is failing: moved to the next"
"""A call waiting for its turn on a carrier the run just saw failing: placed through the next."""
RETRYABLE = frozenset({"CarrierUnavailable"})

Withdrawal = Callable[[list[Alert]], list[str | None]]
"""Why each of these calls waiting for its turn is no longer wanted (None: it still is). For a
batch at once: what the step's state says is worked out once, not once per call."""


class Calls:
    def __init__(
        self, run: RunContext, queue: CallQueue, hang_up: Callable[[str, str], Awaitable[bool]]
    ) -> None:
        self.run = run
        self.queue = queue
        self.hang_up = hang_up
        self.placing = 0
        """Calls being placed now: the run waits for them before it closes."""
        self.bridge_route: Callable[[], CarrierRoute] | None = None
        """The carrier conference calls go through (the bridge's), when the run can move it."""
        self.bridge_failed: Callable[[str, str], CarrierRoute] | None = None
        """Moves the bridge off a carrier that failed a call into it (`bridge_move`)."""

    async def all_placed(self) -> None:
        """Until no call is being placed: a run that ends waits for the calls being dialled (it
        hangs them up once placed), at most one try's time."""
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(
                lambda: self.placing == 0, timeout=CALL_TIME, timeout_summary="calls being dialled"
            )

    def queue_up(self, alerts: list[Alert]) -> list[CallAttempt]:
        """Put the calls on the roster at once (the person's next medium waits for them)."""
        now = workflow.now()
        attempts = [self.run.roster.attempt_queued(a, a.address or "", now) for a in alerts]
        self.run.publish()
        return attempts

    async def place(
        self,
        step: StepPlan,
        alerts: list[Alert],
        attempts: list[CallAttempt],
        deadline: datetime,
        withdrawn: Withdrawal,
    ) -> None:
        """Each call in its turn, until `deadline`. One watcher for the batch withdraws those no
        longer wanted (measured: a condition per call cost 22 ms a pass at 500 calls waiting)."""
        reasons = self.why_not(alerts, withdrawn)
        handles: dict[str, ActivityHandle[str]] = {}
        for alert, attempt, reason in zip(alerts, attempts, reasons, strict=True):
            if reason is not None:
                self.not_placed(attempt.attempt_id, reason)
            else:
                handles[attempt.attempt_id] = self.start(step, alert, attempt.attempt_id, deadline)
        waiting = {a.attempt_id: alert for alert, a in zip(alerts, attempts, strict=True)}
        bridged = step.objective == "conference"
        by_alert = {a.attempt_id: (step, alert, deadline) for alert, a in zip(alerts, attempts, strict=True)}
        by_id = {a.attempt_id: a for a in attempts}
        withdrawals: dict[str, str] = {}

        def unplaced() -> list[str]:
            """Calls still waiting for their turn. One the carrier already has (a callback told
            us: its person may have answered it) is not withdrawn."""
            return [
                aid
                for aid, handle in handles.items()
                if not handle.done() and aid not in withdrawals and by_id[aid].placed_at is None
            ]

        self.placing += len(handles)
        try:
            outcomes = asyncio.gather(
                *(
                    self.settle(attempt_id, by_alert[attempt_id], handles, withdrawals)
                    for attempt_id in handles
                )
            )
            while not outcomes.done():
                await workflow.wait_condition(
                    lambda: (
                        outcomes.done()
                        or any(
                            r is not None for r in self.why_not([waiting[a] for a in unplaced()], withdrawn)
                        )
                        or any(self.on_failed_carrier(by_id[a], bridged) for a in unplaced())
                    )
                )
                current = unplaced()
                for aid, reason in zip(
                    current, self.why_not([waiting[a] for a in current], withdrawn), strict=True
                ):
                    if reason is None and self.on_failed_carrier(by_id[aid], bridged):
                        reason = MOVING
                    if reason is not None:
                        withdrawals[aid] = reason
                        handles[aid].cancel()  # not started: it never will; being dialled: it finishes
            await outcomes
        finally:
            self.placing -= len(handles)

    def on_failed_carrier(self, attempt: CallAttempt, bridged: bool) -> bool:
        """A call waiting on a carrier the run has since seen failing, with another to go to;
        a call into the bridge, waiting on another carrier than the bridge's."""
        if bridged and self.bridge_route is not None:
            return attempt.carrier != self.bridge_route().name
        now = workflow.now()
        carriers = self.run.carriers
        return attempt.carrier in carriers.down(now) and carriers.has_alternative(attempt.carrier, now)

    def start(
        self,
        step: StepPlan,
        alert: Alert,
        attempt_id: str,
        deadline: datetime,
        route: CarrierRoute | None = None,
    ) -> ActivityHandle[str]:
        """The call through `route`, else the first carrier the run has not seen failing, at
        that carrier's rate (its account is the call's fairness key)."""
        now = workflow.now()
        left = max(deadline - now, timedelta(seconds=1))
        language = self.run.plan.language_for(alert.contact)
        if route is None:
            bridged = step.objective == "conference" and self.bridge_route is not None
            route = self.bridge_route() if bridged and self.bridge_route else self.run.carriers.pick(now)
        self.run.roster.routed(attempt_id, route.name)
        return workflow.start_activity_method(
            CarrierActivities.place_call,
            PlaceCall(
                attempt_id=attempt_id,
                to=alert.address or "",
                caller_id=route.number,
                objective=step.objective,
                message=step.message,
                said=step.said_to(language),
                language=language,
                carrier=route.name,
                fail_over=self.run.carriers.has_alternative(route.name, now),
                record=self.run.plan.record,
                ring_timeout=self.run.plan.scheme_for(step, alert.contact).ring_timeout,
                queued_at=workflow.now(),
                not_after=deadline,
            ),
            task_queue=self.queue.task_queue,
            priority=Priority(
                priority_key=1 if alert.tag else PRIORITY[step.objective], fairness_key=route.account
            ),
            schedule_to_start_timeout=left,
            start_to_close_timeout=CALL_TIME,
            schedule_to_close_timeout=left + CALL_TIME,
            heartbeat_timeout=HEARTBEAT,
            retry_policy=CARRIER_RETRY,
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"call {alert.contact.name} on {MEDIUM_LABELS[alert.medium]}",
        )

    async def settle(
        self,
        attempt_id: str,
        call: tuple[StepPlan, Alert, datetime],
        handles: dict[str, ActivityHandle[str]],
        withdrawals: dict[str, str],
    ) -> None:
        """The call's outcome on the roster; a call placed after it was withdrawn (it was being
        dialled) is hung up: its person was reached, or the run ended. A call its carrier could
        not place because that carrier is failing goes through the next at once."""
        while True:
            carrier = self.run.roster.attempt(attempt_id).carrier
            try:
                call_sid = await handles[attempt_id]
            except (ActivityError, asyncio.CancelledError) as err:
                moved_to = self.moved(attempt_id, carrier, err, withdrawals.get(attempt_id), call[0])
                if moved_to is not None:
                    withdrawals.pop(attempt_id, None)
                    step, alert, deadline = call
                    handles[attempt_id] = self.start(step, alert, attempt_id, deadline, moved_to)
                    continue
                self.not_started(attempt_id, err, withdrawals.get(attempt_id))
            else:
                self.run.roster.call_placed(attempt_id, call_sid, workflow.now())
                self.carrier_worked(carrier)
                if withdrawals.get(attempt_id) == MOVING:
                    withdrawals.pop(attempt_id)  # placed before it could be moved: it stays
                elif attempt_id in withdrawals or self.run.roster.ended:
                    await self.hang_up(call_sid, carrier)
            self.run.publish()
            return

    def moved(
        self,
        attempt_id: str,
        carrier: str,
        err: ActivityError | asyncio.CancelledError,
        withdrawal: str | None,
        step: StepPlan,
    ) -> CarrierRoute | None:
        """The carrier to place this call through instead, if it was not placed because its
        carrier is failing or refuses our settings while another may not (the worker said so, or
        the run moved it before its turn). A call into the bridge follows the bridge, which moves
        off a carrier failing such a call."""
        now = workflow.now()
        carriers = self.run.carriers
        bridged = step.objective == "conference" and self.bridge_route is not None
        if withdrawal == MOVING:
            self.run.roster.carrier_fault(attempt_id, f"{carrier}: moved before its turn ({MOVING})")
            return self.bridge_route() if bridged and self.bridge_route else carriers.pick(now)
        refused = isinstance(err, ActivityError) and error_type(err) == "CarrierMisconfigured"
        if refused and not carriers.has_alternative(carrier, now):
            refused = False  # every carrier refused us: the run says so (`not_started`)
        if isinstance(err, ActivityError) and (error_type(err) == CARRIER_DOWN or refused):
            why = failure_message(err)
            self.run.roster.carrier_fault(attempt_id, why)
            if bridged and self.bridge_failed is not None:
                return self.bridge_failed(carrier, why)
            was_up = carrier not in carriers.down(now)
            carriers.failed(carrier, now)
            route = carriers.pick(now)
            if was_up:
                self.run.carrier_failed(carrier, why, route.name, now)
            return route
        carriers.released(carrier)
        return None

    def carrier_worked(self, carrier: str) -> None:
        if self.run.carriers.worked(carrier):
            self.run.carrier_back(carrier, workflow.now())

    def not_attempted(self, alert: Alert, reason: str) -> None:
        """A call the step ended before it could be asked for: on the roster, not placed."""
        (attempt,) = self.queue_up([alert])
        self.not_placed(attempt.attempt_id, reason)

    def why_not(self, alerts: list[Alert], withdrawn: Withdrawal) -> list[str | None]:
        if self.run.carrier_refused:
            return [CARRIER_REFUSED] * len(alerts)
        return withdrawn(alerts) if alerts else []

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
        elif withdrawal is not None and (isinstance(cause, ActivityTimeout) or error_type(err) in RETRYABLE):
            self.not_placed(attempt_id, withdrawal)  # its retries stopped when it was withdrawn
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
    longer wanted: reached, the objective met, the run ended, the carrier refused our account),
    `failed` (the carrier refused the call, or kept failing)."""
    workflow.metric_meter().create_counter(
        "rallycall_calls_not_placed", "Calls an alert scheme wanted and did not place"
    ).add(1, {"reason": kind})
