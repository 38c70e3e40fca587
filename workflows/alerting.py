"""Alerting one step's destinations by their alert schemes, inside a workflow: the same for the
bridge steps of a run and for the batches of a step without a bridge.

    at each scheme time   for whoever is not reached yet and has that medium:
                          wait until their previous call has rung out,
                          calls in the slots the account's pacer gives, SMS and email at once
    at the deadline       no more alerts; calls without a slot before it are not placed

Only Temporal's deterministic APIs here: timers, conditions and activities.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, TimeoutType
from temporalio.exceptions import TimeoutError as ActivityTimeout
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.calls import (
        NON_RETRYABLE,
        CallResult,
        CarrierActivities,
        CarrierQuestion,
        PlaceCall,
        PlaceCalls,
        SendSms,
        SmsBatch,
    )
    from activities.mail import EmailBatch, MailActivities, SendEmail
    from activities.message_batches import MESSAGES_PER_BATCH, MessageOutcome
    from activities.pacing import PacingActivities, Slots
    from domain.call_queue import PRIORITY, CallQueue
    from domain.contacts import Contact, masked_text
    from domain.events import CarrierTruth
    from domain.messages import Outgoing
    from domain.pacing import MIN_WAIT
    from domain.plan import Alert, Round, RunPlan, StepPlan
    from domain.roster import Roster
    from domain.run_view import MEDIUM_LABELS, Channel, Purpose
    from workflows.call_pacer import SlotRequest

CARRIER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=NON_RETRYABLE,
)
SLOT_LATE = timedelta(milliseconds=100)
"""A slot's timer firing later than this missed its burst (see `domain.pacing`)."""
SLOT_RETRIES = 3
AT_ONCE = MIN_WAIT / 2
"""A slot this close is one to use at once: the pacer gives no later slot closer than MIN_WAIT,
and its clock may be ahead of this run's (a workflow's time stands still during its task)."""
SLOT_LATE_CHECK = "fresh-slot-after-a-late-timer"
"""workflow.patched: runs recorded before it placed a call whenever its timer fired."""
LATE_STILL_CALLS = "late-slots-still-call"
"""workflow.patched: runs recorded before it gave a call up after SLOT_RETRIES late timers."""
TIMERS_FROM_ANSWER = "slot-timers-counted-from-the-pacers-answer"
"""workflow.patched: runs recorded before it counted slot timers from the task's start, so a
long task (the first, with its lookups) made each of its timers fire that much late."""
ANSWER_AHEAD = timedelta(seconds=1)
"""The pacer's answer is never this far ahead of `workflow.now()` in one task: beyond, the
worker's clock is off and `workflow.now()` is the safer base."""
LOCAL_LOOKUPS = "pacer-and-carrier-lookups-as-local-activities"
"""workflow.patched: runs recorded before it asked the pacer and the carrier with activity tasks."""
BURSTS = "calls-in-bursts"
"""workflow.patched: runs recorded before it placed each call with an activity and a timer of its own."""
RECONCILE = "reconcile-with-carrier"
"""workflow.patched: runs recorded before it never asked the carrier."""
DROP_WHEN_UNHEARD = "drop-when-answered-unheard"
"""workflow.patched: runs recorded before it recorded a call answered and ended while every
callback of it was lost as answered only, and gave that person no way back."""
DROP_WHEN_CALL_ENDS = "drop-when-the-call-ends"
"""workflow.patched: runs recorded before it saw a drop only in the room's own leave callback, so
a drop learnt from the call's end (its leave lost, or told later) got no way back."""
CHECK_BESIDE_ROUND = "carrier-check-beside-the-round"
"""workflow.patched: runs recorded before it had each round wait for its check with the carrier."""
RECHECK_WHEN_PLACED = "overdue-check-when-a-call-is-placed"
"""workflow.patched: runs recorded before it waited for a callback with no deadline when no call
was placed yet, so a call placed later whose final callback was lost held its person's next
medium until the step's deadline (found by test_stack_crash: a worker killed mid-burst)."""
LATE_TOGETHER = "late-calls-ask-together"
"""workflow.patched: runs recorded before it had each call whose timer fired late ask the pacer
for a fresh slot on its own."""
MESSAGE_BATCHES = "messages-in-batches"
"""workflow.patched: runs recorded before it sent each SMS and email with an activity of its own."""
CALL_TIME = timedelta(seconds=20)
"""One try at placing a call: the carrier's answer, however slow (the adapter gives up sooner)."""
CALL_HEARTBEAT = timedelta(seconds=5)
"""A try whose worker died is tried again this soon, not after CALL_TIME."""
BATCH_HEARTBEAT = timedelta(seconds=5)
"""A batch whose worker died goes on elsewhere this soon, from its last recorded message."""
NO_TURN = "no turn at the account's call rate before the deadline (or no calls worker running)"
"""A call the server could not start before its step's deadline (schedule-to-start timeout)."""
RING_GRACE = timedelta(seconds=3)
"""Past a call's ring time, how long its final callback may take before we ask the carrier."""
PACER_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=50),
    backoff_coefficient=1.5,
    maximum_interval=timedelta(seconds=1),
)
"""Many runs starting together meet the pacer's ten updates in flight: retry soon, not in seconds."""
MAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(seconds=60),
    non_retryable_error_types=["MailRejected", "MailMisconfigured"],
)


