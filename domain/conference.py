"""A run's input (frozen at launch), its live roster, and the events that move it.

A run is one launch of a procedure: the red button's conference call is the one-step
procedure `conference-call`. The roster is the one source of truth: the workflow writes each
attempt, outcome, acknowledgement and notification into it as it happens; `status`, the Web
UI and the final report all read it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.contacts import Contact
from domain.plan import DEFAULT_MAX_DURATION, Objective, StepPlan, VoiceMedium

PIN_DIGITS = 6
"""Length of a conference PIN: the dial-in prompt collects exactly this many digits."""

Outcome = Literal["pending", "answered", "no-answer", "busy", "failed", "machine"]
State = Literal["running", "ended"]
Channel = Literal["sms", "email"]
Purpose = Literal["alert", "post_objective"]
LaunchChannel = Literal["cli", "web", "cmc", "procedure"]

FINAL_CALL_STATUSES: dict[str, Outcome] = {
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
    "canceled": "no-answer",
}
"""Twilio call statuses that end an attempt that never reached the person."""


class ConferenceInput(BaseModel):
    """Everything a run needs, resolved and validated by the launcher."""

    model_config = ConfigDict(frozen=True)

    procedure: str
    title: str
    steps: tuple[StepPlan, ...]
    participants: tuple[Contact, ...]
    """Every destination of every step."""
    fields: dict[str, str] = {}
    """The launch form's text fields, by the name messages use (`Body`)."""
    dial_in_number: str
    pin: str | None = None
    """Only when a step has the conference objective: there is a bridge to dial into."""
    pin_lease_id: str | None = None
    """Workflow ID of the lease that keeps this PIN unique among running conferences."""
    record: bool = False
    max_duration: timedelta = DEFAULT_MAX_DURATION
    calls_per_second: float = Field(default=1.0, gt=0)
    """The carrier account's outbound call rate: at most this many calls start per second."""
    launched_by: str = ""
    channel: LaunchChannel = "cli"

    @property
    def welcome(self) -> str:
        """What a caller hears before the bridge: the first conference step's message."""
        return next((s.message for s in self.steps if s.objective == "conference"), "")

    def contact(self, contact_id: str) -> Contact:
        return next(c for c in self.participants if c.id == contact_id)


class CallAttempt(BaseModel):
    attempt_id: str
    medium: VoiceMedium
    number: str
    placed_at: datetime
    outcome: Outcome = "pending"
    outcome_at: datetime | None = None
    call_sid: str | None = None
    error: str | None = None

    def settle(self, outcome: Outcome, at: datetime, error: str | None = None) -> None:
        self.outcome = outcome
        self.outcome_at = at
        self.error = error or self.error


class Notification(BaseModel):
    channel: Channel
    to: str
    sent_at: datetime
    purpose: Purpose = "post_objective"
    step: str = ""


class PinAttempt(BaseModel):
    from_number: str
    at: datetime
    accepted: bool
    participant_id: str | None = None


class ParticipantStatus(BaseModel):
    id: str
    name: str
    guest: bool = False
    in_conference: bool = False
    attempts: list[CallAttempt] = Field(default_factory=list)
    notifications: list[Notification] = Field(default_factory=list)
    joined_at: datetime | None = None
    left_at: datetime | None = None
    rejoins: int = 0
    acknowledged_at: datetime | None = None
    """When they pressed 1 on a call (acknowledgement steps)."""
    delivered_at: datetime | None = None
    """When a message first reached them: a call answered, an SMS or email sent (information steps)."""
    too_late: list[str] = Field(default_factory=list)
    """Steps whose deadline had passed when this person joined, acknowledged or was reached."""

    def answered(self) -> bool:
        return any(attempt.outcome == "answered" for attempt in self.attempts)


class StepResult(BaseModel):
    """How a step went: `reached` is decided when it ends, by its deadline at the latest."""

    number: str
    objective: Objective
    percent: int
    needed: int
    counted: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    reached: bool | None = None
    skipped: bool = False


class ConferenceReport(BaseModel):
    """The roster as `status --json` prints it and as the workflow returns it when it ends."""

    workflow_id: str
    state: State
    procedure: str
    title: str
    launched_by: str = ""
    channel: str = "cli"
    started_at: datetime
    ended_at: datetime | None = None
    end_reason: str | None = None
    dial_in_number: str
    welcome: str = ""
    record: bool = False
    steps: list[StepResult] = Field(default_factory=list)
    participants: list[ParticipantStatus]
    pin_attempts: list[PinAttempt] = Field(default_factory=list)
    recording_url: str | None = None
    problems: list[str] = Field(default_factory=list)
    """What kept the scheme from running as designed (e.g. carrier credentials refused)."""

    def in_conference(self) -> int:
        return sum(p.in_conference for p in self.participants)


class CallProgress(BaseModel):
    """A carrier status callback for one attempt, as the callback server relays it."""

    attempt_id: str
    call_sid: str
    status: str
    answered_by: str | None = None
    error_code: str | None = None


class BridgeUpdate(BaseModel):
    """A conference-room callback: `start`, `end`, `join` or `leave` (of `call_sid`)."""

    kind: str
    conference_sid: str
    call_sid: str | None = None


class Acknowledgement(BaseModel):
    """Someone pressed 1 on an acknowledgement call."""

    attempt_id: str
    call_sid: str


class RecordingReady(BaseModel):
    recording_sid: str
    url: str


class RejoinRequest(BaseModel):
    """Someone dialled the conference number and keyed in a PIN."""

    pin: str
    from_number: str
    call_sid: str | None = None
    """The dial-in call, when it comes through the phone line; its join and leave follow."""


class RejoinResult(BaseModel):
    accepted: bool
    participant_id: str | None = None
    guest: bool = False
    reason: str | None = None
    welcome: str = ""
    record: bool = False


class EndRequest(BaseModel):
    reason: str = "ended by the launcher"
