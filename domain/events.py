"""What reaches a running procedure from outside: carrier callbacks relayed by the callback
server (signals), dial-ins with a PIN and the launcher's end (updates)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, Field

from domain.speech import Speech

Moderation = Literal["mute", "unmute", "remove", "call_again"]


class CallProgress(BaseModel):
    """A carrier status callback for one outbound attempt, as the callback server relays it."""

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
    reason: str | None = None
    """Why a participant left, as the carrier says (a hang-up, a removal through the API...)."""
    carrier: str = ""
    """The carrier whose room it is (0.2.0; empty: the first)."""


class Acknowledgement(BaseModel):
    """Someone pressed 1 on an acknowledgement call."""

    attempt_id: str
    call_sid: str


class RecordingReady(BaseModel):
    recording_sid: str
    url: str


class DialInLimits(BaseModel):
    """Wrong PINs within `window` after which the run turns its own people's numbers away."""

    per_caller: int = Field(5, ge=1)
    """From one of its people's numbers."""
    per_run: int = Field(20, ge=1)
    """From all its people's numbers together."""
    window: timedelta = timedelta(minutes=10)


class RejoinRequest(BaseModel):
    """Someone dialled the conference number and keyed in a PIN."""

    pin: str
    from_number: str
    call_sid: str | None = None
    """The dial-in call, when it comes through the phone line; its join and leave follow."""
    limits: DialInLimits | None = None
    """Set by the dial-in line: the run counts the wrong PINs keyed from its people's numbers
    and, over these limits, refuses them (right PIN or not) before comparing anything."""
    language: str = ""
    """The language the caller is served in on the line (a guest's welcome is in it)."""
    carrier: str = ""
    """The carrier whose number they dialled (0.2.0): not the bridge's, they are called back
    into it (a guest is told its number)."""


class PinRefused(BaseModel):
    """A wrong PIN keyed from one of the run's numbers (sent as a signal: it spends no update)."""

    from_number: str


class RejoinResult(BaseModel):
    accepted: bool
    participant_id: str | None = None
    guest: bool = False
    reason: str | None = None
    welcome: str = ""
    said: Speech = ()
    """The welcome in the caller's language: a person's own, a guest's from the line."""
    record: bool = False
    refused_by: Literal["caller", "run"] | None = None
    """This wrong PIN reached the request's limit of its number or of the run's numbers."""
    bridge_carrier: str = ""
    """Set when the bridge is on another carrier than the one dialled: the caller is not put
    through there (that would be a second bridge)."""
    bridge_number: str = ""
    """That carrier's dial-in number."""
    called_back: bool = False
    """The run is calling them into the bridge on its carrier."""


SEALED_SIGNALS = "sealed-signals"
"""The `workflow.patched` ID of 0.2.0's signals that carry a `FromRun`: before it, `release`,
`stop` and `close` had no argument, so the codec had nothing to seal and a forged one passed.
Retire it with 0.1.0's histories (tests/test_replay.py)."""


class FromRun(BaseModel):
    """The argument of a signal that used to have none: the codec seals it, so a signal sent in
    clear, or with no argument, by someone without the key is dropped or ignored."""

    run_id: str


class EndRequest(BaseModel):
    reason: str = "ended by the launcher"
    by: str = ""
    """Who ended it (a login, or empty when unknown)."""
    channel: str = ""
    """From where: cli, web..."""


class ModeratorAction(BaseModel):
    """From the console: mute, unmute or remove someone in the bridge, or call someone not in it
    again now."""

    kind: Moderation
    person_id: str
    by: str = ""
    channel: str = "web"


class CallTruth(BaseModel):
    call_sid: str
    status: str
    answered_by: str | None = None


class CarrierTruth(BaseModel):
    """What the carrier knows now, fetched when callbacks may have been lost."""

    calls: list[CallTruth] = []
    conference_sid: str | None = None
    """Set when the room is in progress; then `members` are the calls in it now."""
    members: list[str] = []


class AttemptCalls(BaseModel):
    """What a run knows of its calls, for a retry of one attempt: its own call if a callback
    told it, and every other call of the run."""

    mine: str | None = None
    others: list[str] = []
