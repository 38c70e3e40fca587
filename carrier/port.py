"""What rallycall needs from a telephone carrier, in its own words.

Activities and the callback server talk to this port only; the Twilio adapter implements it
(against api.twilio.com or any Twilio-compatible server such as the simulator).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Protocol

from domain.speech import Speech


class FailureKind(Enum):
    TRANSIENT = "transient"
    """Rate limit or network trouble: try again later."""
    DESTINATION = "destination"
    """This number cannot be reached this way: the attempt fails, the scheme moves on."""
    CONFIGURATION = "configuration"
    """Credentials or caller ID are wrong: nothing will work until someone fixes them."""


RATE_LIMIT_CODES = frozenset({"429", "20429", "10011"})
"""HTTP 429, Twilio's 20429 (too many requests at once), Telnyx's 10011."""


class CarrierError(Exception):
    def __init__(
        self, kind: FailureKind, message: str, code: str | None = None, *, maybe_done: bool = False
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.maybe_done = maybe_done
        """The carrier may have done it anyway (a 5xx, a lost answer): a retry must look first."""

    @property
    def rate_limited(self) -> bool:
        """A 429: the carrier is busy with us, not failing; only a flood of them counts."""
        return self.kind is FailureKind.TRANSIENT and self.code in RATE_LIMIT_CODES


@dataclass(frozen=True)
class Bridge:
    """The conference room a call joins, and where the carrier reports on it."""

    room: str
    welcome: Speech
    """Said to each caller before they enter the room."""
    record: bool
    events_callback: str
    """Receives join, leave, start and end of the conference."""
    recording_callback: str


@dataclass(frozen=True)
class OutboundCall:
    """A call that, once answered, joins the conference room (after its welcome), or says
    `message` and `acknowledge_prompt` and waits for 1 (reported to `acknowledge_url`, else
    `not_acknowledged` is said), or just says `message`."""

    to: str
    caller_id: str
    bridge: Bridge | None
    message: Speech
    acknowledge_url: str | None
    ring_timeout: timedelta
    status_callback: str
    machine_callback: str
    acknowledge_prompt: Speech = ()
    not_acknowledged: Speech = ()


@dataclass(frozen=True)
class CallEvent:
    """A call status or answering-machine callback, verified and parsed."""

    call_sid: str
    status: str
    answered_by: str | None
    error_code: str | None


@dataclass(frozen=True)
class BridgeEvent:
    """Something happened in the conference room: `start`, `end`, `join` or `leave`."""

    kind: str
    conference_sid: str
    call_sid: str | None
    reason: str | None = None
    """Why a participant left (`participant_hung_up`, `participant_updated_via_api`...)."""


@dataclass(frozen=True)
class RecordingEvent:
    recording_sid: str
    url: str
    status: str


@dataclass(frozen=True)
class CallState:
    """A call as the carrier knows it now (its truth, whatever callbacks were lost)."""

    call_sid: str
    status: str
    answered_by: str | None


@dataclass(frozen=True)
class SignedCallback:
    """A callback as it arrived: what any carrier's signature scheme covers (Twilio: the URL
    and the form; Telnyx: a timestamp header and the raw body)."""

    url: str
    """The public URL it was sent to, query included."""
    params: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class InboundCall:
    """A call to the dial-in number, with the digits keyed at the last prompt if any."""

    call_sid: str
    caller: str
    digits: str

    def with_digits(self, digits: str) -> InboundCall:
        return InboundCall(call_sid=self.call_sid, caller=self.caller, digits=digits)


@dataclass(frozen=True)
class Probe:
    """One thing `Carrier.check` tried, and what an operator does about it when it failed."""

    what: str
    """`credentials`, `number`, `voice`, `messaging` or `webhook`."""
    ok: bool
    detail: str
    """What was found; on failure, what to fix (phone numbers masked)."""


class Carrier(Protocol):
    async def place_call(self, call: OutboundCall) -> str:
        """Start the call and return its ID."""

    async def calls_to(self, to: str, caller_id: str, since: datetime) -> list[str]:
        """Calls to `to` from `caller_id` created since then: what a retry after a lost answer
        must account for (the carrier has no idempotency key)."""

    async def hang_up(self, call_id: str) -> None: ...

    async def end_conference(self, conference_sid: str) -> None:
        """Close the room: everyone in it is disconnected."""

    async def mute(self, conference_sid: str, call_sid: str, muted: bool) -> None:
        """Mute or unmute one leg of the room."""

    async def remove(self, conference_sid: str, call_sid: str) -> None:
        """Take one leg out of the room (its call ends)."""

    async def call_state(self, call_sid: str) -> CallState: ...

    async def bridge_members(self, room: str) -> tuple[str | None, list[str]]:
        """The room's conference ID, if it is in progress, and the calls in it now."""

    async def send_sms(
        self, to: str, sender: str, body: str, *, sent_since: datetime | None, key: str = ""
    ) -> str:
        """Send and return the message ID; with `sent_since`, reuse an identical earlier send.
        `key` is the same for every try at one message: a carrier that keeps idempotency keys
        sends it once whatever the tries."""

    async def check(self, number: str, voice_urls: Sequence[str], setting: Callable[..., str]) -> list[Probe]:
        """Whether this account works, before an incident needs it, by reads only (nothing is
        called or sent): its credentials, `number` being the account's, its voice and messaging
        APIs answering, and calls to `number` reaching our dial-in route (one of `voice_urls`;
        the first is the one to set). `setting("auth_token", ...)` says where the operator
        configures those account fields, for the fixes that failures name. A probe that needs
        one that failed is not made (that one's detail says so)."""

    def is_authentic(self, callback: SignedCallback) -> bool:
        """Whether a callback really comes from the carrier, by its own signature scheme."""

    def parse_call_event(self, params: Mapping[str, str]) -> CallEvent: ...

    def parse_bridge_event(self, params: Mapping[str, str]) -> BridgeEvent: ...

    def parse_recording_event(self, params: Mapping[str, str]) -> RecordingEvent: ...

    def parse_inbound_call(self, params: Mapping[str, str]) -> InboundCall: ...

    def parse_keyed_digits(self, params: Mapping[str, str]) -> str: ...

    def ask_for_pin(self, action_url: str, prompt: Speech, digits: int) -> str:
        """The answer to an inbound call: say `prompt`, collect `digits` keys (or up to #), and
        post them to `action_url`."""

    def ask_for_key(self, action_url: str, prompt: Speech, timeout_s: int) -> str:
        """Say `prompt` (each part in its voice) and post the one key pressed to `action_url`,
        or post nothing keyed after `timeout_s` seconds of silence."""

    def connect_to_bridge(self, bridge: Bridge) -> str:
        """The answer that speaks the welcome and puts the caller into the room."""

    def say_goodbye(self, message: Speech) -> str:
        """The answer that says `message` and hangs up."""

    def hold(self, message: Speech, redirect_url: str) -> str:
        """The answer that says `message` and comes back to `redirect_url` (POST)."""
