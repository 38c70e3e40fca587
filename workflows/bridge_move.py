"""The bridge survives its carrier. With more than one carrier, the run keeps an eye on the
bridge's: it asks that carrier for its room at once after anyone drops out of it, and every
WATCH_EVERY while people are in it. When the carrier's API keeps failing past API_PATIENCE, when
its room is gone with people in it, or when a call into the bridge comes back "carrier failing",
the bridge moves to the next carrier:

1. conference calls go through the new carrier from now on (those waiting move at once);
2. everyone who was in the old room, or dropped out of it in the last LOST_WINDOW, is called
   back into the new one, ahead of every scheme's calls (not told the way back by SMS: a drop
   waits for the check that follows it before it is); calls still in the old room are hung up
   where that carrier can;
3. nobody needs a new number: the PIN invitation lists every carrier's number, and the PIN
   works on each (a right PIN on a number the bridge is not on calls its person into it).

One roster across both rooms: the old room's legs are forgotten, and its later events ignored.
Runs with one carrier, and runs launched before 0.2.0, never watch: nothing to move to.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from activities.calls import NON_RETRYABLE, CarrierActivities, CarrierQuestion
    from domain.call_queue import CarrierRoute
    from domain.events import CarrierTruth
    from workflows.activity_policies import failure_message
    from workflows.moderation import Moderation
    from workflows.run_context import RunContext

WATCH_EVERY = timedelta(seconds=10)
"""How often the bridge's carrier is asked for its room while people are in it and nobody drops
out (a drop asks at once): a room lost without a word is found within 16 s. About 36 history
events a minute while a bridge is up."""
API_PATIENCE = timedelta(seconds=6)
"""How long the bridge's carrier may fail to answer for its room before the bridge moves: a
blip (one 5xx, a slow answer) is retried and passes; 6 s is shorter than anyone waits in a
silent conference before hanging up, and keeps the first call through the next carrier within
the drill's 10 s of the first fault."""
API_TRIES = 4
"""Tries within API_PATIENCE (at 0, 1, 3 and 5 s): a local activity's retries are not cut short
by its schedule-to-close timeout (measured: they went on every 2 s past it)."""
LOST_WINDOW = timedelta(seconds=60)
"""Who dropped out of the bridge this recently when it is found lost was dropped by it."""


class BridgeMove:
    def __init__(
        self, run: RunContext, moderation: Moderation, hang_up: Callable[[str, str], Awaitable[bool]]
    ) -> None:
        self.run = run
        self.moderation = moderation
        self.hang_up = hang_up
        """Through a given carrier: the old room's calls, where that carrier can still end them."""
        self.wanted = False
        """Someone dropped out: check now, not at the next WATCH_EVERY."""
        self.started = 0
        """Checks begun, numbered from 1."""
        self.done = 0
        """The number of the last check finished: a drop waits for one begun after it."""

    def watching(self) -> bool:
        return self.run.plan.has_bridge and len(self.run.carriers.routes) > 1

    async def after_drop(self) -> bool:
        """Wait for the check after a drop: True when the bridge is where it was (the drop was
        theirs: they get the way back), False when it moved (they are being called back)."""
        if not self.watching():
            return True
        after, carrier = self.started + 1, self.run.roster.bridge_carrier
        self.wanted = True
        with contextlib.suppress(TimeoutError):  # no check came (the run is ending): tell them
            await workflow.wait_condition(
                lambda: self.done >= after,
                timeout=WATCH_EVERY + API_PATIENCE,
                timeout_summary="was the bridge lost?",
            )
        return self.run.roster.bridge_carrier == carrier

    async def check(self) -> None:
        """Ask the bridge's carrier for its room; move the bridge if it cannot say, or if the
        room is gone with people in it."""
        self.wanted = False
        self.started += 1
        number = self.started
        try:
            await self.ask()
        finally:
            self.done = max(self.done, number)

    async def ask(self) -> None:
        roster = self.run.roster
        now = workflow.now()
        if not roster.lost_room(now - LOST_WINDOW) and roster.state.conference_sid is None:
            return  # nobody in it yet, or everyone left: nothing to lose
        carrier = roster.bridge_carrier
        try:
            truth: CarrierTruth = await workflow.execute_local_activity_method(
                CarrierActivities.carrier_truth,
                CarrierQuestion(calls=[], room=workflow.info().workflow_id, room_carrier=carrier),
                start_to_close_timeout=timedelta(seconds=5),
                schedule_to_close_timeout=API_PATIENCE,
                local_retry_threshold=timedelta(seconds=1),  # retries as timers: no task held open
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    maximum_interval=timedelta(seconds=2),
                    maximum_attempts=API_TRIES,
                    non_retryable_error_types=NON_RETRYABLE,
                ),
                summary="is the bridge's carrier still there?",
            )
        except FailureError as err:  # a local activity's failure may come as its own error
            self.move(carrier, f"its API kept failing for {API_PATIENCE.seconds} s: {failure_message(err)}")
            return
        if truth.conference_sid is None and roster.lost_room(workflow.now() - LOST_WINDOW):
            self.move(carrier, "its room is gone with people in it")

    async def hang_up_quietly(self, call_sid: str, carrier: str) -> None:
        await self.hang_up(call_sid, carrier)

    def route(self) -> CarrierRoute:
        """The carrier conference calls go through now."""
        name = self.run.roster.bridge_carrier
        return next((r for r in self.run.carriers.routes if r.name == name), self.run.carriers.routes[0])

    def move(self, failed: str, why: str) -> CarrierRoute:
        """The bridge leaves `failed` for the next carrier that works (once: a bridge already
        moved off it stays where it is). Returns the carrier conference calls go through now."""
        current = self.route()
        if current.name != failed or not self.watching():
            return current
        now = workflow.now()
        to = self.run.carriers.failed(failed, now)
        if to is None:
            self.run.roster.problem(
                f"{now:%H:%M:%S} the bridge's carrier {failed} is failing ({why}): no other works"
            )
            return current
        roster, plan = self.run.roster, self.run.plan
        old_legs = [leg for person in roster.state.people.values() for leg in roster.live_legs(person.id)]
        back = roster.bridge_moved(to.name, now, now - LOST_WINDOW)
        for leg in old_legs:  # nobody stays in the old room while called into the new one
            self.run.background(self.hang_up_quietly(leg, failed))
        roster.problem(
            f"{now:%H:%M:%S} the bridge moved from {failed} to {to.name} ({why}): "
            f"calling back the {len(back)} who were in it"
        )
        for person_id in back:
            self.run.background(self.moderation.call_again(plan.person(person_id)))
        self.run.publish()
        return to
