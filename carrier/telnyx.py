"""The Telnyx adapter: calls and conferences through Telnyx's TeXML REST API, SMS through its
Messaging API, both with the real `telnyx` SDK; errors sorted by what to do, as for Twilio.

TeXML is Telnyx's TwiML, and its answers and callbacks are Twilio's (`carrier.twiml`):
`<Say language>`, `<Gather>`, `<Pause>`, `<Redirect>`, `<Hangup>` and `<Dial><Conference>` with
its `statusCallback*`, `record` and `recordingStatusCallback*` attributes read alike; only the
keys' `<Gather>` differs (see `gather_keys`). The REST API has the same resources
(`/texml/Accounts/{account}/Calls`, `Conferences`, `Participants`), the same parameter names,
and callbacks form-encoded with Twilio's field names (`CallSid`, `CallStatus`, `AnsweredBy`,
`StatusCallbackEvent`...). What differs:

- credentials: an API key (Bearer), the account's ID in the paths, the TeXML application's ID
  (`ApplicationSid`) for outbound calls, and Telnyx's public key for webhooks;
- webhooks are signed with ed25519 over `"{Telnyx-Timestamp}|{raw body}"`, not over the URL;
- messages take an idempotency key: a retry sends nothing twice, without looking first;
- errors are `{"errors": [{"code", "title", "detail", "source": {"pointer"}}]}`.

`api_url` points the SDK at any Telnyx-compatible server (the simulator with
`dialect="telnyx"`): the SDK's paths are under `{api_url}/v2`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar, cast

import httpx
from telnyx import APIConnectionError, APIStatusError, APITimeoutError, AsyncTelnyx, omit
from telnyx.lib.webhook_verification import WebhookVerificationError, verify_webhook_signature
from telnyx.types import NumbersPhoneNumberDetailed, TexmlApplication
from twilio.twiml.voice_response import Gather, VoiceResponse

from carrier.port import (
    CallState,
    CarrierError,
    FailureKind,
    OutboundCall,
    Probe,
    SignedCallback,
)
from carrier.twilio import NUMBER, Fixes, reaches_dial_in
from carrier.twiml import TwimlDialect, call_twiml, say
from domain.contacts import masked
from domain.speech import Speech

REQUEST_TIMEOUT = 15.0
"""Every request is bounded (the SDK's own default is 60 s)."""
REQUESTS_AT_ONCE = 50
"""Requests one process has in flight at the carrier: a 250-person round must not send 250 at
once (Telnyx answers 429, error 10011, beyond an account's rate)."""
RING_TIMEOUT_S = (5, 120)
"""TeXML's `Timeout` on call creation: 5 to 120 seconds."""

NUMBER_ERRORS = frozenset({"10001", "10002", "10016"})
"""Inactive phone number, invalid phone number, not in +E.164 format (Telnyx's API error codes):
the destination's fault, unless the error points at the caller ID (`/From`)."""
CONFIGURATION_ERRORS = frozenset({"10009", "10010"})
"""Authentication failed; authorization failed."""
ALREADY_OVER = frozenset({"10005"})
"""Resource not found: the call or the conference has ended."""
T = TypeVar("T")


def classify(exc: Exception) -> CarrierError:
    """Turn an SDK or network failure into what the caller should do about it."""
    if isinstance(exc, APIStatusError):
        code, title, pointer = _first_error(exc.body)
        code = code or ("429" if exc.status_code == 429 else None)
        shown = code or str(exc.status_code)
        message = f"Telnyx error {shown}: {NUMBER.sub(lambda m: masked(m.group()), title)}"
        if code in NUMBER_ERRORS:
            at_caller_id = pointer.lower().endswith("from")
            kind = FailureKind.CONFIGURATION if at_caller_id else FailureKind.DESTINATION
            return CarrierError(kind, message, code)
        if code in CONFIGURATION_ERRORS or exc.status_code in (401, 403):
            return CarrierError(FailureKind.CONFIGURATION, message, code)
        unprocessed = exc.status_code == 503  # unavailable: refused before anything was done
        return CarrierError(
            FailureKind.TRANSIENT, message, code, maybe_done=exc.status_code >= 500 and not unprocessed
        )
    never_sent = (
        isinstance(exc, APIConnectionError)
        and not isinstance(exc, APITimeoutError)
        and isinstance(exc.__cause__, httpx.ConnectError)  # refused: nothing reached the carrier
    )
    return CarrierError(FailureKind.TRANSIENT, f"carrier unreachable: {exc!r}", maybe_done=not never_sent)


def _first_error(body: object) -> tuple[str | None, str, str]:
    """Code, title (and detail), and the parameter at fault, of Telnyx's first error."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not (isinstance(errors, list) and errors and isinstance(errors[0], dict)):
        return None, "no error detail", ""
    first: dict[str, Any] = errors[0]
    code = str(first["code"]) if first.get("code") is not None else None
    title = " - ".join(str(first[part]) for part in ("title", "detail") if first.get(part))
    source = first.get("source")
    pointer = str(source.get("pointer", "")) if isinstance(source, dict) else ""
    return code, title, pointer


def _created_at(value: str | None) -> datetime | None:
    """TeXML resources date like Twilio's (RFC 2822); ISO 8601 is read too."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def gather_keys(action_url: str, prompt: Speech, **keys: object) -> str:
    """Say `prompt` and post the keys pressed to `action_url`. TeXML's `<Gather>` documents no
    `actionOnEmptyResult` (Twilio's way to post an empty result): a `<Redirect>` to the same URL
    follows it instead, reached only when nothing was keyed, and posts without `Digits`."""
    gather = Gather(input="dtmf", action=action_url, method="POST", **keys)
    say(gather, prompt)
    response = VoiceResponse()
    response.append(gather)
    response.redirect(action_url, method="POST")
    return str(response)


def _own_number(number: str, own: NumbersPhoneNumberDetailed | None, setting: str) -> Probe:
    """`own`: the account's phone number `number` (None: it has none), which must be active."""
    if own is None:
        detail = (
            f"the account has no number {masked(number)}: check {setting} (messaging, webhook not checked)"
        )
        return Probe("number", False, detail)
    if own.status != "active":
        return Probe("number", False, f"{masked(number)} is the account's but {own.status}, not active")
    return Probe("number", True, f"{masked(number)} is the account's (active)")


def _number_webhook(
    own: NumbersPhoneNumberDetailed, application: TexmlApplication, voice_urls: Sequence[str]
) -> Probe:
    """Calls to a number go to the connection it is assigned to: our TeXML application, whose
    voice URL must be our dial-in route."""
    if own.connection_id != application.id:
        fix = f"assign the number to TeXML application {application.id} (Mission Control Portal, Numbers)"
        return Probe(
            "webhook", False, f"calls to the number go to connection {own.connection_id or 'none'}: {fix}"
        )
    return reaches_dial_in(application.voice_url, application.voice_method, voice_urls)


class TelnyxCarrier(TwimlDialect):
    """Implements `carrier.port.Carrier`; create it inside the event loop it will serve.

    `api_key`: an API v2 key (Bearer). `account_sid`: the account's ID, which TeXML paths carry
    (`/texml/Accounts/{account_sid}`). `application_id`: the TeXML application's numeric ID,
    sent as `ApplicationSid` on each outbound call (its connection places the call).
    `public_key`: the account's base64 ed25519 public key from the Mission Control Portal,
    which verifies webhooks. All four come from the portal; none is derived from another."""

    def __init__(
        self,
        api_key: str,
        account_sid: str,
        application_id: str,
        public_key: str,
        api_url: str | None = None,
        requests_at_once: int = REQUESTS_AT_ONCE,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self._in_flight = asyncio.Semaphore(requests_at_once)
        self._timeout = request_timeout
        self._client = AsyncTelnyx(
            api_key=api_key,
            public_key=public_key,
            base_url=f"{api_url.rstrip('/')}/v2" if api_url else None,
            timeout=request_timeout,
            max_retries=0,  # the SDK retries 5xx and timeouts, POSTs too: a second call placed
        )
        self._account = account_sid
        self._application = application_id
        self._public_key = public_key

    async def close(self) -> None:
        await self._client.close()

    async def _call_api(self, request: Awaitable[T]) -> T:
        try:
            async with self._in_flight:  # the timeout counts from when the request is sent
                return await asyncio.wait_for(request, self._timeout)
        except (APIStatusError, APIConnectionError, TimeoutError, OSError) as exc:
            raise classify(exc) from None  # the SDK's message names the whole number; ours masks it

    async def _read(self, request: Awaitable[T]) -> T | CarrierError:
        try:
            return await self._call_api(request)
        except CarrierError as exc:
            return exc

    async def check(self, number: str, voice_urls: Sequence[str], setting: Callable[..., str]) -> list[Probe]:
        """Reads only: the TeXML application (the API key, the application's ID and voice URL),
        the account's phone numbers filtered by `number` (the number's, active, its connection
        and messaging profile), one TeXML call (the account's ID too) and the number's messaging
        profile. The Messaging API has no list of messages sent: `messaging` checks that the
        number has an enabled messaging profile, which sending needs, not that a send goes
        through. Whether our callback server answers at the voice URL, only a call tells."""
        fixes = Fixes(f"{setting('auth_token')} (the API key)", setting("api_url"))
        texml = Fixes(f"{setting('account_sid', 'auth_token')} (the API key)", setting("api_url"))
        found = await self._read(self._client.texml_applications.retrieve(self._application))
        if isinstance(found, CarrierError):
            if found.code in ALREADY_OVER:  # not found: the key works, the application is not its
                missing = f"API key accepted, but no TeXML application {self._application}"
                fix = f"check {setting('application_id')} (the rest not checked)"
                return [Probe("credentials", False, f"{missing}: {fix}")]
            return [fixes.failed("credentials", found, unchecked="the rest")]
        application = found.data or TexmlApplication(id=self._application)
        digits = number.lstrip("+")  # the filter matches digits only, partial numbers too
        numbers, calls = await asyncio.gather(
            self._read(self._client.phone_numbers.list(filter={"phone_number": digits}, page_size=20)),
            self._read(self._client.texml.accounts.calls.retrieve_calls(self._account, page_size=1)),
        )
        own = None
        if isinstance(numbers, CarrierError):
            number_probe = fixes.failed("number", numbers, unchecked="messaging, webhook")
        else:
            own = next((found for found in numbers.data if found.phone_number == number), None)
            number_probe = _own_number(number, own, setting("number"))
        probes = [
            Probe("credentials", True, f"API key accepted; TeXML application {application.id} found"),
            number_probe,
            texml.answered("voice", calls, "the TeXML voice API answers (listed calls)"),
        ]
        if own is not None:
            probes += [
                await self._messaging_profile(own, fixes),
                _number_webhook(own, application, voice_urls),
            ]
        return probes

    async def _messaging_profile(self, own: NumbersPhoneNumberDetailed, fixes: Fixes) -> Probe:
        if not own.messaging_profile_id:
            fix = "assign it one (Mission Control Portal, Messaging)"
            return Probe(
                "messaging", False, f"the number has no messaging profile, so its SMS are refused: {fix}"
            )
        found = await self._read(self._client.messaging_profiles.retrieve(own.messaging_profile_id))
        if isinstance(found, CarrierError):
            return fixes.failed("messaging", found)
        profile = found.data
        if profile is None or profile.enabled is False:
            return Probe(
                "messaging", False, f"messaging profile {own.messaging_profile_id} is disabled: enable it"
            )
        nothing_sent = "Telnyx lists no messages sent: a send is not tried"
        return Probe(
            "messaging", True, f"messaging profile {profile.name or profile.id} is enabled ({nothing_sent})"
        )

    async def calls_to(self, to: str, caller_id: str, since: datetime) -> list[str]:
        """TeXML lists calls by `To` and `From` (dates only by day): the moment is checked here,
        on the one-second grid of RFC 2822 dates."""
        page = await self._call_api(
            self._client.texml.accounts.calls.retrieve_calls(
                self._account, to=to, from_=caller_id, page_size=50
            )
        )
        since = since.replace(microsecond=0)
        found = []
        for call in page.calls or []:
            created = _created_at(call.date_created)
            if call.sid and created is not None and created >= since:
                found.append(call.sid)
        return found

    async def place_call(self, call: OutboundCall) -> str:
        """The TeXML goes inline (`Texml`), as with Twilio's `Twiml`; the builders are Twilio's,
        whose `<Say>`, `<Gather>`, `<Hangup>` and `<Dial><Conference>` TeXML reads alike."""
        low, high = RING_TIMEOUT_S
        ring = min(max(int(call.ring_timeout / timedelta(seconds=1)), low), high)
        texml_call = {
            "ApplicationSid": self._application,
            "To": call.to,
            "From": call.caller_id,
            "Texml": call_twiml(call),
            "Timeout": ring,
            "StatusCallback": call.status_callback,
            "StatusCallbackEvent": "initiated answered completed",  # initiated: the call's ID
            # reaches its run even if this request's answer is lost
            "StatusCallbackMethod": "POST",
            "MachineDetection": "Enable",
            "AsyncAmd": True,
            "AsyncAmdStatusCallback": call.machine_callback,
            "AsyncAmdStatusCallbackMethod": "POST",
        }
        # Telnyx's own names: the SDK (4.189) does not rename this body's snake_case keys (it
        # transforms `body` as if it were the whole params), so they would arrive as `to`, `from_`.
        calls = self._client.texml.accounts.calls
        created = await self._call_api(calls.calls(self._account, body=cast(Any, texml_call)))
        call_sid = (created.model_extra or {}).get("call_sid")
        if not call_sid:  # placed, but we cannot tell which call: a retry must look first
            raise CarrierError(FailureKind.TRANSIENT, "Telnyx answered without a call_sid", maybe_done=True)
        return str(call_sid)

    async def hang_up(self, call_id: str) -> None:
        calls = self._client.texml.accounts.calls
        await self._already_done_is_done(calls.update(call_id, account_sid=self._account, status="completed"))

    async def end_conference(self, conference_sid: str) -> None:
        rooms = self._client.texml.accounts.conferences
        await self._already_done_is_done(
            rooms.update(conference_sid, account_sid=self._account, status="completed")
        )

    async def _already_done_is_done(self, request: Awaitable[object]) -> None:
        """Hanging up a call that ended, or ending a room that emptied, is done, not an error."""
        try:
            await self._call_api(request)
        except CarrierError as exc:
            if exc.code not in ALREADY_OVER:
                raise

    async def mute(self, conference_sid: str, call_sid: str, muted: bool) -> None:
        participants = self._client.texml.accounts.conferences.participants
        await self._call_api(
            participants.update(
                call_sid, account_sid=self._account, conference_sid=conference_sid, muted=muted
            )
        )

    async def remove(self, conference_sid: str, call_sid: str) -> None:
        participants = self._client.texml.accounts.conferences.participants
        await self._call_api(
            participants.delete(call_sid, account_sid=self._account, conference_sid=conference_sid)
        )

    async def call_state(self, call_sid: str) -> CallState:
        call = await self._call_api(
            self._client.texml.accounts.calls.retrieve(call_sid, account_sid=self._account)
        )
        return CallState(call_sid=call_sid, status=call.status or "", answered_by=call.answered_by or None)

    async def bridge_members(self, room: str) -> tuple[str | None, list[str]]:
        conferences = self._client.texml.accounts.conferences
        found = await self._call_api(
            conferences.retrieve_conferences(self._account, friendly_name=room, status="in-progress")
        )
        live = [c for c in found.conferences or [] if c.sid]
        if not live:
            return None, []
        sid = str(live[0].sid)
        members = await self._call_api(
            conferences.participants.retrieve_participants(sid, account_sid=self._account)
        )
        return sid, sorted(str(m.call_sid) for m in members.participants or [] if m.call_sid)

    async def send_sms(
        self, to: str, sender: str, body: str, *, sent_since: datetime | None, key: str = ""
    ) -> str:
        """Telnyx keeps the idempotency key: every try of one message (same `key`) sends it once,
        and `sent_since` is not needed. Without a key, a retry may send it again (the Messaging
        API has no list by recipient to look in)."""
        sent = await self._call_api(
            self._client.messages.send(to=to, from_=sender, text=body, idempotency_key=key or omit)
        )
        if sent.data is None or not sent.data.id:
            raise CarrierError(FailureKind.TRANSIENT, "Telnyx answered without a message id", maybe_done=True)
        return str(sent.data.id)

    def is_authentic(self, callback: SignedCallback) -> bool:
        """The SDK's ed25519 check: signature over `"{timestamp}|{raw body}"`, timestamp within
        300 s. The URL is not signed (a proxy changing it changes nothing)."""
        try:
            verify_webhook_signature(callback.body, callback.headers, self._public_key)
        except WebhookVerificationError:
            return False
        return True

    def gather(self, action_url: str, prompt: Speech, **keys: object) -> str:
        return gather_keys(action_url, prompt, **keys)
