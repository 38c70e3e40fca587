"""A stand-in carrier: the subset of Twilio's REST API rallycall uses, on loopback.

Calls ring and answer as the scenario says; answered calls run the TwiML they were created
with, so they hear the welcome and join a conference room. Rooms send conference and recording
callbacks; calls send status and answering-machine callbacks; all are signed as Twilio signs
them. Inbound calls to the dial-in number (`POST /simulator/inbound`) fetch the number's Voice
URL and key in digits at each `<Gather>`, exactly as a caller's phone would through Twilio.
Every call, hang-up and SMS is appended to a JSON-lines log.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
import phonenumbers
from aiohttp import web
from twilio.request_validator import RequestValidator
from yarl import URL

from carrier.simulator import twiml
from carrier.simulator.scenario import Fault, NumberPlan, Scenario

log = logging.getLogger("rallycall.simulator")

API_PREFIX = "/2010-04-01/Accounts/{account}"
PROGRESS_EVENTS = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}
"""Which StatusCallbackEvent a call status belongs to; every final status is `completed`."""
ROOM_EVENTS = {
    "conference-start": "start",
    "conference-end": "end",
    "participant-join": "join",
    "participant-leave": "leave",
}
FINAL = {"no-answer": "no-answer", "busy": "busy", "fail": "failed"}


@dataclass
class SimulatedCall:
    sid: str
    to: str
    sender: str
    direction: str
    status: str
    created: datetime
    status_callback: str | None = None
    machine_callback: str | None = None
    events: frozenset[str] = frozenset({"completed"})
    """The progress events the caller asked for (Twilio sends `completed` only by default)."""
    twiml: str | None = None
    sequence: int = 0
    answered_at: datetime | None = None
    room: str | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list, repr=False)

    def resource(self, account: str) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "account_sid": account,
            "to": self.to,
            "from": self.sender,
            "status": self.status,
            "direction": self.direction,
            "date_created": format_datetime(self.created),
            "date_updated": format_datetime(datetime.now(UTC)),
            "start_time": format_datetime(self.answered_at) if self.answered_at else None,
            "uri": f"/2010-04-01/Accounts/{account}/Calls/{self.sid}.json",
        }


@dataclass
class Room:
    """A conference room, configured by the `<Conference>` of the first call that enters it."""

    name: str
    sid: str
    status_callback: str | None
    events: frozenset[str]
    record: bool
    recording_callback: str | None
    participants: set[str] = field(default_factory=set)
    sequence: int = 0
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class TwilioError(web.HTTPException):
    """An error body shaped like Twilio's, which the SDK turns into TwilioRestException."""

    def __init__(self, status: int, code: int, message: str) -> None:
        self.status_code = status
        body = {"code": code, "message": message, "status": status,
                "more_info": f"https://www.twilio.com/docs/errors/{code}"}  # fmt: skip
        super().__init__(text=json.dumps(body), content_type="application/json")


