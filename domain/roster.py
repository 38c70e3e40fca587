"""Who is in the conference: pure bookkeeping the workflow drives with deterministic time.

Every change is recorded here at the moment it happens (attempt placed, call answered, left,
PIN accepted or refused), so the roster is the audit trail too.
"""

from __future__ import annotations

import hmac
from datetime import datetime

from domain.conference import (
    FINAL_CALL_STATUSES,
    CallAttempt,
    CallProgress,
    Channel,
    ConferenceInput,
    ConferenceReport,
    Notification,
    ParticipantStatus,
    PinAttempt,
    RejoinRequest,
    RejoinResult,
)
from domain.contacts import Contact
from domain.scheme import VoiceMedium

MEDIUM_LABELS = {"voice_pro": "work phone", "voice_home": "home phone"}


class Roster:
    def __init__(self, conference: ConferenceInput, workflow_id: str, started_at: datetime) -> None:
        self.conference = conference
        self.workflow_id = workflow_id
        self.started_at = started_at
        self.ended_at: datetime | None = None
        self.end_reason: str | None = None
        self.participants = {c.id: ParticipantStatus(id=c.id, name=c.name) for c in conference.participants}
        self.pin_attempts: list[PinAttempt] = []
        self._attempts: dict[str, tuple[ParticipantStatus, CallAttempt]] = {}
        self._legs: dict[str, set[str]] = {pid: set() for pid in self.participants}
        """Live connections into the bridge per participant (call IDs, or dial-ins)."""

    def not_yet_reached(self, medium: VoiceMedium) -> list[tuple[Contact, str]]:
        """Destinations nobody has reached yet that have a number on this medium."""
        targets = []
        for contact in self.conference.participants:
            status = self.participants[contact.id]
            number = getattr(contact, medium)
            if number and not status.answered() and not status.in_conference:
                targets.append((contact, number))
        return targets

    def attempt_placed(self, contact: Contact, medium: VoiceMedium, number: str, at: datetime) -> CallAttempt:
        attempt = CallAttempt(attempt_id=f"{contact.id}/{medium}", medium=medium, number=number, placed_at=at)
        status = self.participants[contact.id]
        status.attempts.append(attempt)
        self._attempts[attempt.attempt_id] = (status, attempt)
        return attempt

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
        attempt.call_sid = attempt.call_sid or event.call_sid
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
            self._join(status, event.call_sid, at)
        elif event.status == "completed":
            self._leave(status, event.call_sid, at)
        elif event.status in FINAL_CALL_STATUSES and attempt.outcome == "pending":
            attempt.settle(FINAL_CALL_STATUSES[event.status], at)
        return None

    def rejoin(self, request: RejoinRequest, at: datetime) -> RejoinResult:
        """Someone dialled in: check the PIN, recognise the caller or admit a guest."""
        accepted = hmac.compare_digest(request.pin.encode(), self.conference.pin.encode())
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
        if contact is None:
            guest_id = f"guest:{request.from_number}"
            status = self.participants.setdefault(
                guest_id, ParticipantStatus(id=guest_id, name=f"Guest {request.from_number}", guest=True)
            )
            self._legs.setdefault(guest_id, set())
        else:
            status = self.participants[contact.id]
        if status.joined_at is not None:
            status.rejoins += 1
        self._join(status, f"dial-in:{len(self.pin_attempts)}", at)
        return RejoinResult(accepted=True, participant_id=status.id, guest=status.guest)

    def notified(self, participant_id: str, channel: Channel, to: str, at: datetime) -> None:
        self.participants[participant_id].notifications.append(
            Notification(channel=channel, to=to, sent_at=at)
        )

    def calls_to_hang_up(self) -> list[str]:
        """Carrier calls still on the bridge or still ringing: what ending the conference stops."""
        on_bridge = {leg for legs in self._legs.values() for leg in legs if not leg.startswith("dial-in:")}
        ringing = {attempt.call_sid for _, attempt in self._attempts.values() if attempt.outcome == "pending"}
        return sorted(on_bridge | {sid for sid in ringing if sid})

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
            dial_in_number=self.conference.dial_in_number,
            welcome=self.conference.welcome,
            record=self.conference.record,
            scheme=self.conference.scheme.name,
            participants=[p.model_copy(deep=True) for p in self.participants.values()],
            pin_attempts=list(self.pin_attempts),
        )

    def markdown(self) -> str:
        """The live roster as the Web UI shows it in the workflow's current details."""
        state = "ended" if self.ended_at else "running"
        lines = [
            f"**Conference call** ({self.conference.scheme.name}) - {state}, "
            f"{self.in_conference()}/{len(self.participants)} in the bridge",
            "",
            "| participant | in | calls | PIN sent |",
            "|---|---|---|---|",
        ]
        for status in self.participants.values():
            calls = ", ".join(f"{MEDIUM_LABELS[a.medium]}: {a.outcome}" for a in status.attempts) or "-"
            sent = ", ".join(n.channel for n in status.notifications) or "-"
            mark = "yes" if status.in_conference else "no"
            lines.append(f"| {status.name} | {mark} | {calls} | {sent} |")
        return "\n".join(lines)

    def _contact_with_number(self, number: str) -> Contact | None:
        return next((c for c in self.conference.participants if number in c.numbers()), None)

    def _join(self, status: ParticipantStatus, leg: str, at: datetime) -> None:
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
