"""Converging to the carrier's truth when callbacks are lost. Callbacks tell a run how its calls
go; a callback server down, or a worker killed, loses some (Twilio does not send them again).
So at each round and at the deadline, and whenever a call's callback is overdue past its ring
time, the run asks the carrier: calls still ringing or answered, and who is in its bridge. Also
the carrier clean-ups (hang up, end the bridge), tried for two minutes without failing the run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.calls import CarrierActivities, CarrierQuestion
    from domain.events import CarrierTruth
    from workflows.activity_policies import CARRIER_RETRY, HEARTBEAT, failure_message
    from workflows.run_context import RunContext

LOST_CALLBACKS = 3
"""Calls of one carrier whose outcome no callback told, at one check, before it counts as failing:
one lost callback is a blip (our callback server restarting); three at once is its webhooks down."""
RING_GRACE = timedelta(seconds=3)
"""Past a call's ring time, how long its final callback may take before we ask the carrier (a
call can also wait a second in the carrier's queue before it rings)."""


class CarrierCheck:
    def __init__(self, run: RunContext) -> None:
        self.run = run

    async def reconcile(self) -> None:
        """Ask the carrier what lost callbacks would have told: calls still ringing past their
        ring time (or answered, not known to have ended), and who is in the bridge. A local
        activity: a read, with no task-queue round trip before the round it serves."""
        roster = self.run.roster
        if not roster.called_anyone():
            return
        calls = roster.calls_to_check(workflow.now(), RING_GRACE)
        question = CarrierQuestion(
            calls=calls,
            room=workflow.info().workflow_id
            if self.run.plan.has_bridge and roster.parent_id is None
            else None,
            carriers={sid: carrier for sid in calls if (carrier := roster.carrier_of(sid))},
            room_carrier=roster.bridge_carrier,
        )
        if not question.calls and question.room is None:
            return
        asked_at = workflow.now()
        try:
            truth: CarrierTruth = await workflow.execute_local_activity_method(
                CarrierActivities.carrier_truth,
                question,
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=timedelta(minutes=1),
                retry_policy=CARRIER_RETRY,
                summary="ask the carrier what callbacks may have missed",
            )
        except FailureError as err:  # a local activity's failure may come as its own error
            workflow.logger.warning("could not reconcile with the carrier: %s", failure_message(err))
            return
        self.count_lost_callbacks(roster.unheard_outcomes(truth))
        if truth.conference_sid is not None:
            roster.state.conference_carrier = question.room_carrier
        for call_sid in roster.carrier_truth(truth, asked_at, workflow.now()):
            self.run.background(self.hang_up_quietly(call_sid))
        self.run.publish()

    def count_lost_callbacks(self, unheard: list[str]) -> None:
        """A carrier whose callbacks stopped coming (LOST_CALLBACKS calls' outcomes learnt only
        by asking it) is failing as surely as one answering 503: the run's next calls go through
        the next carrier. Not the bridge's calls: its room works, and the run asks for it."""
        if self.run.plan.has_bridge:
            return
        lost = Counter(self.run.roster.carrier_of(sid) for sid in unheard)
        now = workflow.now()
        for carrier, count in lost.items():
            carriers = self.run.carriers
            if (
                count < LOST_CALLBACKS
                or carrier in carriers.down(now)
                or not carriers.has_alternative(carrier, now)
            ):
                continue
            to = carriers.failed(carrier, now)
            self.run.carrier_failed(
                carrier,
                f"its callbacks stopped coming: {count} calls' outcomes learnt only by asking it",
                to.name if to else carrier,
                now,
            )

    async def wait_for_any(self, settled: Callable[[], bool]) -> None:
        """Until `settled()`; if a call's callback is overdue meanwhile, the carrier is asked (a
        lost callback must not hold back someone's next medium). A call whose placing was in
        doubt (a worker lost while dialling) may only now get its ID: from then on its callback
        can be overdue too, so the wait starts again with that deadline."""
        check_at = self.run.roster.next_check(workflow.now(), RING_GRACE)
        timeout = max(check_at - workflow.now(), timedelta(seconds=1)) if check_at else None

        def settled_or_new_check() -> bool:
            return settled() or self.run.roster.next_check(workflow.now(), RING_GRACE) != check_at

        try:
            await workflow.wait_condition(
                settled_or_new_check, timeout=timeout, timeout_summary="callback overdue"
            )
        except TimeoutError:
            await self.reconcile()

    async def hang_up_quietly(self, call_sid: str) -> None:
        await self.hang_up(call_sid)

    async def hang_up(self, call_sid: str, carrier: str | None = None) -> bool:
        """Through the call's carrier (the roster knows it, unless given)."""
        via = self.run.roster.carrier_of(call_sid) if carrier is None else carrier
        return await self.clean_up(CarrierActivities.hang_up, call_sid, via, "hang up")

    async def end_conference(self, conference_sid: str) -> bool:
        via = self.run.roster.state.conference_carrier
        return await self.clean_up(CarrierActivities.end_conference, conference_sid, via, "end the bridge")

    async def clean_up(
        self, action: Callable[..., Awaitable[None]], sid: str, carrier: str, summary: str
    ) -> bool:
        """Tried for two minutes, then given up on without failing the run: whether it worked
        is the carrier's callbacks' to tell."""
        try:
            await workflow.execute_activity_method(
                action,
                args=[sid, carrier] if carrier else [sid],
                start_to_close_timeout=timedelta(seconds=20),
                schedule_to_close_timeout=timedelta(minutes=2),
                heartbeat_timeout=HEARTBEAT,
                retry_policy=CARRIER_RETRY,
                summary=summary,
            )
        except ActivityError as err:
            workflow.logger.warning("%s %s failed: %s", summary, sid, failure_message(err))
            return False
        return True
