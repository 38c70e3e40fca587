"""Who was reached, who is in the conference, how each step went: pure bookkeeping the
workflow drives with deterministic time.

Every change is recorded here at the moment it happens (attempt placed, call answered,
acknowledged, joined or left the bridge, PIN accepted or refused, step ended), so the roster
is the audit trail too. Presence in the bridge follows the conference room's own join and
leave events, keyed by call ID. What happens for a step after its deadline is recorded as too
late and does not change its result.
"""

from __future__ import annotations

import hmac
from datetime import datetime

from domain.conference import (
    FINAL_CALL_STATUSES,
    Acknowledgement,
    BridgeUpdate,
    CallAttempt,
    CallProgress,
    Channel,
    ConferenceInput,
    ConferenceReport,
    Notification,
    ParticipantStatus,
    PinAttempt,
    Purpose,
    RejoinRequest,
    RejoinResult,
    StepResult,
)
from domain.contacts import Contact
from domain.plan import Alert, Medium, StepPlan, VoiceMedium

MEDIUM_LABELS = {
    "voice_pro": "work phone",
    "voice_home": "home phone",
    "voice_mobile": "mobile phone",
    "sms": "SMS",
    "email": "email",
}
ADDRESS_OF: dict[str, str] = {
    "voice_pro": "voice_pro",
    "voice_home": "voice_home",
    "voice_mobile": "mobile",
    "sms": "mobile",
    "email": "email",
}
DIAL_IN_WITHOUT_CALL = "dial-in:"
"""Leg prefix of a rejoin that did not come through the phone line (`starter.py rejoin`)."""


