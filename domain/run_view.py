"""One view of a run's state, built once by the workflow and rendered everywhere: the Web UI's
current details, the terminal timeline, `status`, the report and the console.

The roster keeps its records in these very models, so the view is the audit trail too; what
can be derived from a record (a person's state, the bridge count) is a computed field here, so
no renderer ever recomputes it and a new field appears everywhere by adding it once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, computed_field

from domain.plan import Medium, Objective, VoiceMedium

Outcome = Literal["pending", "answered", "no-answer", "busy", "failed", "machine", "not-placed"]
"""`pending`: decided and waiting for its turn at the account's call rate, or ringing;
`not-placed`: never dialled, and `error` says why (no turn before the step's deadline, the run
ended, the objective or the person was reached first)."""
FINAL_CALL_STATUSES: dict[str, Outcome] = {
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
    "canceled": "no-answer",
}
"""Twilio call statuses that end an attempt that never reached the person."""
RunState = Literal["running", "ended"]
Channel = Literal["sms", "email"]
Purpose = Literal["alert", "post_objective", "rejoin"]
"""`rejoin`: the dial-in number and PIN, sent at once to someone who dropped out of the bridge."""
PersonState = Literal[
    "waiting",
    "queued",
    "calling",
    "in-bridge",
    "left",
    "answered",
    "acknowledged",
    "reached",
    "not-reached",
]
"""What a person's row says: not alerted yet, waiting for its turn, being called, in the
bridge, left it, answered (a call without a bridge), acknowledged, reached by a message, or
alerted without success so far."""


class CallAttempt(BaseModel):
    attempt_id: str
    medium: VoiceMedium
    number: str
    queued_at: datetime
    """When the scheme called for this call."""
    placed_at: datetime | None = None
    """When the carrier accepted it (None while it waits for its turn)."""
    outcome: Outcome = "pending"
    outcome_at: datetime | None = None
    ended_at: datetime | None = None
    """When the call itself ended (an answered call stays up until the person hangs up)."""
    call_sid: str | None = None
    error: str | None = None
    carrier: str = ""
    """The carrier it goes through (0.2.0; empty before: the only one)."""
    carrier_faults: list[str] = []
    """Carriers it was moved off, and why: it was not placed through them."""

    def settle(self, outcome: Outcome, at: datetime, error: str | None = None) -> None:
        self.outcome = outcome
        self.outcome_at = at
        self.error = error or self.error

    def placed_after_all(self) -> None:
        """Recorded not placed, and the carrier reports it: a try whose answer was lost placed it
        before its retries stopped. What the carrier says from here on counts."""
        if self.outcome == "not-placed" and self.placed_at is None:
            self.outcome, self.outcome_at, self.error = "pending", None, None


class Notification(BaseModel):
    channel: Channel
    to: str
    sent_at: datetime
    purpose: Purpose = "post_objective"
    step: str = ""
    carrier: str = ""
    """The carrier that sent an SMS (0.2.0)."""


class PinAttempt(BaseModel):
    from_number: str
    at: datetime
    accepted: bool
    participant_id: str | None = None
    turned_away: Literal["caller", "run"] | None = None
    """This wrong PIN reached a limit: from then on, for the limits' window, the line turns
    away this number (`caller`) or every number of the run's people (`run`), unrecorded."""


class ModerationRecord(BaseModel):
    at: datetime
    kind: str
    person_id: str
    by: str = ""
    channel: str = "web"