class Alerter:
    """Owned by a workflow; `done(step)` says when the step wants no more alerts (objective
    reached, stopped, run ending), `publish()` shows a change."""

    def __init__(
        self,
        plan: RunPlan,
        roster: Roster,
        calls: CallQueue,
        done: Callable[[StepPlan], bool],
        publish: Callable[[], None],
    ) -> None:
        self.plan = plan
        self.roster = roster
        self.calls = calls
        self.calls_per_second = calls.calls_per_second
        self.done = done
        self.publish = publish
        self.carrier_refused = False
        self.tasks: list[asyncio.Task[None]] = []
        """Rounds, calls and messages run as tasks, so the timeline never waits for a slow
        carrier or mail server; kept so they live on, and so a run can wait for them."""
        self.burst: list[tuple[PlaceCall, asyncio.Future[CallResult], str]] = []
        """Calls due in this moment, gathered into one activity (see `dial`)."""
        self.outbox: dict[Channel, list[tuple[SendSms | SendEmail, asyncio.Future[MessageOutcome], str]]] = {}
        """SMS and emails due in this moment, gathered into batches (see `post`)."""
        self.slot_timers: dict[datetime, asyncio.Future[None]] = {}
        """One timer per slot moment, shared by the calls of that burst."""
        self.late: list[tuple[datetime, datetime, asyncio.Future[datetime | None]]] = []
        """Calls whose slot went by in this moment, asking for fresh slots together (see `fresh_slot`)."""
        self.slot_requests = 0
        """Numbers this run's requests to the pacer: a retried request names the same one."""
        self.pacer_answered_at: datetime | None = None
        """When the latest slots came back (worker clock, recorded): slot timers count from it."""

    def background(self, work: Coroutine[Any, Any, None]) -> None:
        self.tasks.append(asyncio.create_task(work))

    def idle(self) -> bool:
        return all(task.done() for task in self.tasks)

    async def run_step(
        self, step: StepPlan, started: datetime, at_deadline: Callable[[], None] | None = None
    ) -> None:
        """Each round of the schemes at its time until the step is done or its deadline, then
        `at_deadline` (the PIN messages go out before the last check with the carrier)."""
        deadline = started + step.deadline
        beside = workflow.patched(CHECK_BESIDE_ROUND)
        for round_ in self.plan.rounds(step):
            if round_.after >= step.deadline:
                break
            self.roster.next_round(step, started + round_.after)
            self.publish()
            await self.wait_until(started + round_.after, f"step {step.number}: next alerts", step)
            if self.done(step):
                break
            if beside:
                # A round calls only those whose previous call is settled, and waits for the
                # others (asking the carrier when a callback is overdue): the check need not
                # hold it back (measured: at 100 runs it made home calls seconds late).
                self.background(self.reconcile())
            else:
                await self.reconcile()
                if self.done(step):
                    break
            self.background(self.alert_round(step, round_, deadline))
        self.roster.next_round(step, None)
        await self.wait_until(deadline, f"step {step.number}: deadline", step)
        if at_deadline is not None:
            at_deadline()
        if not self.done(step):
            await self.reconcile()

    async def reconcile(self) -> None:
        """Before each round and deadline, ask the carrier what lost callbacks would have told:
        calls still ringing past their ring time (or answered, not known to have ended), and who
        is in the bridge. The roster converges to the carrier's truth."""
        if not workflow.patched(RECONCILE) or not self.roster.called_anyone():
            return
        question = CarrierQuestion(
            calls=self.roster.calls_to_check(workflow.now(), RING_GRACE),
            room=workflow.info().workflow_id
            if self.plan.has_bridge and self.roster.parent_id is None
            else None,
        )
        if not question.calls and question.room is None:
            return
        asked_at = workflow.now()
        options: dict[str, Any] = {
            "start_to_close_timeout": timedelta(seconds=30),
            "schedule_to_close_timeout": timedelta(minutes=1),
            "retry_policy": CARRIER_RETRY,
            "summary": "ask the carrier what callbacks may have missed",
        }
        try:
            truth: CarrierTruth
            if workflow.patched(LOCAL_LOOKUPS):  # a read: no task-queue round trip before the round
                truth = await workflow.execute_local_activity_method(
                    CarrierActivities.carrier_truth, question, **options
                )
            else:
                truth = await workflow.execute_activity_method(
                    CarrierActivities.carrier_truth, question, **options
                )
        except ActivityError as err:
            workflow.logger.warning("could not reconcile with the carrier: %s", failure_message(err))
            return
        drops = workflow.patched(DROP_WHEN_CALL_ENDS)
        unheard = workflow.patched(DROP_WHEN_UNHEARD)
        for call_sid in self.roster.carrier_truth(
            truth, asked_at, workflow.now(), drop_if_in_bridge=drops, drop_if_unheard=unheard
        ):
            self.background(self.hang_up_quietly(call_sid))
        self.publish()

    async def hang_up_quietly(self, call_sid: str) -> None:
        await self.hang_up(call_sid)

    async def wait_until(self, moment: datetime, summary: str, step: StepPlan | None = None) -> None:
        """Wait for `moment`, or until the step is done, whichever comes first."""
        remaining = moment - workflow.now()
        if remaining > timedelta(0) and not (step and self.done(step)):
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(
                    lambda: step is not None and self.done(step), timeout=remaining, timeout_summary=summary
                )

    async def alert_round(self, step: StepPlan, round_: Round, deadline: datetime) -> None:
        """One round: each person as soon as their previous call has rung out, if still not reached."""
        waiting = list(round_.alerts)
        while waiting and not self.over(step):
            ready = [a for a in waiting if self.roster.settled(step, a.contact.id)]
            if not ready:
                await self.wait_for_settled(step, waiting)
                continue
            waiting = [a for a in waiting if a not in ready]
            due = [a for a in ready if a.address and not self.roster.reached(step, a.contact.id)]
            for alert in due:
                if not alert.is_call:
                    self.background(self.send_alert(step, alert))
            calls = [a for a in due if a.is_call]
            if calls and not self.carrier_refused:
                self.background(self.place_calls(step, calls, deadline))

    async def wait_for_settled(self, step: StepPlan, alerts: list[Alert]) -> None:
        """Until one of them has rung out; if a callback is late past a call's ring time, the
        carrier is asked (a lost callback must not hold back someone's next medium)."""
        if not workflow.patched(RECONCILE):
            await workflow.wait_condition(partial(self.any_settled, step, alerts))
            return
        check_at = self.roster.next_check(workflow.now(), RING_GRACE)
        timeout = max(check_at - workflow.now(), timedelta(seconds=1)) if check_at else None
        settled = partial(self.any_settled, step, alerts)
        if workflow.patched(RECHECK_WHEN_PLACED):
            # a call whose placing was still in doubt (a worker lost mid-burst) may only now get
            # its ID: from then on its callback can be overdue, so wait again with that deadline
            def settled_or_new_check() -> bool:
                return settled() or self.roster.next_check(workflow.now(), RING_GRACE) != check_at

            wake = settled_or_new_check
        else:
            wake = settled
        try:
            await workflow.wait_condition(wake, timeout=timeout, timeout_summary="callback overdue")
        except TimeoutError:
            await self.reconcile()

    def any_settled(self, step: StepPlan, alerts: list[Alert]) -> bool:
        return self.over(step) or any(self.roster.settled(step, a.contact.id) for a in alerts)

    def over(self, step: StepPlan) -> bool:
        return self.done(step) or self.roster.step_over(step)

    async def place_calls(
        self,
        step: StepPlan,
        alerts: list[Alert],
        deadline: datetime,
        still_wanted: Callable[[Alert], bool] | None = None,
    ) -> None:
        """Queue the calls, get their slots from the account's pacer, place each in its slot if
        it is still wanted then (by default: the step goes on and the person is not reached)."""
        wanted = still_wanted or partial(self.scheme_still_wants, step)
        now = workflow.now()
        attempts = [self.roster.attempt_queued(a, a.address or "", now) for a in alerts]
        self.publish()
        if self.calls.paced_by == "engine":
            await asyncio.gather(
                *(
                    self.call_in_turn(step, alert, attempt.attempt_id, deadline, wanted)
                    for alert, attempt in zip(alerts, attempts, strict=True)
                )
            )
            return
        slots = await self.reserve_slots(len(alerts), deadline)
        await asyncio.gather(
            *(
                self.call(step, alert, attempt.attempt_id, slot, deadline, wanted)
                for alert, attempt, slot in zip(alerts, attempts, slots, strict=True)
            )
        )

    async def call_in_turn(
        self,
        step: StepPlan,
        alert: Alert,
        attempt_id: str,
        deadline: datetime,
        wanted: Callable[[Alert], bool],
    ) -> None:
        """One call, one activity on the calls queue: the server starts it in the account's
        turn, or never if its turn would come after the deadline. Withdrawn (cancelled before
        it starts) once the person is no longer wanted."""
        if not wanted(alert) or self.carrier_refused:
            self.not_placed(attempt_id, self.why_withdrawn(step, alert, deadline))
            return
        left = max(deadline - workflow.now(), timedelta(seconds=1))
        request = PlaceCall(
            attempt_id=attempt_id,
            to=alert.address or "",
            caller_id=self.plan.dial_in_number,
            objective=step.objective,
            message=step.message,
            record=self.plan.record,
            ring_timeout=self.plan.scheme_for(step, alert.contact).ring_timeout,
            queued_at=workflow.now(),
            not_after=deadline,
        )
        placing = workflow.start_activity_method(
            CarrierActivities.place_call,
            request,
            task_queue=self.calls.task_queue,
            priority=Priority(
                priority_key=PRIORITY[step.objective] if alert.tag == "" else 1,
                fairness_key=self.calls.account,
            ),
            schedule_to_start_timeout=left,
            start_to_close_timeout=CALL_TIME,
            schedule_to_close_timeout=left + CALL_TIME,
            heartbeat_timeout=CALL_HEARTBEAT,
            retry_policy=CARRIER_RETRY,
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"call {alert.contact.name} on {MEDIUM_LABELS[alert.medium]}",
        )
        await workflow.wait_condition(lambda: placing.done() or not wanted(alert) or self.carrier_refused)
        if not placing.done():
            placing.cancel()
        now = workflow.now()
        try:
            call_sid = await placing
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                self.roster.not_placed(attempt_id, self.why_withdrawn(step, alert, deadline), now)
            else:
                self.roster_call_failure(attempt_id, err, now)
        except asyncio.CancelledError:
            self.roster.not_placed(attempt_id, self.why_withdrawn(step, alert, deadline), now)
        else:
            self.roster.call_placed(attempt_id, call_sid, now)
        self.publish()

    def why_withdrawn(self, step: StepPlan, alert: Alert, deadline: datetime) -> str:
        """Why a call waiting for its turn was withdrawn, for its person's row."""
        if self.carrier_refused:
            return "the carrier refused our configuration"
        if self.roster.ended:
            return "the run ended before its turn"
        if workflow.now() >= deadline or self.roster.step_over(step):
            return NO_TURN
        if self.roster.reached(step, alert.contact.id) or self.roster.live_legs(alert.contact.id):
            return "reached before its turn"
        return "the step's objective was reached, or the run was ended, before its turn"

    def roster_call_failure(self, attempt_id: str, err: ActivityError, at: datetime) -> None:
        """Why a call was not placed, in words its person's row can show."""
        cause = err.cause
        if isinstance(cause, ActivityTimeout) and cause.type == TimeoutType.SCHEDULE_TO_START:
            self.roster.not_placed(attempt_id, NO_TURN, at)
        elif isinstance(cause, ActivityTimeout) or _error_type(err) == "TooLate":
            self.roster.not_placed(attempt_id, "the deadline passed first", at)
        else:
            self.record_call(
                CallResult(attempt_id=attempt_id, error_type=_error_type(err), error=failure_message(err))
            )

    async def reserve_slots(
        self, count: int, deadline: datetime, missed: datetime | None = None
    ) -> list[datetime | None]:
        """Slots from the account's pacer: when each call may start, None past the deadline. A
        local activity (no task-queue round trip), named so that its retries get the same slots."""
        self.slot_requests += 1
        info = workflow.info()
        request = SlotRequest(
            count=count,
            calls_per_second=self.calls_per_second,
            not_after=deadline,
            missed=missed,
            request_id=f"{info.workflow_id}/{info.run_id}/{self.slot_requests}",
        )
        options: dict[str, Any] = {
            "start_to_close_timeout": timedelta(seconds=10),
            "schedule_to_close_timeout": max(deadline - workflow.now(), timedelta(seconds=10)),
            "retry_policy": PACER_RETRY,
            "summary": f"call slots for {count}",
        }
        slots: list[datetime | None]
        if workflow.patched(TIMERS_FROM_ANSWER):
            answer: Slots = await workflow.execute_local_activity_method(
                PacingActivities.reserve_timed_call_slots, request, **options
            )
            self.pacer_answered_at = answer.answered_at
            slots = answer.slots
        elif workflow.patched(LOCAL_LOOKUPS):
            slots = await workflow.execute_local_activity_method(
                PacingActivities.reserve_call_slots, request, **options
            )
        else:
            slots = await workflow.execute_activity_method(
                PacingActivities.reserve_call_slots, request, **options
            )
        return slots

    async def wait_for_slot(self, slot: datetime | None, deadline: datetime) -> datetime | None:
        """Until the slot; a slot whose timer fired late (a loaded server) went by: its call
        would crowd the next burst at the carrier, so it takes a fresh one instead. After
        SLOT_RETRIES late timers it goes in its last slot however late: late beats never (a
        carrier queues calls beyond the account's rate; under `make chaos` a loaded dev server
        fired every timer up to 0.6 s late, and calls given up then were people never called)."""
        for _ in range(SLOT_RETRIES):
            if slot is None or slot <= self.clock() + AT_ONCE:
                return slot  # at once: the pacer counted the way back to the run
            await self.sleep_until(slot)
            if workflow.now() - slot <= SLOT_LATE or not workflow.patched(SLOT_LATE_CHECK):
                return slot
            if workflow.patched(LATE_TOGETHER):
                slot = await self.fresh_slot(deadline, slot)
            else:
                slot = (await self.reserve_slots(1, deadline))[0]
        if slot is None or not workflow.patched(LATE_STILL_CALLS):
            return None
        if slot > self.clock() + AT_ONCE:
            await self.sleep_until(slot)
        return slot

    async def fresh_slot(self, deadline: datetime, missed: datetime) -> datetime | None:
        """A slot for a call whose timer fired after its slot `missed`: the pacer lets it go at
        once if that cannot crowd a later burst. The calls of a burst whose timer fired late ask
        in one request, not one each (measured: 1,100 requests to the pacer at 100 runs)."""
        wanted: asyncio.Future[datetime | None] = asyncio.get_running_loop().create_future()
        self.late.append((deadline, missed, wanted))
        if len(self.late) == 1:
            self.background(self.ask_for_fresh_slots())
        return await wanted

    async def ask_for_fresh_slots(self) -> None:
        await asyncio.sleep(0)  # the other late calls of this moment join first
        late, self.late = self.late, []
        for deadline, missed in dict.fromkeys((d, m) for d, m, _ in late):
            waiting = [wanted for d, m, wanted in late if (d, m) == (deadline, missed)]
            try:
                slots = await self.reserve_slots(len(waiting), deadline, missed)
            except ActivityError as err:
                for wanted in waiting:
                    wanted.set_exception(err)
                continue
            for wanted, slot in zip(waiting, slots, strict=True):
                wanted.set_result(slot)

    def clock(self) -> datetime:
        """Now, as a timer started in this task counts it: `workflow.now()` is when the task
        began, which may be before the pacer answered (runs recorded before: always that)."""
        now = workflow.now()
        answered = self.pacer_answered_at
        if answered is None or not now < answered < now + ANSWER_AHEAD:
            return now
        return answered

    async def sleep_until(self, slot: datetime) -> None:
        """The calls of one burst share one timer (250 calls, one timer, not 250)."""
        if not workflow.patched(BURSTS):
            await workflow.sleep(slot - workflow.now(), summary="wait for the call slot")
            return
        timer = self.slot_timers.get(slot)
        if timer is None:
            timer = asyncio.ensure_future(
                workflow.sleep(slot - self.clock(), summary="wait for the call slot")
            )
            self.slot_timers[slot] = timer
            timer.add_done_callback(lambda _: self.slot_timers.pop(slot, None))
        await asyncio.shield(timer)

    async def dial(self, request: PlaceCall, summary: str) -> CallResult:
        """Calls whose slot comes in the same moment go out together, in one activity: a round
        of 250 reaches the carrier at once instead of through 250 activity tasks."""
        placed: asyncio.Future[CallResult] = asyncio.get_running_loop().create_future()
        self.burst.append((request, placed, summary))
        if len(self.burst) == 1:
            self.background(self.send_burst())
        return await placed

    async def send_burst(self) -> None:
        await asyncio.sleep(0)  # the other calls of this moment join first
        burst, self.burst = self.burst, []
        requests = [request for request, _, _ in burst]
        names = first_names([summary for _, _, summary in burst])
        latest = max(request.not_after for request in requests)
        try:
            results = await workflow.execute_activity_method(
                CarrierActivities.place_calls,
                PlaceCalls(calls=requests),
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=max(latest - workflow.now(), timedelta(seconds=1)),
                retry_policy=CARRIER_RETRY,
                summary=f"{len(burst)} call(s): {names}"[:200],
            )
        except ActivityError as err:
            for _, placed, _ in burst:
                placed.set_exception(err)
            return
        for (_, placed, _), result in zip(burst, results, strict=True):
            placed.set_result(result)

    def scheme_still_wants(self, step: StepPlan, alert: Alert) -> bool:
        return not self.over(step) and not self.roster.reached(step, alert.contact.id)

    async def call(
        self,
        step: StepPlan,
        alert: Alert,
        attempt_id: str,
        slot: datetime | None,
        deadline: datetime,
        wanted: Callable[[Alert], bool],
    ) -> None:
        """Place one call in its slot; if the carrier cannot take it now, again in a later slot
        after a pause, until the deadline."""
        request: PlaceCall | None = None
        pause = CARRIER_RETRY.initial_interval
        while True:
            slot = await self.wait_for_slot(slot, deadline)
            if slot is None:
                self.not_placed(attempt_id, "no call slot before the deadline (calls per second)")
                return
            if not wanted(alert):
                self.not_placed(attempt_id, "not needed any more when its slot came")
                return
            if self.carrier_refused:
                self.not_placed(attempt_id, "the carrier refused our configuration")
                return
            request = request or PlaceCall(
                attempt_id=attempt_id,
                to=alert.address or "",
                caller_id=self.plan.dial_in_number,
                objective=step.objective,
                message=step.message,
                record=self.plan.record,
                ring_timeout=self.plan.scheme_for(step, alert.contact).ring_timeout,
                queued_at=workflow.now(),
                not_after=deadline,
            )
            result = await self.place(request, f"call {alert.contact.name} on {MEDIUM_LABELS[alert.medium]}")
            if result.try_again is None or workflow.now() + pause >= deadline:
                self.record_call(result)
                self.publish()
                return
            await workflow.sleep(pause, summary="the carrier could not take the call: try again")
            pause = min(pause * 2, CARRIER_RETRY.maximum_interval or pause)
            request = request.model_copy(
                update={
                    "earlier": "maybe-placed"
                    if "maybe-placed" in (request.earlier, result.try_again)
                    else "not-placed"
                }
            )
            slot = (await self.reserve_slots(1, deadline))[0]

    async def place(self, request: PlaceCall, summary: str) -> CallResult:
        """One try: in this moment's burst (runs recorded before bursts: an activity of its own,
        which retries by itself)."""
        try:
            if workflow.patched(BURSTS):
                return await self.dial(request, summary)
            call_sid = await workflow.execute_activity_method(
                CarrierActivities.place_call,
                request,
                start_to_close_timeout=timedelta(seconds=20),
                schedule_to_close_timeout=max(request.not_after - workflow.now(), timedelta(seconds=1)),
                retry_policy=CARRIER_RETRY,
                summary=summary,
            )
            return CallResult(attempt_id=request.attempt_id, call_sid=call_sid)
        except ActivityError as err:
            timed_out = _error_type(err) == "TooLate" or _timed_out(err)
            return CallResult(
                attempt_id=request.attempt_id,
                error_type="TooLate" if timed_out else _error_type(err),
                error=failure_message(err),
            )

    def record_call(self, result: CallResult) -> None:
        now = workflow.now()
        if result.call_sid:
            self.roster.call_placed(result.attempt_id, result.call_sid, now)
        elif result.error_type == "TooLate":
            self.roster.not_placed(result.attempt_id, "the deadline passed first", now)
        else:
            workflow.logger.warning("call %s not placed: %s", masked_text(result.attempt_id), result.error)
            self.roster.attempt_failed(result.attempt_id, result.error or "not placed", now)
            if result.error_type == "CarrierMisconfigured":
                self.refused_by_carrier(result.error or "")

    def not_placed(self, attempt_id: str, reason: str) -> None:
        self.roster.not_placed(attempt_id, reason, workflow.now())
        self.publish()

    async def send_alert(self, step: StepPlan, alert: Alert) -> None:
        """The scheme's sms or email medium: the step's message, rendered at launch."""
        message = Outgoing(subject=self.plan.title, body=step.message)
        channel: Channel = "sms" if alert.medium == "sms" else "email"
        sent = await self.send(alert.contact, channel, alert.address or "", message, step, "alert")
        if sent and step.objective == "information":
            self.roster.delivered(alert.contact.id, step, workflow.now())
            self.publish()

    async def send_post_objective(self, step: StepPlan) -> None:
        """To every destination of the step, reached or not: by SMS and by email."""
        post = step.post_objective
        if post is None:
            return
        sends = []
        for contact_id in step.destinations:
            contact = self.plan.person(contact_id)
            fields: dict[str, Any] = {**self.plan.fields, "Contact": {"Id": contact.id, "Name": contact.name}}
            if self.plan.call_me_links:
                fields["CallMeLink"] = self.plan.call_me_links.get(contact.id, "")
            message = Outgoing(subject=post.subject, body=post.body, fields=fields)
            if contact.mobile:
                sms = message.model_copy(update={"body": post.sms or post.body})
                sends.append(self.send(contact, "sms", contact.mobile, sms, step, "post_objective"))
            if contact.email:
                sends.append(self.send(contact, "email", contact.email, message, step, "post_objective"))
        await asyncio.gather(*sends)

    async def send(
        self,
        contact: Contact,
        channel: Channel,
        address: str,
        message: Outgoing,
        step: StepPlan,
        purpose: Purpose,
    ) -> bool:
        """One SMS or email, recorded in the roster once sent. SMS stop when the carrier has
        refused our configuration; email does not need it."""
        if channel == "sms" and self.carrier_refused:
            return False
        what = "message" if purpose == "alert" else "post-objective message"
        request: SendSms | SendEmail = (
            SendSms(to=address, sender=self.plan.dial_in_number, message=message, requested_at=workflow.now())
            if channel == "sms"
            else SendEmail(to=address, message=message)
        )
        if workflow.patched(MESSAGE_BATCHES):
            try:
                outcome = await self.post(channel, request, contact.name)
            except ActivityError as err:
                workflow.logger.warning("%s to %s failed: %s", channel, contact.id, failure_message(err))
                return False
            if outcome.sent is None:
                workflow.logger.warning("%s to %s refused: %s", channel, contact.id, outcome.error)
                if outcome.error_type == "CarrierMisconfigured":
                    self.refused_by_carrier(outcome.error or "")
                return False
        else:
            try:
                await self.send_alone(request, f"{what} to {contact.name}")
            except ActivityError as err:
                workflow.logger.warning("%s to %s failed: %s", channel, contact.id, failure_message(err))
                self.notice_carrier_refusal(err)
                return False
        self.roster.notified(contact.id, channel, address, workflow.now(), purpose, step.number)
        self.publish()
        return True

    async def send_alone(self, request: SendSms | SendEmail, summary: str) -> None:
        """One message, one activity (runs recorded before batches)."""
        if isinstance(request, SendSms):
            await workflow.execute_activity_method(
                CarrierActivities.send_sms,
                request,
                start_to_close_timeout=timedelta(seconds=20),
                schedule_to_close_timeout=timedelta(minutes=10),
                retry_policy=CARRIER_RETRY,
                summary=f"SMS {summary}",
            )
        else:
            await workflow.execute_activity_method(
                MailActivities.send_email,
                request,
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=timedelta(minutes=30),
                retry_policy=MAIL_RETRY,
                summary=f"email {summary}",
            )

    async def post(self, channel: Channel, request: SendSms | SendEmail, name: str) -> MessageOutcome:
        """Messages of one channel due in this moment go out together, MESSAGES_PER_BATCH to an
        activity: a 250-person deadline's 500 PIN messages are 6 activities, not 500."""
        posted: asyncio.Future[MessageOutcome] = asyncio.get_running_loop().create_future()
        queue = self.outbox.setdefault(channel, [])
        queue.append((request, posted, name))
        if len(queue) == 1:
            self.background(self.send_outbox(channel))
        return await posted

    async def send_outbox(self, channel: Channel) -> None:
        await asyncio.sleep(0)  # the other messages of this moment join first
        queue, self.outbox[channel] = self.outbox[channel], []
        await asyncio.gather(
            *(
                self.send_batch(channel, queue[first : first + MESSAGES_PER_BATCH])
                for first in range(0, len(queue), MESSAGES_PER_BATCH)
            )
        )

    async def send_batch(
        self, channel: Channel, batch: list[tuple[SendSms | SendEmail, asyncio.Future[MessageOutcome], str]]
    ) -> None:
        names = first_names([name for _, _, name in batch])
        try:
            if channel == "sms":
                outcomes = await workflow.execute_activity_method(
                    CarrierActivities.send_sms_batch,
                    SmsBatch(messages=[r for r, _, _ in batch if isinstance(r, SendSms)]),
                    start_to_close_timeout=timedelta(minutes=1),
                    schedule_to_close_timeout=timedelta(minutes=10),
                    heartbeat_timeout=BATCH_HEARTBEAT,
                    retry_policy=CARRIER_RETRY,
                    summary=f"{len(batch)} SMS: {names}"[:200],
                )
            else:
                outcomes = await workflow.execute_activity_method(
                    MailActivities.send_email_batch,
                    EmailBatch(messages=[r for r, _, _ in batch if isinstance(r, SendEmail)]),
                    start_to_close_timeout=timedelta(minutes=2),
                    schedule_to_close_timeout=timedelta(minutes=30),
                    heartbeat_timeout=BATCH_HEARTBEAT,
                    retry_policy=MAIL_RETRY,
                    summary=f"{len(batch)} email(s): {names}"[:200],
                )
        except ActivityError as err:
            for _, posted, _ in batch:
                posted.set_exception(err)
            return
        for (_, posted, _), outcome in zip(batch, outcomes, strict=True):
            posted.set_result(outcome)

    async def hang_up(self, call_sid: str) -> bool:
        return await self.carrier_cleanup(CarrierActivities.hang_up, call_sid, "hang up")

    async def end_conference(self, conference_sid: str) -> bool:
        return await self.carrier_cleanup(CarrierActivities.end_conference, conference_sid, "end the bridge")

    async def bridge_action(self, action: Callable[[Any, Any], Awaitable[None]], leg: object) -> None:
        """A moderator's mute or remove, tried for a minute; a failure is raised to the moderator."""
        await workflow.execute_activity_method(
            action,
            leg,
            start_to_close_timeout=timedelta(seconds=15),
            schedule_to_close_timeout=timedelta(minutes=1),
            heartbeat_timeout=CALL_HEARTBEAT,
            retry_policy=CARRIER_RETRY,
            summary="moderate the bridge",
        )

    async def carrier_cleanup(
        self, action: Callable[[Any, str], Awaitable[None]], sid: str, summary: str
    ) -> bool:
        """Hang-ups and room ends are tried for two minutes, then given up on without failing
        the run: whether they worked is the carrier's callbacks' to tell."""
        try:
            await workflow.execute_activity_method(
                action,
                sid,
                start_to_close_timeout=timedelta(seconds=20),
                schedule_to_close_timeout=timedelta(minutes=2),
                heartbeat_timeout=CALL_HEARTBEAT,
                retry_policy=CARRIER_RETRY,
                summary=summary,
            )
        except ActivityError as err:
            workflow.logger.warning("%s %s failed: %s", summary, sid, failure_message(err))
            return False
        return True

    def notice_carrier_refusal(self, err: ActivityError) -> None:
        if _error_type(err) == "CarrierMisconfigured":
            assert isinstance(err.cause, ApplicationError)
            self.refused_by_carrier(err.cause.message)

    def refused_by_carrier(self, message: str) -> None:
        """Credentials or caller ID refused: no call or SMS can work until someone fixes them,
        so the scheme stops using the carrier (email still goes out) and says so loudly."""
        self.carrier_refused = True
        self.roster.problem(f"the carrier refused our configuration: {message}")


def first_names(names: list[str]) -> str:
    """An activity's summary of whom it is for: the first three, and how many more."""
    return ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")


def _error_type(err: ActivityError) -> str | None:
    return err.cause.type if isinstance(err.cause, ApplicationError) else None


def _timed_out(err: ActivityError) -> bool:
    return isinstance(err.cause, ActivityTimeout)


def failure_message(err: ActivityError) -> str:
    cause = err.cause
    return str(cause.message if isinstance(cause, ApplicationError) else cause or err)