class Roster:
    def __init__(self, conference: ConferenceInput, workflow_id: str, started_at: datetime) -> None:
        self.conference = conference
        self.workflow_id = workflow_id
        self.started_at = started_at
        self.ended_at: datetime | None = None
        self.end_reason: str | None = None
        self.conference_sid: str | None = None
        self.recording_url: str | None = None
        self.problems: list[str] = []
        self.participants = {c.id: ParticipantStatus(id=c.id, name=c.name) for c in conference.participants}
        self.pin_attempts: list[PinAttempt] = []
        self.steps = {
            s.number: StepResult(number=s.number, objective=s.objective, percent=s.percent, needed=s.needed())
            for s in conference.steps
        }
        self._plans = {s.number: s for s in conference.steps}
        self._attempts: dict[str, tuple[ParticipantStatus, CallAttempt]] = {}
        self._attempt_step: dict[str, str] = {}
        self._owners: dict[str, ParticipantStatus] = {}
        """Who each known call (outbound attempt or dial-in) belongs to."""
        self._ended_calls: set[str] = set()
        self._early_joins: set[str] = set()
        """Calls the room reported before we knew whose they were."""
        self._legs: dict[str, set[str]] = {pid: set() for pid in self.participants}
        """Connections into the bridge per participant."""

    # --- calling -------------------------------------------------------------------------

    def due(self, step: StepPlan, alerts: list[Alert]) -> list[tuple[Contact, Medium, str]]:
        """Alerts still worth sending: for destinations not yet reached who have that medium."""
        targets = []
        for alert in alerts:
            contact = self.conference.contact(alert.contact_id)
            address = getattr(contact, ADDRESS_OF[alert.medium])
            if address and not self.reached(step, contact.id):
                targets.append((contact, alert.medium, address))
        return targets

    def reached(self, step: StepPlan, contact_id: str) -> bool:
        """Whether this destination counts as reached for the step's objective right now."""
        status = self.participants[contact_id]
        if step.objective == "acknowledgement":
            return status.acknowledged_at is not None
        if step.objective == "information":
            return status.delivered_at is not None
        return status.in_conference or any(
            a.outcome == "answered"
            for a in status.attempts
            if self._attempt_step[a.attempt_id] == step.number
        )

    def objective_met(self, step: StepPlan) -> bool:
        return self._count(step) >= step.needed()

    def step_started(self, step: StepPlan, at: datetime) -> None:
        self.steps[step.number].started_at = at

    def step_skipped(self, step: StepPlan) -> None:
        self.steps[step.number].skipped = True

    def step_ended(self, step: StepPlan, at: datetime) -> bool:
        """Freeze the step's result: whatever happens for it later is too late."""
        result = self.steps[step.number]
        result.ended_at = at
        result.counted = self._count(step)
        result.reached = result.counted >= result.needed
        return result.reached

    def _count(self, step: StepPlan) -> int:
        if step.objective == "conference":
            return sum(self.participants[cid].in_conference for cid in step.destinations)
        return sum(self.reached(step, cid) for cid in step.destinations)

    def attempt_placed(
        self, step: StepPlan, contact: Contact, medium: VoiceMedium, number: str, at: datetime
    ) -> CallAttempt:
        attempt_id = f"{step.number}/{contact.id}/{medium}"
        attempt = CallAttempt(attempt_id=attempt_id, medium=medium, number=number, placed_at=at)
        status = self.participants[contact.id]
        status.attempts.append(attempt)
        self._attempts[attempt_id] = (status, attempt)
        self._attempt_step[attempt_id] = step.number
        return attempt

    def call_created(self, attempt: CallAttempt, call_sid: str, at: datetime) -> None:
        attempt.call_sid = call_sid
        self._own(self._attempts[attempt.attempt_id][0], call_sid, at)

    def attempt_failed(self, attempt: CallAttempt, error: str, at: datetime) -> None:
        if attempt.outcome == "pending":
            attempt.settle("failed", at, error)

    def call_progress(self, event: CallProgress, at: datetime) -> str | None:
        """Apply a carrier callback; returns a call ID to hang up: an answering machine, or a
        call answered after the conference ended."""
        found = self._attempts.get(event.attempt_id)
        if found is None:
            return None
        status, attempt = found
        if attempt.call_sid is None:
            self.call_created(attempt, event.call_sid, at)
        if event.error_code:
            attempt.error = f"carrier error {event.error_code}"
        if event.answered_by and event.answered_by.startswith("machine"):
            attempt.settle("machine", at)
            self._leave(status, event.call_sid, at)
            return event.call_sid
        if event.status == "in-progress" and attempt.outcome == "pending":
            attempt.settle("answered", at)
            if self.ended_at is not None:
                return event.call_sid
            step = self._plans[self._attempt_step[attempt.attempt_id]]
            if step.objective == "information":
                self.delivered(status.id, step, at)
        elif event.status == "completed":
            self._ended_calls.add(event.call_sid)
            self._leave(status, event.call_sid, at)
        elif event.status in FINAL_CALL_STATUSES and attempt.outcome == "pending":
            attempt.settle(FINAL_CALL_STATUSES[event.status], at)
        return None

    # --- the bridge ----------------------------------------------------------------------

    def bridge_event(self, event: BridgeUpdate, at: datetime) -> None:
        """The conference room reported a start, an end, or a participant joining or leaving."""
        if event.kind == "start":
            self.conference_sid = event.conference_sid
        elif event.kind == "end":
            for status in self.participants.values():
                for leg in [leg for leg in self._legs[status.id] if not leg.startswith(DIAL_IN_WITHOUT_CALL)]:
                    self._leave(status, leg, at)
        elif event.call_sid and event.kind == "join":
            owner = self._owners.get(event.call_sid)
            if owner is None:
                self._early_joins.add(event.call_sid)
            elif self._admits(event.call_sid):
                self._join(owner, event.call_sid, at)
        elif event.call_sid and event.kind == "leave":
            self._early_joins.discard(event.call_sid)
            owner = self._owners.get(event.call_sid)
            if owner is not None:
                self._leave(owner, event.call_sid, at)

    def acknowledged(self, event: Acknowledgement, at: datetime) -> None:
        """Pressed 1 on an acknowledgement call; after the step's deadline it is too late."""
        found = self._attempts.get(event.attempt_id)
        if found is None:
            return
        status, attempt = found
        if status.acknowledged_at is None:
            status.acknowledged_at = at
            self._note_if_late(status, self._attempt_step[attempt.attempt_id])

    def delivered(self, contact_id: str, step: StepPlan, at: datetime) -> None:
        status = self.participants[contact_id]
        if status.delivered_at is None:
            status.delivered_at = at
            self._note_if_late(status, step.number)

    def _note_if_late(self, status: ParticipantStatus, step_number: str) -> None:
        if self.steps[step_number].ended_at is not None and step_number not in status.too_late:
            status.too_late.append(step_number)

    def rejoin(self, request: RejoinRequest, at: datetime) -> RejoinResult:
        """Someone dialled in: check the PIN, recognise the caller or admit a guest."""
        pin = self.conference.pin or ""
        accepted = bool(pin) and hmac.compare_digest(request.pin.encode(), pin.encode())
        contact = self._contact_with_number(request.from_number)
        self.pin_attempts.append(
            PinAttempt(
                from_number=request.from_number,
                at=at,
                accepted=accepted,
                participant_id=contact.id if contact else None,
            )
        )
        if not accepted:
            return RejoinResult(accepted=False, reason="wrong PIN")
        status = self.participants[contact.id] if contact else self._guest(request.from_number)
        if status.joined_at is not None:
            status.rejoins += 1
        if request.call_sid:
            self._own(status, request.call_sid, at)
        else:
            self._join(status, f"{DIAL_IN_WITHOUT_CALL}{len(self.pin_attempts)}", at)
        return RejoinResult(
            accepted=True,
            participant_id=status.id,
            guest=status.guest,
            welcome=self.conference.welcome,
            record=self.conference.record,
        )

    def recording_ready(self, url: str) -> None:
        self.recording_url = url

    # --- notifications, problems, the end --------------------------------------------------

    def notified(
        self, participant_id: str, channel: Channel, to: str, at: datetime, purpose: Purpose, step: str
    ) -> None:
        self.participants[participant_id].notifications.append(
            Notification(channel=channel, to=to, sent_at=at, purpose=purpose, step=step)
        )

    def problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def connected_calls(self) -> list[str]:
        """Carrier calls up: in the bridge, or answered and not yet reported there or ended."""
        legs = {
            leg for legs in self._legs.values() for leg in legs if not leg.startswith(DIAL_IN_WITHOUT_CALL)
        }
        answered = {a.call_sid for _, a in self._attempts.values() if a.outcome == "answered" and a.call_sid}
        return sorted(legs | (answered - self._ended_calls))

    def ringing_calls(self) -> list[str]:
        """Carrier calls placed and not yet answered or failed."""
        return sorted(a.call_sid for _, a in self._attempts.values() if a.outcome == "pending" and a.call_sid)

    def in_conference(self) -> int:
        return sum(p.in_conference for p in self.participants.values())

    def end(self, at: datetime, reason: str) -> None:
        self.ended_at = at
        self.end_reason = reason
        for _, attempt in self._attempts.values():
            if attempt.outcome == "pending":
                attempt.settle("no-answer", at, "still ringing when the conference ended; hung up")
        for status in self.participants.values():
            for leg in list(self._legs[status.id]):
                self._leave(status, leg, at)

    def report(self) -> ConferenceReport:
        return ConferenceReport(
            workflow_id=self.workflow_id,
            state="ended" if self.ended_at else "running",
            started_at=self.started_at,
            ended_at=self.ended_at,
            end_reason=self.end_reason,
            procedure=self.conference.procedure,
            title=self.conference.title,
            launched_by=self.conference.launched_by,
            channel=self.conference.channel,
            dial_in_number=self.conference.dial_in_number,
            welcome=self.conference.welcome,
            record=self.conference.record,
            steps=[s.model_copy() for s in self.steps.values()],
            participants=[p.model_copy(deep=True) for p in self.participants.values()],
            pin_attempts=list(self.pin_attempts),
            recording_url=self.recording_url,
            problems=list(self.problems),
        )

    def markdown(self) -> str:
        """The live roster as the Web UI shows it in the workflow's current details."""
        state = "ended" if self.ended_at else "running"
        lines = [
            f"**{self.conference.title}** ({self.conference.procedure}) - {state}, "
            f"{self.in_conference()}/{len(self.participants)} in the bridge",
        ]
        lines += [f"\nStep {result.number}: {step_line(result)}" for result in self.steps.values()]
        lines += [f"\n**Problem:** {problem}" for problem in self.problems]
        if self.recording_url:
            lines.append(f"\nRecording: {self.recording_url}")
        lines += ["", "| participant | in | calls | PIN sent | rejoins |", "|---|---|---|---|---|"]
        for status in self.participants.values():
            calls = ", ".join(f"{MEDIUM_LABELS[a.medium]}: {a.outcome}" for a in status.attempts) or "-"
            sent = ", ".join(n.channel for n in status.notifications) or "-"
            mark = "yes" if status.in_conference else "no"
            name = f"{status.name} (guest)" if status.guest else status.name
            lines.append(f"| {name} | {mark} | {calls} | {sent} | {status.rejoins} |")
        return "\n".join(lines)

    # --- internals -----------------------------------------------------------------------

    def _contact_with_number(self, number: str) -> Contact | None:
        return next((c for c in self.conference.participants if number in c.numbers()), None)

    def _guest(self, number: str) -> ParticipantStatus:
        guest_id = f"guest:{number}"
        self._legs.setdefault(guest_id, set())
        return self.participants.setdefault(
            guest_id, ParticipantStatus(id=guest_id, name=f"Guest {number}", guest=True)
        )

    def _own(self, status: ParticipantStatus, call_sid: str, at: datetime) -> None:
        """Link a call to its participant; a join the room reported earlier now counts."""
        self._owners[call_sid] = status
        if call_sid in self._early_joins and self._admits(call_sid):
            self._early_joins.discard(call_sid)
            self._join(status, call_sid, at)

    def _admits(self, call_sid: str) -> bool:
        """A call answered by a machine, or any call once the conference ended, is not let in."""
        if self.ended_at is not None:
            return False
        return not any(a.call_sid == call_sid and a.outcome == "machine" for _, a in self._attempts.values())

    def _join(self, status: ParticipantStatus, leg: str, at: datetime) -> None:
        if not status.in_conference:
            for step in self.conference.steps:
                if step.objective == "conference" and status.id in step.destinations:
                    self._note_if_late(status, step.number)
        self._legs[status.id].add(leg)
        status.in_conference = True
        status.joined_at = status.joined_at or at
        status.left_at = None

    def _leave(self, status: ParticipantStatus, leg: str, at: datetime) -> None:
        legs = self._legs[status.id]
        if leg not in legs:
            return
        legs.discard(leg)
        if not legs:
            status.in_conference = False
            status.left_at = at


def step_line(result: StepResult) -> str:
    """`conference 100 % - reached (3/3)`, `- running`, `- skipped`..."""
    if result.skipped:
        outcome = "skipped"
    elif result.started_at is None:
        outcome = "not started"
    elif result.ended_at is None:
        outcome = "running"
    else:
        outcome = f"{'reached' if result.reached else 'not reached'} ({result.counted}/{result.needed})"
    return f"{result.objective} {result.percent} % - {outcome}"
