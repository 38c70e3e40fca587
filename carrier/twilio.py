"""The Twilio adapter: calls and SMS through the real `twilio` SDK, errors sorted by what to do.

`api_url` points the SDK at any Twilio-compatible server (the simulator in the embedded
stack and the tests), so they exercise exactly the requests production sends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.rest.api.v2010.account.incoming_phone_number import IncomingPhoneNumberInstance

from carrier.port import (
    CallState,
    CarrierError,
    FailureKind,
    OutboundCall,
    Probe,
    SignedCallback,
)
from carrier.twiml import TwimlDialect, call_twiml
from domain.contacts import masked

REQUEST_TIMEOUT = 15.0
"""The SDK ignores its own timeout (twilio-python #925); every request is bounded here."""
REQUESTS_AT_ONCE = 50
"""Requests one process has in flight at the carrier: Twilio refuses an account's requests
beyond its API concurrency (error 20429); a 250-person round must not send 250 at once."""
SDK_REQUEST_LOG = logging.getLogger("rallycall.carrier.twilio_sdk")
"""The SDK logs every request's URL and query at INFO, numbers included (`To=`): warnings only."""
SDK_REQUEST_LOG.setLevel(logging.WARNING)
NUMBER = re.compile(r"\+?\d{7,15}")
"""A phone number in a carrier's error message: masked before it reaches a log."""

DESTINATION_ERRORS = frozenset(
    {"21211", "21214", "21215", "21216", "21217", "21408", "21610", "21612", "21614"}
)
CONFIGURATION_ERRORS = frozenset({"20003", "21210", "21212"})
ALREADY_OVER = frozenset({"20404", "21220", "16022"})
"""Not found; call not in progress; conference completed."""
T = TypeVar("T")


def classify(exc: Exception) -> CarrierError:
    """Turn an SDK or network failure into what the caller should do about it."""
    if isinstance(exc, TwilioRestException):
        code = str(exc.code) if exc.code is not None else (str(exc.status) if exc.status == 429 else None)
        message = f"Twilio error {code or exc.status}: {NUMBER.sub(lambda m: masked(m.group()), exc.msg)}"
        if code in DESTINATION_ERRORS:
            return CarrierError(FailureKind.DESTINATION, message, code)
        if code in CONFIGURATION_ERRORS or exc.status in (401, 403):
            return CarrierError(FailureKind.CONFIGURATION, message, code)
        done = exc.status >= 500 and exc.status != 503  # 503: unavailable, it did nothing
        return CarrierError(FailureKind.TRANSIENT, message, code, maybe_done=done)
    never_sent = isinstance(exc, aiohttp.ClientConnectorError)  # refused: nothing reached the carrier
    return CarrierError(FailureKind.TRANSIENT, f"carrier unreachable: {exc!r}", maybe_done=not never_sent)


@dataclass(frozen=True)
class Fixes:
    """What an operator checks when a read fails, in the words of their settings."""

    credentials: str
    """The settings a refusal of our credentials points at."""
    api_url: str

    def failed(self, what: str, error: CarrierError, unchecked: str = "") -> Probe:
        """Refused: our credentials; no answer: the API's URL and our network; else (5xx, 429)
        the carrier's own trouble, which no setting of ours fixes. `unchecked`: the probes this
        one's failure leaves out."""
        if error.kind is FailureKind.CONFIGURATION:
            detail = f"refused ({error}): check {self.credentials}"
        elif str(error).startswith("carrier unreachable"):
            detail = f"no answer ({error}): check {self.api_url} and this host's network"
        else:
            detail = f"failing ({error}): the carrier's trouble, not a setting; try again later"
        return Probe(what, False, f"{detail} ({unchecked} not checked)" if unchecked else detail)

    def answered(self, what: str, answer: object, detail: str) -> Probe:
        if isinstance(answer, CarrierError):
            return self.failed(what, answer)
        return Probe(what, True, detail)


def reaches_dial_in(url: str | None, method: str | None, voice_urls: Sequence[str]) -> Probe:
    """The `webhook` probe: whether calls to the dial-in number reach our dial-in route (a POST
    to one of `voice_urls`; the first is the one to set)."""
    wanted = f"POST {voice_urls[0]}"
    if not url:
        return Probe("webhook", False, f"calls to the number go nowhere (no voice URL): set {wanted}")
    if url not in voice_urls:
        return Probe("webhook", False, f"calls to the number go to {url}: set the voice URL to {wanted}")
    if (method or "POST").upper() != "POST":
        return Probe("webhook", False, f"calls to the number fetch {url} with {method}: set POST")
    return Probe("webhook", True, f"calls to the number reach POST {url}")


def page_refused(exc: TwilioException) -> TwilioException:
    """A list whose page is answered with an error raises a bare `TwilioException("Unable to
    fetch page", response)` (twilio 9.13, `Page.process_response`), where a fetch raises
    `TwilioRestException`: the same error, rebuilt from the response for `classify`."""
    response = exc.args[1] if len(exc.args) > 1 else None
    if not isinstance(response, Response):
        return exc
    try:
        body = json.loads(response.text)
    except ValueError:
        body = {}
    found = body if isinstance(body, dict) else {}
    message = str(found.get("message") or "no error detail")
    return TwilioRestException(response.status_code, "", message, found.get("code"))


def _second_of(moment: datetime) -> datetime:
    """Twilio dates have one-second precision (RFC 2822); compare on that grid."""
    return moment.replace(microsecond=0)


def _own_number(number: str, own: IncomingPhoneNumberInstance | None, setting: str) -> Probe:
    """`own`: the account's incoming number `number` (None: it has none), which must take calls
    and send SMS."""
    if own is None:
        detail = f"the account has no number {masked(number)}: check {setting} (webhook not checked)"
        return Probe("number", False, detail)
    capabilities: dict[str, bool] = own.capabilities if isinstance(own.capabilities, dict) else {}
    cannot = [
        doing for doing, key in (("take calls", "voice"), ("send SMS", "sms")) if not capabilities.get(key)
    ]
    if cannot:
        return Probe("number", False, f"{masked(number)} cannot {' or '.join(cannot)}: use a number that can")
    return Probe("number", True, f"{masked(number)} is the account's (calls and SMS)")


def _number_webhook(own: IncomingPhoneNumberInstance, voice_urls: Sequence[str]) -> Probe:
    """A number given a TwiML app answers calls by the app's voice URL, never by its own."""
    if own.voice_application_sid:
        fix = f"remove it and set the number's voice URL to POST {voice_urls[0]}"
        return Probe(
            "webhook", False, f"calls to the number go to TwiML app {own.voice_application_sid}: {fix}"
        )
    return reaches_dial_in(own.voice_url, own.voice_method, voice_urls)


class TwilioCarrier(TwimlDialect):
    """Implements `carrier.port.Carrier`; create it inside the event loop it will serve."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        api_url: str | None = None,
        requests_at_once: int = REQUESTS_AT_ONCE,
    ) -> None:
        self._in_flight = asyncio.Semaphore(requests_at_once)
        self._http = AsyncTwilioHttpClient(logger=SDK_REQUEST_LOG)
        self._client = Client(account_sid, auth_token, http_client=self._http, environment={})
        if api_url:
            self._client.api.base_url = api_url.rstrip("/")
            self._client.edge = self._client.region = None
        self._validator = RequestValidator(auth_token)

    async def close(self) -> None:
        await self._http.close()

    async def _call_api(self, request: Awaitable[T]) -> T:
        try:
            async with self._in_flight:  # the timeout counts from when the request is sent
                return await asyncio.wait_for(request, REQUEST_TIMEOUT)
        except TwilioException as exc:  # a list's page refused comes as a bare TwilioException
            raise classify(page_refused(exc)) from None  # the SDK's error names the whole number
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise classify(exc) from None

    async def _read(self, request: Awaitable[T]) -> T | CarrierError:
        """The answer, or the error as `classify` sorts it."""
        try:
            return await self._call_api(request)
        except CarrierError as exc:
            return exc

    async def check(self, number: str, voice_urls: Sequence[str], setting: Callable[..., str]) -> list[Probe]:
        """Reads only: the account (credentials, status), its incoming numbers filtered by
        `number` (the number's, its capabilities, its voice URL and method), one call and one
        message. Whether a call would be placed or an SMS delivered, only sending tells; whether
        our callback server answers at that URL, only a call to the number tells."""
        fixes = Fixes(setting("account_sid", "auth_token"), setting("api_url"))
        account = await self._read(self._client.api.account.fetch_async())
        if isinstance(account, CarrierError):
            return [fixes.failed("credentials", account, unchecked="the rest")]
        if account.status != "active":
            fix = "reactivate it in the Twilio console (the rest not checked)"
            return [Probe("credentials", False, f"accepted, but the account is {account.status}: {fix}")]
        numbers, calls, messages = await asyncio.gather(
            self._read(self._client.incoming_phone_numbers.list_async(phone_number=number, limit=20)),
            self._read(self._client.calls.list_async(limit=1)),
            self._read(self._client.messages.list_async(limit=1)),
        )
        own = None
        if isinstance(numbers, CarrierError):
            number_probe = fixes.failed("number", numbers, unchecked="webhook")
        else:  # the filter matches partial numbers too
            own = next((found for found in numbers if found.phone_number == number), None)
            number_probe = _own_number(number, own, setting("number"))
        return [
            Probe("credentials", True, "accepted; the account is active"),
            number_probe,
            fixes.answered("voice", calls, "the voice API answers (listed calls)"),
            fixes.answered(
                "messaging", messages, "the messaging API answers (listed messages; nothing sent)"
            ),
            *([_number_webhook(own, voice_urls)] if own is not None else []),
        ]

    async def calls_to(self, to: str, caller_id: str, since: datetime) -> list[str]:
        earlier = await self._call_api(self._client.calls.list_async(to=to, from_=caller_id, limit=50))
        return [
            str(found.sid)
            for found in earlier
            if found.date_created is not None and found.date_created >= _second_of(since)
        ]

    async def place_call(self, call: OutboundCall) -> str:
        created = await self._call_api(
            self._client.calls.create_async(
                to=call.to,
                from_=call.caller_id,
                twiml=call_twiml(call),
                timeout=int(call.ring_timeout / timedelta(seconds=1)),
                status_callback=call.status_callback,
                status_callback_event=["initiated", "answered", "completed"],  # initiated: the call's ID
                # reaches its run even if this request's answer is lost
                status_callback_method="POST",
                machine_detection="Enable",
                async_amd="true",
                async_amd_status_callback=call.machine_callback,
                async_amd_status_callback_method="POST",
            )
        )
        return str(created.sid)

    async def hang_up(self, call_id: str) -> None:
        await self._already_done_is_done(self._client.calls(call_id).update_async(status="completed"))

    async def end_conference(self, conference_sid: str) -> None:
        room = self._client.conferences(conference_sid)
        await self._already_done_is_done(room.update_async(status="completed"))

    async def _already_done_is_done(self, request: Awaitable[object]) -> None:
        """Hanging up a call that ended, or ending a room that emptied, is done, not an error."""
        try:
            await self._call_api(request)
        except CarrierError as exc:
            if exc.code not in ALREADY_OVER:
                raise

    async def mute(self, conference_sid: str, call_sid: str, muted: bool) -> None:
        participant = self._client.conferences(conference_sid).participants(call_sid)
        await self._call_api(participant.update_async(muted=muted))

    async def remove(self, conference_sid: str, call_sid: str) -> None:
        await self._call_api(self._client.conferences(conference_sid).participants(call_sid).delete_async())

    async def call_state(self, call_sid: str) -> CallState:
        call = await self._call_api(self._client.calls(call_sid).fetch_async())
        return CallState(call_sid=call_sid, status=str(call.status), answered_by=call.answered_by or None)

    async def bridge_members(self, room: str) -> tuple[str | None, list[str]]:
        rooms = await self._call_api(
            self._client.conferences.list_async(friendly_name=room, status="in-progress", limit=1)
        )
        if not rooms:
            return None, []
        members = await self._call_api(self._client.conferences(rooms[0].sid).participants.list_async())
        return str(rooms[0].sid), sorted(str(m.call_sid) for m in members)

    async def send_sms(
        self, to: str, sender: str, body: str, *, sent_since: datetime | None, key: str = ""
    ) -> str:
        """Twilio keeps no idempotency key (`key` is unused): a retry looks for its send."""
        if sent_since is not None:
            earlier = await self._call_api(self._client.messages.list_async(to=to, from_=sender, limit=20))
            for found in earlier:
                if found.body == body and found.date_created and found.date_created >= _second_of(sent_since):
                    return str(found.sid)
        sent = await self._call_api(self._client.messages.create_async(to=to, from_=sender, body=body))
        return str(sent.sid)

    def is_authentic(self, callback: SignedCallback) -> bool:
        signature = callback.headers.get("X-Twilio-Signature", "")
        return bool(signature) and self._validator.validate(callback.url, callback.params, signature)
