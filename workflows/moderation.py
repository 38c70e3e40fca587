"""A moderator's hand on the bridge: mute, unmute and remove someone in it, or call someone not
in it again now (the console's button, or their own call-me link). Recorded on the roster with
who did it; carrier actions are tried for a minute and a failure is told to the moderator. A
person's own call-me link calls them at most `call_me.CALLS_PER_PERSON` times (refused by the
validator, so nothing is written to history)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.calls import BridgeLeg, CarrierActivities, MuteLeg
    from domain import call_me
    from domain.contacts import Contact
    from domain.events import ModeratorAction
    from domain.plan import Alert, VoiceMedium
    from domain.run_view import PersonView
    from i18n.catalogues import N_
    from workflows.activity_policies import CARRIER_RETRY, HEARTBEAT
    from workflows.calling import Calls
    from workflows.run_context import RunContext

DONE = {"mute": "{} muted", "unmute": "{} unmuted", "remove": "{} removed", "call_again": "calling {} again"}


class Moderation:
    def __init__(self, run: RunContext, calls: Calls) -> None:
        self.run = run
        self.calls = calls

    def refusal(self, action: ModeratorAction) -> str | None:
        """Why this action cannot be taken now (None: it can): checked before it is accepted.
        Those a call-me page may show are marked for the catalogues (it says them in its
        person's language)."""
        roster, plan = self.run.roster, self.run.plan
        if roster.ended:
            return N_("this run has ended")
        if not plan.has_bridge:
            return N_("this run has no bridge")
        if action.person_id not in roster.state.people:
            return f"no one with id {action.person_id!r} in this run"
        in_bridge = bool(roster.live_legs(action.person_id))
        if action.kind == "call_again":
            if in_bridge:
                return N_("already in the bridge")
            used = call_me.calls_made(roster.state.moderation, action.person_id)
            if action.by == call_me.LINK and used >= call_me.CALLS_PER_PERSON:
                return call_me.SPENT
            if not plan.knows(action.person_id) or not plan.person(action.person_id).numbers():
                return N_("no phone number to call")
        elif not in_bridge or roster.state.conference_sid is None:
            return "not in the bridge on a phone call"
        return None

    async def act(self, action: ModeratorAction) -> str:
        """Record it, then do it; returns what was done, in words."""
        roster = self.run.roster
        roster.moderated(action, workflow.now())
        self.run.publish()
        person = self.run.plan.person(action.person_id) if self.run.plan.knows(action.person_id) else None
        name = person.name if person else action.person_id
        if action.kind == "call_again":
            assert person is not None, "the refusal turns guests away"
            self.run.background(self.call_again(person))
            return DONE[action.kind].format(name)
        room = roster.state.conference_sid
        assert room is not None, "the refusal checked they are in the bridge"
        for leg in roster.live_legs(action.person_id):
            if action.kind == "remove":
                await self.on_bridge(
                    CarrierActivities.remove_from_bridge,
                    BridgeLeg(conference_sid=room, call_sid=leg, carrier=roster.state.conference_carrier),
                )
            else:
                await self.on_bridge(
                    CarrierActivities.mute,
                    MuteLeg(
                        conference_sid=room,
                        call_sid=leg,
                        muted=action.kind == "mute",
                        carrier=roster.state.conference_carrier,
                    ),
                )
        return DONE[action.kind].format(name)

    async def on_bridge(self, action: Callable[[Any, Any], Awaitable[None]], leg: BridgeLeg) -> None:
        await workflow.execute_activity_method(
            action,
            leg,
            start_to_close_timeout=timedelta(seconds=15),
            schedule_to_close_timeout=timedelta(minutes=1),
            heartbeat_timeout=HEARTBEAT,
            retry_policy=CARRIER_RETRY,
            summary="moderate the bridge",
        )

    async def call_again(self, person: Contact, medium: VoiceMedium | None = None) -> None:
        """Call them now into the bridge, ahead of every scheme's calls, on `medium`, else the
        phone they last answered (else their work, mobile or home phone), until the run closes."""
        roster, plan = self.run.roster, self.run.plan
        step = next(s for s in plan.steps if s.has_bridge and person.id in s.destinations)
        tries = sum("again" in a.attempt_id for a in roster.person(person.id).attempts)
        medium = medium or call_again_medium(roster.person(person.id), person)
        alert = Alert(step.number, person, -1, medium, timedelta(0), tag=f"again{tries + 1}")

        def withdrawn(alerts: list[Alert]) -> list[str | None]:
            if roster.ended:
                return ["the run ended before its turn"] * len(alerts)
            return ["already in the bridge" if roster.live_legs(a.contact.id) else None for a in alerts]

        attempts = self.calls.queue_up([alert])
        await self.calls.place(step, [alert], attempts, roster.started_at + plan.max_duration, withdrawn)


def call_again_medium(person: PersonView, contact: Contact) -> VoiceMedium:
    """The phone they last answered on, else their work, mobile or home phone."""
    answered = [a.medium for a in person.attempts if a.outcome == "answered"]
    if answered:
        return answered[-1]
    if contact.voice_pro:
        return "voice_pro"
    return "voice_mobile" if contact.mobile else "voice_home"
