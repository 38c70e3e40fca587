"""Who was reached, who is in the bridge, how each step went: pure bookkeeping the workflows
drive with deterministic time.

Every change is recorded the moment it happens (attempt queued and placed, call answered,
acknowledged, joined or left the bridge, PIN accepted or refused, step ended), so the roster is
the audit trail too. Presence in the bridge follows the conference room's own join and leave
events, keyed by call ID. What happens for a step after its deadline is recorded as too late
and does not change its result. Its whole state is one serialisable model, so a run that
continues as new carries it over intact.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from domain.contacts import masked
from domain.events import (
    Acknowledgement,
    AttemptCalls,
    BridgeUpdate,
    CallProgress,
    CarrierTruth,
    ModeratorAction,
    PinRefused,
    RejoinRequest,
    RejoinResult,
)
from domain.pin_check import decide
from domain.plan import Alert, RunPlan, StepPlan
from domain.run_view import (
    FINAL_CALL_STATUSES,
    BatchView,
    CallAttempt,
    Channel,
    ModerationRecord,
    Notification,
    PersonView,
    PinAttempt,
    Purpose,
    RunView,
    StepView,
)
from i18n.languages import served

REASONS_WE_CAUSED = frozenset(
    {"participant_updated_via_api", "conference_ended_via_api", "moderator_ended_conference"}
)
"""Why a participant leaves when we made it happen (Twilio's `ReasonParticipantLeft`)."""
HUNG_UP = "participant_hung_up"
DIAL_IN_WITHOUT_CALL = "dial-in:"
"""Leg prefix of a rejoin that did not come through the phone line (`starter.py rejoin`)."""


class RosterState(BaseModel):
    """Everything the roster knows; indexes are rebuilt from it."""

    started_at: datetime
    steps_done: bool = False
    """The steps are over: a continued run goes straight to keeping the bridge open."""
    ended_at: datetime | None = None
    end_reason: str | None = None
    ended_by: str = ""
    ended_from: str = ""
    conference_sid: str | None = None
    conference_carrier: str = ""
    """The carrier of the room `conference_sid` names."""
    bridge_carrier: str = ""
    """The carrier the bridge is on now (0.2.0; "": the first): conference calls go through it,
    and its room's events are the bridge's."""
    bridge_moved_at: datetime | None = None
    """When it last moved: drops before it were the old room's."""
    unexplained_drops: dict[str, datetime] = Field(default_factory=dict)
    """When each person last left the bridge not by hanging up (their line or room lost): what a
    lost room leaves behind, where a conference ending as people hang up leaves nothing."""
    recording_url: str | None = None
    problems: list[str] = Field(default_factory=list)
    people: dict[str, PersonView]
    steps: dict[str, StepView]
    batches: dict[str, BatchView] = Field(default_factory=dict)
    pin_attempts: list[PinAttempt] = Field(default_factory=list)
    moderation: list[ModerationRecord] = Field(default_factory=list)
    drops: list[str] = Field(default_factory=list)
    """People who dropped out of the bridge and have not been sent the way back yet."""
    expected_leaves: list[str] = Field(default_factory=list)
    """Legs we took out of the bridge ourselves (a moderator's remove): their leave is no drop."""
    dial_in_calls: dict[str, str] = Field(default_factory=dict)
    """Calls that dialled in through the phone line, and whose they are."""
    legs: dict[str, list[str]] = Field(default_factory=dict)
    """Each person's connections into the bridge."""
    legs_heard_at: dict[str, datetime] = Field(default_factory=dict)
    """When we last heard of each leg joining or leaving."""
    early_joins: list[str] = Field(default_factory=list)
    """Calls the room reported before we knew whose they were."""

    @classmethod
    def fresh(cls, plan: RunPlan, started_at: datetime) -> RosterState:
        """Everyone in the plan. A run launched by 0.2.0 or later has only its bridge steps'
        people there: the people of a step without a bridge are their batches' (`StepBatch`,
        started at launch and listed here from the start), so nothing the run keeps, returns or
        answers grows with the people it warns."""
        batches = {
            batch: BatchView(workflow_id=batch, step=step.number, size=size)
            for step in plan.steps
            for batch, size in step.batches(plan.batch_prefix)
        }
        return cls(
            started_at=started_at,
            people={
                c.id: PersonView(id=c.id, name=c.name, language=plan.language_for(c)) for c in plan.people
            },
            steps={
                s.number: StepView(
                    number=s.number,
                    objective=s.objective,
                    percent=s.percent,
                    destinations=s.size,
                    needed=s.needed(),
                    batched=not s.has_bridge,
                )
                for s in plan.steps
            },
            batches=batches,
        )


class Roster:
    def __init__(self, plan: RunPlan, workflow_id: str, state: RosterState, parent_id: str | None = None):
        self.plan = plan
        self.workflow_id = workflow_id
        self.parent_id = parent_id
        self.state = state
        self._attempts: dict[str, tuple[PersonView, CallAttempt]] = {
            a.attempt_id: (p, a) for p in state.people.values() for a in p.attempts
        }
        self._owners: dict[str, PersonView] = {
            a.call_sid: p for p in state.people.values() for a in p.attempts if a.call_sid
        }
        self._owners |= {sid: state.people[pid] for sid, pid in state.dial_in_calls.items()}

    @property
    def started_at(self) -> datetime:
        return self.state.started_at

    @property
    def ended(self) -> bool:
        return self.state.ended_at is not None

    def person(self, contact_id: str) -> PersonView:
        return self.state.people[contact_id]

    # --- steps and objectives ------------------------------------------------------------

    def reached(self, step: StepPlan, contact_id: str) -> bool:
        """Whether this destination counts as reached for the step's objective right now."""
        person = self.state.people[contact_id]
        if step.objective == "acknowledgement":
            return person.acknowledged_at is not None
        if step.objective == "information":
            return person.delivered_at is not None
        return person.in_conference or any(
            a.outcome == "answered" for a in person.attempts if _step_of(a.attempt_id) == step.number
        )

    def count(self, step: StepPlan) -> int:
        """Destinations counting towards the objective: in the bridge, or reached (by the
        batches' reports, for a step a run alerts through batches)."""
        if step.has_bridge:
            return sum(self.state.people[cid].in_conference for cid in step.destinations)
        batches = [b.counted for b in self.state.batches.values() if b.step == step.number]
        if batches:
            return sum(batches)
        return sum(self.reached(step, cid) for cid in step.destinations if cid in self.state.people)

    def objective_met(self, step: StepPlan) -> bool:
        return self.count(step) >= step.needed()

    def step_started(self, step: StepPlan, at: datetime) -> None:
        result = self.state.steps[step.number]
        result.started_at = at
        result.deadline_at = at + step.deadline

    def next_round(self, step: StepPlan, at: datetime | None) -> None:
        self.state.steps[step.number].next_round_at = at

    def step_skipped(self, step: StepPlan) -> None:
        self.state.steps[step.number].skipped = True

    def step_ended(self, step: StepPlan, at: datetime) -> bool:
        """Freeze the step's result: whatever happens for it later is too late."""
        result = self.state.steps[step.number]
        result.ended_at = at
        result.next_round_at = None
        result.counted = self.count(step)
        result.reached = result.counted >= result.needed
        return result.reached

    def step_over(self, step: StepPlan) -> bool:
        return self.state.steps[step.number].ended_at is not None

    def steps_done(self) -> None:
        self.state.steps_done = True

    # --- batches of a step without a bridge ------------------------------------------------

    def batch_started(self, step: StepPlan, workflow_id: str, size: int) -> None:
        self.state.batches[workflow_id] = BatchView(workflow_id=workflow_id, step=step.number, size=size)

    def batch_progress(self, workflow_id: str, counted: int, step_over: bool) -> None:
        batch = self.state.batches.get(workflow_id)
        if batch is not None and not batch.step_over:
            batch.counted = counted
            batch.step_over = step_over

    def batches_over(self, step: StepPlan) -> bool:
        return all(b.step_over for b in self.state.batches.values() if b.step == step.number)

    # --- calling -------------------------------------------------------------------------

    def settled(self, step: StepPlan, contact_id: str) -> bool:
        """Whether this person's latest call of the step has rung out: a next medium never
        starts before. An answered call counts once the person is reached or it ended."""
        attempts = [
            a for a in self.state.people[contact_id].attempts if _step_of(a.attempt_id) == step.number
        ]
        if not attempts:
            return True
        latest = attempts[-1]
        if latest.outcome == "pending":
            return False
        return latest.outcome != "answered" or latest.ended_at is not None or self.reached(step, contact_id)

    def ringing(self, step: StepPlan, contact_id: str) -> bool:
        """Whether a call of theirs for the step is at the carrier and has not rung out (one
        still waiting for its turn is not)."""
        attempts = [
            a for a in self.state.people[contact_id].attempts if _step_of(a.attempt_id) == step.number
        ]
        return bool(attempts) and attempts[-1].placed_at is not None and not self.settled(step, contact_id)

    def attempt_queued(self, alert: Alert, number: str, at: datetime) -> CallAttempt:
        assert alert.medium in ("voice_pro", "voice_home", "voice_mobile")
        attempt = CallAttempt(attempt_id=alert.attempt_id, medium=alert.medium, number=number, queued_at=at)
        person = self.state.people[alert.contact.id]
        person.attempts.append(attempt)
        self._attempts[attempt.attempt_id] = (person, attempt)
        return attempt

    def attempt(self, attempt_id: str) -> CallAttempt:
        return self._attempts[attempt_id][1]

    def routed(self, attempt_id: str, carrier: str) -> None:
        """The carrier the call goes through (again, after its carrier failed)."""
        self._attempts[attempt_id][1].carrier = carrier

    def carrier_fault(self, attempt_id: str, fault: str) -> None:
        """The call was moved off its carrier, not placed there: why."""
        self._attempts[attempt_id][1].carrier_faults.append(fault)

    def carrier_of(self, call_sid: str) -> str:
        """The carrier of one of the run's calls (a dial-in call's, or an unknown one: "", the first)."""
        if call_sid == self.state.conference_sid:
            return self.state.conference_carrier
        return next((a.carrier for _, a in self._attempts.values() if a.call_sid == call_sid), "")

    def call_placed(self, attempt_id: str, call_sid: str, at: datetime) -> None:
        person, attempt = self._attempts[attempt_id]
        attempt.placed_at = attempt.placed_at or at
        if attempt.call_sid is None:
            attempt.call_sid = call_sid
            self._own(person, call_sid, at)

    def not_placed(self, attempt_id: str, reason: str, at: datetime) -> None:
        _, attempt = self._attempts[attempt_id]
        if attempt.outcome == "pending" and attempt.placed_at is None:
            attempt.settle("not-placed", at, reason)

    def attempt_failed(self, attempt_id: str, error: str, at: datetime) -> None:
        _, attempt = self._attempts[attempt_id]
        if attempt.outcome == "pending":
            attempt.settle("failed", at, error)

    def call_progress(self, event: CallProgress, at: datetime) -> str | None:
        """Apply a carrier callback; returns a call ID to hang up: an answering machine, or a
        call answered after the run ended. A call that ends while its leg is still in the bridge
        is a drop (its room's leave was lost, or comes after)."""
        found = self._attempts.get(event.attempt_id)
        if found is None:
            return None
        person, attempt = found
        attempt.placed_after_all()
        self.call_placed(attempt.attempt_id, event.call_sid, at)
        if event.error_code:
            attempt.error = f"carrier error {event.error_code}"
        if event.answered_by and event.answered_by.startswith("machine"):
            attempt.settle("machine", at)
            self._leave(person, event.call_sid, at)
            return event.call_sid
        if event.status == "in-progress" and attempt.outcome == "pending":
            attempt.settle("answered", at)
            if self.ended:
                return event.call_sid
            step = self.plan.step(_step_of(attempt.attempt_id))
            if step.objective == "information":
                self.delivered(person.id, step, at)
        elif event.status == "completed":
            attempt.ended_at = attempt.ended_at or at
            if attempt.outcome == "pending":
                attempt.settle("answered", at)  # only a call that was answered completes
            if self._leave(person, event.call_sid, at):
                self._note_drop(person, event.call_sid, None)
        elif event.status in FINAL_CALL_STATUSES and attempt.outcome == "pending":
            attempt.settle(FINAL_CALL_STATUSES[event.status], at)
            attempt.ended_at = at
        return None

    # --- the bridge ----------------------------------------------------------------------

    @property
    def bridge_carrier(self) -> str:
        """The carrier the bridge is on now ("" in a run launched before 0.2.0)."""
        return self.state.bridge_carrier or next(iter(self.plan.carriers), "")

    def bridge_moved(self, to: str, at: datetime, lost_since: datetime) -> list[str]:
        """The bridge is on `to` from now: the old room's legs are forgotten (their leaving is no
        drop, and its later events are not the bridge's). Returns whom to call into the new
        room: those in the old one, and those who dropped out of it since `lost_since`."""
        self.state.bridge_carrier, self.state.bridge_moved_at = to, at
        self.state.conference_sid, self.state.conference_carrier = None, ""
        back = []
        for person in self.state.people.values():
            legs = self.live_legs(person.id)
            for leg in legs:  # a guest's too: the old room is not the bridge any more
                self.state.expected_leaves.append(leg)
                self._leave(person, leg, at)
            dropped = self.state.unexplained_drops.get(person.id)
            if not person.guest and (legs or (dropped and dropped >= lost_since)):
                back.append(person.id)
        self.state.drops = [d for d in self.state.drops if d not in back]
        return back

    def lost_room(self, since: datetime) -> bool:
        """Whether a bridge the carrier says is gone had people in it: someone still in it for
        us, or two or more who dropped out since `since` other than by hanging up (a room lost
        drops everyone at once; a room whose people hang up ends as it should)."""
        if any(self.live_legs(p.id) for p in self.state.people.values() if not p.guest):
            return True
        moved = self.state.bridge_moved_at
        if moved and moved >= since:  # the old room's drops, and its forgotten legs, are not this one's
            return sum(at > moved for at in self.state.unexplained_drops.values()) >= 2
        return sum(at >= since for at in self.state.unexplained_drops.values()) >= 2

    def bridge_event(self, event: BridgeUpdate, at: datetime) -> None:
        """The conference room reported a start, an end, or a participant joining or leaving.
        A room on another carrier than the bridge's (the one it moved from) is not the bridge."""
        if self.plan.carriers and event.carrier and event.carrier != self.bridge_carrier:
            return  # (a run launched before 0.2.0 knows no carrier: every room event is its own)
        if event.kind == "start":
            self.state.conference_sid = event.conference_sid
            self.state.conference_carrier = event.carrier
        elif event.kind == "end":
            for person in self.state.people.values():
                for leg in [leg for leg in self._legs(person) if not leg.startswith(DIAL_IN_WITHOUT_CALL)]:
                    self._leave(person, leg, at)
        elif event.call_sid and event.kind == "join":
            owner = self._owners.get(event.call_sid)
            if owner is None:
                if event.call_sid not in self.state.early_joins:
                    self.state.early_joins.append(event.call_sid)
            elif self._admits(event.call_sid):
                self._join(owner, event.call_sid, at)
        elif event.call_sid and event.kind == "leave":
            if event.call_sid in self.state.early_joins:
                self.state.early_joins.remove(event.call_sid)
            owner = self._owners.get(event.call_sid)
            if owner is not None and self._leave(owner, event.call_sid, at):
                self._note_drop(owner, event.call_sid, event.reason)

    def acknowledged(self, event: Acknowledgement, at: datetime) -> None:
        """Pressed 1 on an acknowledgement call; after the step's deadline it is too late."""
        found = self._attempts.get(event.attempt_id)
        if found is None:
            return
        person, attempt = found
        if person.acknowledged_at is None:
            person.acknowledged_at = at
            self._note_if_late(person, _step_of(attempt.attempt_id))

    def delivered(self, contact_id: str, step: StepPlan, at: datetime) -> None:
        person = self.state.people[contact_id]
        if person.delivered_at is None:
            person.delivered_at = at
            self._note_if_late(person, step.number)

    def rejoin(self, request: RejoinRequest, at: datetime) -> RejoinResult:
        """Someone dialled in: record the attempt, recognise the caller or admit a guest."""
        decision = decide(self.plan, request.pin, request.from_number)
        self.state.pin_attempts.append(
            PinAttempt(
                from_number=request.from_number,
                at=at,
                accepted=decision.accepted,
                participant_id=decision.person.id if decision.person else None,
            )
        )
        if not decision.accepted:
            return RejoinResult(accepted=False, reason="wrong PIN")
        person = (
            self.state.people[decision.person.id] if decision.person else self._guest(request.from_number)
        )
        if person.guest:
            person.language = served(request.language, self.plan.language)
        if person.joined_at is not None:
            person.rejoins += 1
        if request.call_sid:
            self.state.dial_in_calls[request.call_sid] = person.id
            self._own(person, request.call_sid, at)
        else:
            self._join(person, f"{DIAL_IN_WITHOUT_CALL}{len(self.state.pin_attempts)}", at)
        return RejoinResult(
            accepted=True,
            participant_id=person.id,
            guest=person.guest,
            welcome=self.plan.welcome,
            said=self.plan.welcome_to(person.language),
            record=self.plan.record,
        )

    def live_legs(self, person_id: str) -> list[str]:
        """The person's calls in the bridge now (not counting a rejoin without a phone call)."""
        person = self.state.people[person_id]
        return [leg for leg in self._legs(person) if not leg.startswith(DIAL_IN_WITHOUT_CALL)]

    def moderated(self, action: ModeratorAction, at: datetime) -> None:
        """Recorded with who did it; a mute shows on the row, a removal is no drop."""
        person = self.state.people[action.person_id]
        if action.kind in ("mute", "unmute"):
            person.muted = action.kind == "mute"
        if action.kind == "remove":
            self.state.expected_leaves += self.live_legs(person.id)
        self.state.moderation.append(
            ModerationRecord(
                at=at, kind=action.kind, person_id=person.id, by=action.by, channel=action.channel
            )
        )

    def turned_away(self, limit: Literal["caller", "run"], window: timedelta) -> None:
        """The wrong PIN just recorded reached a limit: nothing silent, though the line records
        no more attempts from there (a flood must not grow the history): the attempt says so,
        and the run's problems say who cannot dial in now and what still brings them in."""
        attempt = self.state.pin_attempts[-1]
        attempt.turned_away = limit
        minutes = f"{window.total_seconds() / 60:g} minutes"
        if limit == "run":
            self.problem(
                f"the dial-in line turns away every number of this run's people for {minutes} (too many "
                "wrong PINs from them): bring people in with 'call again now'"
            )
            return
        person = self.state.people.get(attempt.participant_id or "")
        who = person.name if person else "a number of this run"
        self.problem(
            f"the dial-in line turns away {who}'s number {masked(attempt.from_number)} for {minutes} "
            "(too many wrong PINs from it): bring them in with 'call again now' or their call-me link"
        )

    def pin_refused(self, refused: PinRefused, at: datetime) -> None:
        person = next((c for c in self.plan.people if refused.from_number in c.numbers()), None)
        self.state.pin_attempts.append(
            PinAttempt(
                from_number=refused.from_number,
                at=at,
                accepted=False,
                participant_id=person.id if person else None,
            )
        )

    def calls_to_check(self, now: datetime, grace: timedelta) -> list[str]:
        """Calls whose outcome a callback should have told by now: still ringing past their ring
        time, or answered and not known to have ended."""
        due: list[str] = []
        for person, attempt in self._attempts.values():
            if not attempt.call_sid or attempt.placed_at is None:
                continue
            step = self.plan.step(_step_of(attempt.attempt_id))
            ring = self.plan.scheme_for(step, self.plan.person(person.id)).ring_timeout
            stale = attempt.outcome == "pending" and attempt.placed_at + ring + grace < now
            if stale or (attempt.outcome == "answered" and attempt.ended_at is None):
                due.append(attempt.call_sid)
        return sorted(due)

    def next_check(self, now: datetime, grace: timedelta) -> datetime | None:
        """When the earliest call still ringing passes its ring time (and grace): then the
        carrier may be asked, if its callback has not come."""
        moments = []
        for person, attempt in self._attempts.values():
            if attempt.outcome == "pending" and attempt.placed_at is not None:
                step = self.plan.step(_step_of(attempt.attempt_id))
                ring = self.plan.scheme_for(step, self.plan.person(person.id)).ring_timeout
                moments.append(attempt.placed_at + ring + grace)
        return min(moments, default=None)

    def attempt_calls(self, attempt_id: str) -> AttemptCalls:
        found = self._attempts.get(attempt_id)
        mine = found[1].call_sid if found else None
        others = [a.call_sid for _, a in self._attempts.values() if a.call_sid and a.attempt_id != attempt_id]
        return AttemptCalls(mine=mine, others=sorted(others))

    def called_anyone(self) -> bool:
        return any(a.placed_at for _, a in self._attempts.values()) or bool(self.state.dial_in_calls)

    def unheard_outcomes(self, truth: CarrierTruth) -> list[str]:
        """Calls the carrier says are over, or answered, whose callback never told us: before the
        roster takes the truth in, what its callbacks failed to say."""
        pending = {a.call_sid for _, a in self._attempts.values() if a.call_sid and a.outcome == "pending"}
        told = set(FINAL_CALL_STATUSES) | {"in-progress", "completed"}
        return [call.call_sid for call in truth.calls if call.call_sid in pending and call.status in told]

    def carrier_truth(self, truth: CarrierTruth, asked_at: datetime, at: datetime) -> list[str]:
        """Correct the roster with what the carrier said when asked; returns calls to hang up
        (machines, calls answered after the run ended), as callbacks would have. A leg whose
        join or leave we heard of after asking keeps what we heard: it is newer. A bridge call
        answered by a person and ended while we heard nothing of it is a drop. A Call resource
        does not say whether it reached the bridge; the way back errs on the side of the person
        (it also reaches one who hung up during the welcome)."""
        by_sid = {a.call_sid: a for _, a in self._attempts.values() if a.call_sid}
        unwanted = []
        for call in truth.calls:
            attempt = by_sid.get(call.call_sid)
            if attempt is None:
                continue
            if self._ended_unheard(attempt, call.status, call.answered_by):
                person = self._attempts[attempt.attempt_id][0]
                self.call_progress(
                    CallProgress(attempt_id=attempt.attempt_id, call_sid=call.call_sid, status=call.status),
                    at,
                )
                self._note_drop(person, call.call_sid, None)
                continue
            progress = CallProgress(
                attempt_id=attempt.attempt_id,
                call_sid=call.call_sid,
                status=call.status,
                answered_by=call.answered_by,
            )
            if (hang_up := self.call_progress(progress, at)) is not None:
                unwanted.append(hang_up)
        if truth.conference_sid is not None:
            self.state.conference_sid = truth.conference_sid
            inside = set(truth.members)
            for person in self.state.people.values():
                for leg in self.live_legs(person.id):
                    if (
                        leg not in inside
                        and not self._heard_since(leg, asked_at)
                        and self._leave(person, leg, at)
                    ):
                        self._note_drop(person, leg, None)
            for call_sid in truth.members:
                attempt = by_sid.get(call_sid)
                if attempt is not None and attempt.outcome == "pending":
                    attempt.settle("answered", at)  # in the room: it was answered
                owner = self._owners.get(call_sid)
                fresh = not self._heard_since(call_sid, asked_at)
                if (
                    owner is not None
                    and call_sid not in self._legs(owner)
                    and fresh
                    and self._admits(call_sid)
                ):
                    self._join(owner, call_sid, at)
        return unwanted

    def recording_ready(self, url: str) -> None:
        self.state.recording_url = url

    # --- notifications, problems, the end --------------------------------------------------

    def notified(
        self,
        person_id: str,
        channel: Channel,
        to: str,
        at: datetime,
        purpose: Purpose,
        step: str,
        carrier: str = "",
    ) -> None:
        self.state.people[person_id].notifications.append(
            Notification(channel=channel, to=to, sent_at=at, purpose=purpose, step=step, carrier=carrier)
        )

    def problem(self, text: str) -> None:
        if text not in self.state.problems:
            self.state.problems.append(text)

    def connected_calls(self) -> list[str]:
        """Carrier calls up: in the bridge, or answered and not yet reported there or ended."""
        legs = {
            leg
            for person in self.state.people.values()
            for leg in self._legs(person)
            if not leg.startswith(DIAL_IN_WITHOUT_CALL)
        }
        answered = {
            a.call_sid
            for _, a in self._attempts.values()
            if a.outcome == "answered" and a.call_sid and a.ended_at is None
        }
        return sorted(legs | answered)

    def ringing_calls(self) -> list[str]:
        """Carrier calls placed and not yet answered or failed."""
        return sorted(a.call_sid for _, a in self._attempts.values() if a.outcome == "pending" and a.call_sid)

    def end(self, at: datetime, reason: str, by: str = "", channel: str = "") -> None:
        self.state.ended_at = at
        self.state.end_reason = reason
        self.state.ended_by = by
        self.state.ended_from = channel
        for _, attempt in self._attempts.values():
            if attempt.outcome == "pending":
                if attempt.placed_at is None:
                    attempt.settle("not-placed", at, "the run ended before its turn")
                else:
                    attempt.settle("no-answer", at, "still ringing when the run ended; hung up")
        for person in self.state.people.values():
            for leg in list(self._legs(person)):
                self._leave(person, leg, at)

    def view(self) -> RunView:
        """The run as it stands. It shares the roster's records (no copy: a 250-person roster
        is viewed at every change), so render or serialise it before the roster moves on."""
        state = self.state
        return RunView(
            workflow_id=self.workflow_id,
            parent_id=self.parent_id,
            state="ended" if state.ended_at else "running",
            started_at=state.started_at,
            ended_at=state.ended_at,
            end_reason=state.end_reason,
            ended_by=state.ended_by,
            ended_from=state.ended_from,
            procedure=self.plan.procedure,
            title=self.plan.title,
            launched_by=self.plan.launched_by,
            channel=self.plan.channel,
            dial_in_number=self.plan.dial_in_number,
            carriers=dict(self.plan.carriers),
            welcome=self.plan.welcome,
            record=self.plan.record,
            steps=[self._live(step) for step in state.steps.values()],
            people=list(state.people.values()),
            batches=list(state.batches.values()),
            pin_attempts=list(state.pin_attempts),
            moderation=list(state.moderation),
            recording_url=state.recording_url,
            problems=list(state.problems),
            batches_list_their_people=not any(s.destinations for s in self.plan.steps if not s.has_bridge),
        )

    # --- internals -----------------------------------------------------------------------

    def _live(self, result: StepView) -> StepView:
        """A running step's count as it stands (an ended one keeps what it counted at its end)."""
        if result.started_at is None or result.ended_at is not None:
            return result
        return result.model_copy(update={"counted": self.count(self.plan.step(result.number))})

    def _note_if_late(self, person: PersonView, step_number: str) -> None:
        if self.state.steps[step_number].ended_at is not None and step_number not in person.too_late:
            person.too_late.append(step_number)

    def _ended_unheard(self, attempt: CallAttempt, status: str, answered_by: str | None) -> bool:
        """Answered by a person and over, on a bridge step, and we heard neither the answer nor
        the bridge: every callback of the call was lost."""
        return (
            status == "completed"
            and not (answered_by or "").startswith("machine")
            and attempt.outcome == "pending"
            and attempt.call_sid not in self.state.legs_heard_at
            and self.plan.step(_step_of(attempt.attempt_id)).has_bridge
        )

    def _note_drop(self, person: PersonView, leg: str, reason: str | None) -> None:
        """Out of the bridge without us ending it (their line dropped, or they hung up): they
        get the way back at once. Not for a removal, the end, or a guest we cannot text."""
        ours = leg in self.state.expected_leaves or reason in REASONS_WE_CAUSED
        if ours or self.ended or person.guest:
            return
        person.drops += 1
        self.state.drops.append(person.id)
        if reason != HUNG_UP and person.left_at is not None:
            self.state.unexplained_drops[person.id] = person.left_at

    def take_drops(self) -> list[str]:
        """People who dropped out of the bridge since last asked, once per drop."""
        dropped, self.state.drops = self.state.drops, []
        return dropped

    def _heard_since(self, leg: str, moment: datetime) -> bool:
        heard = self.state.legs_heard_at.get(leg)
        return heard is not None and heard >= moment

    def _legs(self, person: PersonView) -> list[str]:
        return self.state.legs.setdefault(person.id, [])

    def _guest(self, number: str) -> PersonView:
        guest_id = f"guest:{number}"
        return self.state.people.setdefault(
            guest_id, PersonView(id=guest_id, name=f"Guest {number}", guest=True)
        )

    def _own(self, person: PersonView, call_sid: str, at: datetime) -> None:
        """Link a call to its person; a join the room reported earlier now counts."""
        self._owners[call_sid] = person
        if call_sid in self.state.early_joins and self._admits(call_sid):
            self.state.early_joins.remove(call_sid)
            self._join(person, call_sid, at)

    def _admits(self, call_sid: str) -> bool:
        """A call answered by a machine, or any call once the run ended, is not let in."""
        if self.ended:
            return False
        return not any(a.call_sid == call_sid and a.outcome == "machine" for _, a in self._attempts.values())

    def _join(self, person: PersonView, leg: str, at: datetime) -> None:
        if not person.in_conference:
            for step in self.plan.steps:
                if step.has_bridge and person.id in step.destinations:
                    self._note_if_late(person, step.number)
        legs = self._legs(person)
        if leg not in legs:
            legs.append(leg)
        self.state.legs_heard_at[leg] = at
        person.in_conference = True
        person.joined_at = person.joined_at or at
        person.left_at = None

    def _leave(self, person: PersonView, leg: str, at: datetime) -> bool:
        """Take a leg out; True when that was the person's last one in the bridge."""
        legs = self._legs(person)
        if leg not in legs:
            return False
        legs.remove(leg)
        self.state.legs_heard_at[leg] = at
        if legs:
            return False
        person.in_conference = False
        person.muted = False
        person.left_at = at
        return True


def _step_of(attempt_id: str) -> str:
    return attempt_id.split("/", 1)[0]