class CarrierSimulator:
    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        scenario: Scenario,
        log_path: Path | None,
        *,
        dial_in_number: str | None = None,
        voice_url: str | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.scenario = scenario
        self.log_path = log_path
        self.dial_in_number = dial_in_number
        self.voice_url = voice_url
        self.calls: dict[str, SimulatedCall] = {}
        self.messages: list[dict[str, Any]] = []
        self.rooms: dict[str, Room] = {}
        self._faults = {number: list(faults) for number, faults in scenario.faults.items()}
        self._signer = RequestValidator(auth_token)
        self._session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._authenticate])
        prefix = API_PREFIX.format(account="{account}")
        app.router.add_post(prefix + "/Calls.json", self.create_call)
        app.router.add_get(prefix + "/Calls.json", self.list_calls)
        app.router.add_get(prefix + "/Calls/{sid}.json", self.fetch_call)
        app.router.add_post(prefix + "/Calls/{sid}.json", self.update_call)
        app.router.add_post(prefix + "/Conferences/{sid}.json", self.update_conference)
        app.router.add_post(prefix + "/Messages.json", self.create_message)
        app.router.add_get(prefix + "/Messages.json", self.list_messages)
        app.router.add_post("/simulator/inbound", self.inbound_call)
        app.on_cleanup.append(self._close)
        return app

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/2010-04-01/"):
            credentials = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
            authorized = request.headers.get("Authorization") == f"Basic {credentials}"
            if not authorized or request.match_info.get("account") != self.account_sid:
                raise TwilioError(401, 20003, "Authenticate")
        response: web.StreamResponse = await handler(request)
        return response

    async def _close(self, app: web.Application) -> None:
        for call in self.calls.values():
            for task in call.tasks:
                task.cancel()
        if self._session:
            await self._session.close()

    # --- REST API -------------------------------------------------------------------------

    async def create_call(self, request: web.Request) -> web.Response:
        form = await request.post()
        to = _require_number(form.get("To"), "To", 21211)
        sender = _require_number(form.get("From"), "From", 21212)
        if not (form.get("Twiml") or form.get("Url")):
            raise TwilioError(400, 21205, "Url or Twiml is required")
        lost_response = self._inject_fault(to)
        call = self._new_call(to, sender, "outbound-api", "queued")
        call.status_callback = _str(form.get("StatusCallback"))
        call.machine_callback = _str(form.get("AsyncAmdStatusCallback"))
        call.events = frozenset(str(e) for e in form.getall("StatusCallbackEvent", [])) or call.events
        call.twiml = _str(form.get("Twiml"))
        plan = self.scenario.plan(to)
        self._log({"kind": "call", "sid": call.sid, "to": to, "from": sender, "behaviour": plan.answer,
                   "twiml": call.twiml, "timeout": _str(form.get("Timeout"))})  # fmt: skip
        call.tasks.append(asyncio.create_task(self._ring(call, plan)))
        if lost_response:
            raise TwilioError(500, 20500, "Internal Server Error (the call was placed)")
        return web.json_response(call.resource(self.account_sid), status=201)

    async def list_calls(self, request: web.Request) -> web.Response:
        calls = [
            c.resource(self.account_sid) for c in self.calls.values() if _matches(request, c.to, c.sender)
        ]
        return web.json_response(_page("calls", calls, request))

    async def fetch_call(self, request: web.Request) -> web.Response:
        return web.json_response(self._call(request).resource(self.account_sid))

    async def update_call(self, request: web.Request) -> web.Response:
        """Hanging up: an answered call completes, a ringing one is canceled."""
        call = self._call(request)
        form = await request.post()
        if form.get("Status") in ("completed", "canceled") and call.status in (
            "queued",
            "ringing",
            "in-progress",
        ):
            self._log({"kind": "hangup", "sid": call.sid, "to": call.to})
            await self._end_call(call, "completed" if call.status == "in-progress" else "canceled")
        return web.json_response(call.resource(self.account_sid))

    async def update_conference(self, request: web.Request) -> web.Response:
        """Ending a conference disconnects everyone in it."""
        room = next((r for r in self.rooms.values() if r.sid == request.match_info["sid"]), None)
        if room is None:
            raise TwilioError(404, 20404, "The requested resource was not found")
        form = await request.post()
        if form.get("Status") == "completed":
            self._log({"kind": "end-conference", "sid": room.sid, "room": room.name})
            for sid in sorted(room.participants):
                await self._end_call(self.calls[sid], "completed")
        return web.json_response({"sid": room.sid, "friendly_name": room.name, "status": "completed"})

    async def create_message(self, request: web.Request) -> web.Response:
        form = await request.post()
        to = _require_number(form.get("To"), "To", 21211)
        sender = _require_number(form.get("From"), "From", 21212)
        body = _str(form.get("Body"))
        if not body:
            raise TwilioError(400, 21602, "Message body is required")
        lost_response = self._inject_fault(to)
        now = datetime.now(UTC)
        message = {
            "sid": "SM" + secrets.token_hex(16),
            "account_sid": self.account_sid,
            "to": to,
            "from": sender,
            "body": body,
            "status": "sent",
            "direction": "outbound-api",
            "num_segments": "1",
            "date_created": format_datetime(now),
            "date_sent": format_datetime(now),
        }
        self.messages.append(message)
        self._log({"kind": "sms", "sid": message["sid"], "to": to, "from": sender, "body": body})
        if lost_response:
            raise TwilioError(500, 20500, "Internal Server Error (the message was sent)")
        return web.json_response(message, status=201)

    async def list_messages(self, request: web.Request) -> web.Response:
        found = [m for m in self.messages if _matches(request, m["to"], m["from"])]
        return web.json_response(_page("messages", found, request))

    # --- inbound calls ----------------------------------------------------------------------

    async def inbound_call(self, request: web.Request) -> web.Response:
        """Someone dials the conference number from `from` and keys in `digits` (one entry per
        prompt); with `hangup_after_s` they hang up that long after joining."""
        if not (self.voice_url and self.dial_in_number):
            raise web.HTTPConflict(text="this simulator has no dial-in number configured")
        order = await request.json()
        caller = _require_number(order.get("from"), "From", 13214)
        digits = [str(d) for d in order.get("digits", [])]
        call = self._new_call(self.dial_in_number, caller, "inbound", "ringing")
        call.answered_at = datetime.now(UTC)
        self._log({"kind": "inbound", "sid": call.sid, "from": caller, "to": self.dial_in_number})
        transcript: list[str] = []
        await self._run(call, await self._fetch(self.voice_url, call), self.voice_url, digits, transcript)
        hangup_after = order.get("hangup_after_s")
        if call.room and hangup_after:
            call.tasks.append(asyncio.create_task(self._hang_up_later(call, float(hangup_after))))
        return web.json_response({"call_sid": call.sid, "joined": call.room, "status": call.status,
                                  "transcript": transcript})  # fmt: skip

    async def _run(
        self, call: SimulatedCall, document: str, url: str, digits: list[str], transcript: list[str]
    ) -> None:
        """Execute TwiML as Twilio would, following Gather actions and Redirects."""
        for verb in twiml.parse(document):
            if isinstance(verb, twiml.Say):
                transcript.append(f"heard: {verb.text}")
            elif isinstance(verb, twiml.Gather):
                transcript += [f"heard: {prompt}" for prompt in verb.prompts]
                if not digits:
                    transcript.append("keyed nothing")
                    continue
                keyed = digits.pop(0)
                transcript.append(f"keyed: {keyed}")
                action = urljoin(url, verb.action)
                await self._run(
                    call, await self._fetch(action, call, Digits=keyed), action, digits, transcript
                )
                return
            elif isinstance(verb, twiml.Redirect):
                target = urljoin(url, verb.url)
                await self._run(call, await self._fetch(target, call), target, digits, transcript)
                return
            elif isinstance(verb, twiml.JoinConference):
                transcript.append(f"joined conference {verb.room}")
                await self._join(call, verb)
                return
            elif isinstance(verb, twiml.Hangup):
                transcript.append("hung up by the application")
                await self._end_call(call, "completed")
                return
        await self._end_call(call, "completed")

    async def _fetch(self, url: str, call: SimulatedCall, **extra: str) -> str:
        call.status = (
            "in-progress" if call.status == "ringing" and call.direction == "inbound" else call.status
        )
        status, body = await self._post(url, self._call_params(call, CallStatus=call.status, **extra))
        if status >= 400:
            return "<Response><Say>An application error has occurred.</Say><Hangup/></Response>"
        return body

    # --- how calls progress ------------------------------------------------------------------

    async def _ring(self, call: SimulatedCall, plan: NumberPlan) -> None:
        await self._report(call, "initiated")
        await self._report(call, "ringing")
        await asyncio.sleep(self.scenario.ring_seconds)
        if plan.answer not in ("answer", "machine"):
            await self._report(call, FINAL[plan.answer])
            return
        call.answered_at = datetime.now(UTC)
        await self._report(call, "in-progress")
        answered_by = "human" if plan.answer == "answer" else "machine_start"
        await self._post(call.machine_callback, self._call_params(call, AnsweredBy=answered_by))
        if plan.answer == "machine" or not call.twiml or call.status != "in-progress":
            return  # the application hangs up on machines
        await self._run(call, call.twiml, "", [plan.press] if plan.press else [], [])
        if plan.hangup_after_s and call.status == "in-progress":
            await self._hang_up_later(call, plan.hangup_after_s)

    async def _hang_up_later(self, call: SimulatedCall, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if call.status == "in-progress":
            self._log({"kind": "callee-hangup", "sid": call.sid, "to": call.to, "from": call.sender})
            await self._end_call(call, "completed")

    async def _end_call(self, call: SimulatedCall, status: str) -> None:
        current = asyncio.current_task()
        for task in call.tasks:
            if task is not current:
                task.cancel()
        await self._leave(call)
        await self._report(call, status)

    async def _report(self, call: SimulatedCall, status: str) -> None:
        call.status = "queued" if status == "initiated" else status
        if PROGRESS_EVENTS.get(status, "completed") in call.events:
            await self._post(call.status_callback, self._call_params(call, CallStatus=call.status))

    # --- conference rooms --------------------------------------------------------------------

    async def _join(self, call: SimulatedCall, verb: twiml.JoinConference) -> None:
        room = self.rooms.get(verb.room)
        if room is None:
            attributes = verb.attributes
            room = Room(
                name=verb.room,
                sid="CF" + secrets.token_hex(16),
                status_callback=attributes.get("statusCallback"),
                events=frozenset(attributes.get("statusCallbackEvent", "").split()),
                record=attributes.get("record") == "record-from-start",
                recording_callback=attributes.get("recordingStatusCallback"),
            )
            self.rooms[verb.room] = room
        call.room = room.name
        first = not room.participants
        room.participants.add(call.sid)
        if first:
            await self._room_event(room, "conference-start")
        await self._room_event(room, "participant-join", call)

    async def _leave(self, call: SimulatedCall) -> None:
        room = self.rooms.get(call.room or "")
        if room is None or call.sid not in room.participants:
            return
        room.participants.discard(call.sid)
        await self._room_event(room, "participant-leave", call)
        if not room.participants:
            del self.rooms[room.name]
            await self._room_event(room, "conference-end")
            if room.record and room.recording_callback:
                await self._post(room.recording_callback, self._recording_params(room))

    async def _room_event(self, room: Room, event: str, call: SimulatedCall | None = None) -> None:
        if ROOM_EVENTS[event] not in room.events:
            return
        room.sequence += 1
        params = {
            "AccountSid": self.account_sid,
            "ConferenceSid": room.sid,
            "FriendlyName": room.name,
            "StatusCallbackEvent": event,
            "SequenceNumber": str(room.sequence),
            "Timestamp": format_datetime(datetime.now(UTC)),
        }
        if call is not None:
            params.update({"CallSid": call.sid, "Muted": "false", "Hold": "false", "Coaching": "false"})
        await self._post(room.status_callback, params)

    def _recording_params(self, room: Room) -> dict[str, str]:
        recording = "RE" + secrets.token_hex(16)
        duration = int((datetime.now(UTC) - room.started_at).total_seconds())
        return {
            "AccountSid": self.account_sid,
            "ConferenceSid": room.sid,
            "RecordingSid": recording,
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording}",
            "RecordingStatus": "completed",
            "RecordingDuration": str(duration),
            "RecordingChannels": "1",
            "RecordingSource": "StartConference",
        }

    # --- plumbing ----------------------------------------------------------------------------

    def _new_call(self, to: str, sender: str, direction: str, status: str) -> SimulatedCall:
        call = SimulatedCall("CA" + secrets.token_hex(16), to, sender, direction, status, datetime.now(UTC))
        self.calls[call.sid] = call
        return call

    def _call(self, request: web.Request) -> SimulatedCall:
        call = self.calls.get(request.match_info["sid"])
        if call is None:
            raise TwilioError(404, 20404, "The requested resource was not found")
        return call

    def _inject_fault(self, number: str) -> bool:
        """Raise the next scripted fault for this number; True means "do it, then answer 500"."""
        pending = self._faults.get(number)
        if not pending:
            return False
        fault: Fault = pending.pop(0)
        self._log({"kind": "fault", "to": number, "fault": fault})
        if fault == "rate-limited":
            raise TwilioError(429, 20429, "Too Many Requests")
        if fault == "server-error":
            raise TwilioError(500, 20500, "Internal Server Error")
        if fault == "lost-response":
            return True
        raise TwilioError(400, int(fault), f"Twilio error {fault}")

    def _call_params(self, call: SimulatedCall, **extra: str) -> dict[str, str]:
        call.sequence += 1
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call.sid,
            "Called": call.to,
            "To": call.to,
            "Caller": call.sender,
            "From": call.sender,
            "Direction": call.direction,
            "SequenceNumber": str(call.sequence),
            "Timestamp": format_datetime(datetime.now(UTC)),
            **extra,
        }

    async def _post(self, url: str | None, params: dict[str, str]) -> tuple[int, str]:
        """Deliver a webhook signed as Twilio signs it; a failed delivery is logged, not retried."""
        if not url:
            return 0, ""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        signature = self._signer.compute_signature(url, params)
        target = URL(url, encoded=True)  # byte for byte what was signed, as Twilio sends it
        try:
            async with self._session.post(
                target, data=params, headers={"X-Twilio-Signature": signature}
            ) as resp:
                if resp.status >= 400:
                    log.warning("webhook %s answered %s", url, resp.status)
                return resp.status, await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("webhook %s failed: %s", url, exc)
            return 599, ""

    def _log(self, entry: dict[str, Any]) -> None:
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a", encoding="utf-8") as out:
                out.write(json.dumps({"at": datetime.now(UTC).isoformat(), **entry}) + "\n")


def _str(value: object) -> str | None:
    return str(value) if value is not None else None


def _matches(request: web.Request, to: str, sender: str) -> bool:
    return request.query.get("To", to) == to and request.query.get("From", sender) == sender


def _require_number(value: object, name: str, code: int) -> str:
    text = _str(value) or ""
    try:
        parsed = phonenumbers.parse(text, None)
        valid = phonenumbers.is_valid_number(parsed) and text == phonenumbers.format_number(
            parsed, phonenumbers.PhoneNumberFormat.E164
        )
    except phonenumbers.NumberParseException:
        valid = False
    if not valid:
        raise TwilioError(400, code, f"The '{name}' number {text} is not a valid phone number.")
    return text


def _page(key: str, items: list[dict[str, Any]], request: web.Request) -> dict[str, Any]:
    return {
        key: items,
        "uri": request.path_qs,
        "first_page_uri": request.path_qs,
        "next_page_uri": None,
        "previous_page_uri": None,
        "page": 0,
        "page_size": max(len(items), 50),
        "start": 0,
        "end": max(len(items) - 1, 0),
    }