class PersonView(BaseModel):
    id: str
    name: str
    language: str = ""
    """The language they are spoken to and written in ("" for runs launched before 0.2.0)."""
    guest: bool = False
    in_conference: bool = False
    muted: bool = False
    attempts: list[CallAttempt] = Field(default_factory=list)
    notifications: list[Notification] = Field(default_factory=list)
    joined_at: datetime | None = None
    left_at: datetime | None = None
    rejoins: int = 0
    drops: int = 0
    """Times they left the bridge without us ending it (each got the way back at once)."""
    acknowledged_at: datetime | None = None
    """When they pressed 1 on a call (acknowledgement steps)."""
    delivered_at: datetime | None = None
    """When a message first reached them: a call answered, an SMS or email sent (information steps)."""
    too_late: list[str] = Field(default_factory=list)
    """Steps whose deadline had passed when this person joined, acknowledged or was reached."""

    def answered(self) -> bool:
        return any(attempt.outcome == "answered" for attempt in self.attempts)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def state(self) -> PersonState:
        latest = self.attempts[-1] if self.attempts else None
        if self.in_conference:
            return "in-bridge"
        if latest is not None and latest.outcome == "pending":
            return "calling" if latest.placed_at else "queued"
        if self.acknowledged_at:
            return "acknowledged"
        if self.left_at:
            return "left"
        if self.delivered_at:
            return "reached"
        if self.answered():
            return "answered"
        return "not-reached" if self.attempts or self.notifications else "waiting"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def calling_on(self) -> VoiceMedium | None:
        """The phone being rung right now, if any."""
        latest = self.attempts[-1] if self.attempts else None
        return latest.medium if latest and latest.outcome == "pending" and latest.placed_at else None


PAGE_AT_MOST = 1_000
"""People one page may hold: every reader (CLI, console, API) pages with this bound."""


class PeopleQuery(BaseModel):
    """A page of a roster's people, in roster order, optionally only those in one state."""

    offset: int = Field(0, ge=0)
    limit: int = Field(100, ge=0, le=PAGE_AT_MOST)
    state: PersonState | None = None


class PeoplePage(BaseModel):
    total: int
    """People matching the query's state (everyone without one), wherever the page starts."""
    people: list[PersonView] = Field(default_factory=list)


def page_of(people: Iterable[PersonView], query: PeopleQuery) -> PeoplePage:
    matching = [p for p in people if query.state is None or p.state == query.state]
    return PeoplePage(total=len(matching), people=matching[query.offset : query.offset + query.limit])


class StepView(BaseModel):
    """How a step goes: `reached` is decided when it ends, by its deadline at the latest."""

    number: str
    objective: Objective
    percent: int
    destinations: int = 0
    needed: int
    counted: int = 0
    started_at: datetime | None = None
    next_round_at: datetime | None = None
    deadline_at: datetime | None = None
    ended_at: datetime | None = None
    reached: bool | None = None
    skipped: bool = False
    batched: bool = False
    """Its destinations are alerted by batch workflows (a step without a bridge)."""


class BatchView(BaseModel):
    """A batch workflow alerting part of a step's destinations, as last reported."""

    workflow_id: str
    step: str
    size: int
    counted: int = 0
    step_over: bool = False


class RunView(BaseModel):
    """The run as `status --json` prints it and as the workflow returns it when it ends. A
    batch's view has the same shape, with `parent_id` set."""

    workflow_id: str
    parent_id: str | None = None
    state: RunState
    procedure: str
    title: str
    launched_by: str = ""
    channel: str = "cli"
    ended_by: str = ""
    ended_from: str = ""
    """The channel it was ended from (cli, web...)."""
    started_at: datetime
    ended_at: datetime | None = None
    end_reason: str | None = None
    dial_in_number: str
    carriers: dict[str, str] = Field(default_factory=dict)
    """The carriers in order with their dial-in numbers (0.2.0): each call and SMS names the one
    it went through."""
    welcome: str = ""
    record: bool = False
    steps: list[StepView] = Field(default_factory=list)
    people: list[PersonView] = Field(default_factory=list)
    batches: list[BatchView] = Field(default_factory=list)
    pin_attempts: list[PinAttempt] = Field(default_factory=list)
    moderation: list[ModerationRecord] = Field(default_factory=list)
    recording_url: str | None = None
    problems: list[str] = Field(default_factory=list)
    """What kept the scheme from running as designed (e.g. carrier credentials refused)."""
    batches_list_their_people: bool = False
    """Its batches' people are not in `people` (a run launched by 0.2.0 or later); a run of
    0.1.0 lists everyone, the batches' rows to be merged into its own."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def in_bridge(self) -> int:
        return sum(person.in_conference for person in self.people)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_bridge(self) -> bool:
        return any(step.objective == "conference" for step in self.steps)

    def person(self, person_id: str) -> PersonView:
        return next(p for p in self.people if p.id == person_id)


MEDIUM_LABELS: dict[Medium, str] = {
    "voice_pro": "work phone",
    "voice_home": "home phone",
    "voice_mobile": "mobile phone",
    "sms": "SMS",
    "email": "email",
}
