"""One step's alert scheme on its clock, inside a workflow: a run's steps with a bridge, and
the batches of a step without one. The red button's step (CONFCALL, 2 minutes) reads:

    +0:00   call everyone's work phone; answered calls hear the welcome, then join the bridge
    +1:00   call the home phone of whoever is not in yet, once their work phone has rung out
    +2:00   the deadline: everyone, reached or not, gets the dial-in number and the PIN by SMS
            and email (the step's post-objective message, sent by the owner's `at_deadline`)

Any scheme reads the same way: at each of its times, whoever is not reached yet gets that
medium. How is each in a module of its own: calls wait their turn at the carrier account's
rate (`calling`), SMS and email go in batches (`messaging`), lost callbacks are made up for by
asking the carrier (`carrier_check`), a moderator acts on the bridge (`moderation`).
Only Temporal's deterministic APIs here: timers, conditions and activities.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.call_queue import CallQueue
    from domain.carrier_choice import CarrierChoice
    from domain.plan import Alert, Round, RunPlan, StepPlan
    from domain.roster import Roster
    from domain.run_view import MEDIUM_LABELS
    from workflows.bridge_move import BridgeMove
    from workflows.calling import BEFORE_ITS_TURN, NO_TURN, Calls
    from workflows.carrier_check import CarrierCheck
    from workflows.messaging import Messages
    from workflows.moderation import Moderation
    from workflows.run_context import RunContext

RUN_ENDED = "the run ended before its turn"
REACHED = "reached before its turn"


class StepTimeline:
    """Owned by a workflow. `done(step)` says why the step wants no more alerts (its objective
    reached, the run ending), or None; `publish()` shows a change."""

    def __init__(
        self,
        plan: RunPlan,
        roster: Roster,
        calls: CallQueue,
        done: Callable[[StepPlan], str | None],
        publish: Callable[[], None],
    ) -> None:
        self.run = RunContext(plan, roster, publish, CarrierChoice(calls.routes(plan.dial_in_number)))
        self.done = done
        self.carrier = CarrierCheck(self.run)
        self.calls = Calls(self.run, calls, self.carrier.hang_up)
        self.messages = Messages(self.run)
        self.moderation = Moderation(self.run, self.calls)
        self.bridge = BridgeMove(self.run, self.moderation, self.carrier.hang_up)
        if self.bridge.watching():
            self.calls.bridge_route, self.calls.bridge_failed = self.bridge.route, self.bridge.move

    async def run_step(
        self, step: StepPlan, started: datetime, at_deadline: Callable[[], None] | None = None
    ) -> None:
        """Each time of the step's schemes until its objective or its deadline; at the deadline
        `at_deadline`, then a last check with the carrier."""
        deadline = started + step.deadline
        rounds = [r for r in self.run.plan.rounds(step) if r.after < step.deadline]
        for index, round_ in enumerate(rounds):
            self.run.roster.next_round(step, started + round_.after)
            self.run.publish()
            await self.until(started + round_.after, f"step {step.number}: {what_is_due(round_)}", step)
            if self.done(step):
                for skipped in rounds[index:]:
                    self.account_for(step, skipped.alerts)
                break
            self.run.background(self.carrier.reconcile())  # beside the round: it never holds it back
            self.run.background(self.alert_whoever_is_not_reached(step, round_, deadline))
        self.run.roster.next_round(step, None)
        await self.until(deadline, f"step {step.number}: deadline", step)
        if at_deadline is not None:
            at_deadline()
        if not self.done(step):
            await self.carrier.reconcile()

    async def alert_whoever_is_not_reached(self, step: StepPlan, round_: Round, deadline: datetime) -> None:
        """This round's medium for each person not reached yet: a call once their previous call
        has rung out (a lost callback is asked of the carrier, not waited for), a message once no
        call of theirs is ringing (a call still waiting for its turn does not hold it back)."""
        roster = self.run.roster
        waiting = list(round_.alerts)
        while waiting and not self.over(step):
            ready: list[Alert] = []
            later: list[Alert] = []
            for alert in waiting:  # one pass: `a not in ready` compared alerts pairwise, 400² a batch
                (ready if self.ready(step, alert) else later).append(alert)
            if not ready:
                await self.carrier.wait_for_any(partial(self.any_ready, step, waiting))
                continue
            waiting = later
            due = [a for a in ready if a.address and not roster.reached(step, a.contact.id)]
            for alert in due:
                if not alert.is_call:
                    self.run.background(self.messages.send_alert(step, alert))
            calls = [a for a in due if a.is_call]
            if calls:
                attempts = self.calls.queue_up(calls)  # now: the next round sees them
                self.run.background(
                    self.calls.place(step, calls, attempts, deadline, partial(self.withdrawn, step))
                )
        self.account_for(step, tuple(waiting))

    def ready(self, step: StepPlan, alert: Alert) -> bool:
        roster = self.run.roster
        return (
            roster.settled(step, alert.contact.id)
            if alert.is_call
            else not roster.ringing(step, alert.contact.id)
        )

    def account_for(self, step: StepPlan, alerts: tuple[Alert, ...]) -> None:
        """Calls the scheme wanted that the step ended before (its deadline, its objective, the
        run's end): on their person's row, with why. Nobody is left out silently."""
        roster = self.run.roster
        why = RUN_ENDED if roster.ended else self.done(step) or BEFORE_ITS_TURN
        for alert in alerts:
            if alert.is_call and alert.address and not roster.reached(step, alert.contact.id):
                self.calls.not_attempted(alert, why)

    def withdrawn(self, step: StepPlan, alerts: list[Alert]) -> list[str | None]:
        """Why the scheme no longer wants each of these calls waiting for their turn (None: it
        does). The step's own state is read once for all of them."""
        roster = self.run.roster
        common = RUN_ENDED if roster.ended else self.done(step) or (NO_TURN if self.past(step) else None)
        return [REACHED if roster.reached(step, a.contact.id) else common for a in alerts]

    async def until(self, moment: datetime, summary: str, step: StepPlan) -> None:
        """Wait for `moment`, or until the step is done, whichever comes first."""
        remaining = moment - workflow.now()
        if remaining > timedelta(0) and not self.done(step):
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(
                    lambda: self.done(step) is not None, timeout=remaining, timeout_summary=summary
                )

    def any_ready(self, step: StepPlan, alerts: list[Alert]) -> bool:
        return self.over(step) or any(self.ready(step, a) for a in alerts)

    def over(self, step: StepPlan) -> bool:
        return self.done(step) is not None or self.past(step)

    def past(self, step: StepPlan) -> bool:
        """Past the step's deadline (its end is recorded a last carrier check later)."""
        deadline = self.run.roster.state.steps[step.number].deadline_at
        return self.run.roster.step_over(step) or (deadline is not None and workflow.now() >= deadline)


def what_is_due(round_: Round) -> str:
    """`work phone` or `home phone, SMS`: the media of a round, for its timer's summary."""
    return ", ".join(dict.fromkeys(MEDIUM_LABELS[alert.medium] for alert in round_.alerts))
