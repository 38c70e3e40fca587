"""A stand-in carrier: the subset of Twilio's REST API rallycall uses, on loopback.

It answers each number as a scenario file says and sends the same signed status callbacks
Twilio would, so the embedded stack and the tests run the production code path end to end.
Every call, hang-up and SMS it receives is appended to a JSON-lines log.

Scenario (YAML):
    ring_seconds: 2          # how long a phone rings before the outcome
    default: no-answer       # answer | no-answer | busy | fail | machine
    numbers:
      "+41215550101": answer
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
from typing import Any, Literal

import aiohttp
import phonenumbers
import yaml
from aiohttp import web
from pydantic import BaseModel, ValidationError
from twilio.request_validator import RequestValidator
from yarl import URL

log = logging.getLogger("rallycall.simulator")

Behaviour = Literal["answer", "no-answer", "busy", "fail", "machine"]
API_PREFIX = "/2010-04-01/Accounts/{account}"
PROGRESS_EVENTS = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}
"""Which StatusCallbackEvent a call status belongs to; every final status is `completed`."""


class Scenario(BaseModel):
    ring_seconds: float = 2.0
    default: Behaviour = "no-answer"
    numbers: dict[str, Behaviour] = {}

    def behaviour(self, number: str) -> Behaviour:
        return self.numbers.get(number, self.default)


def load_scenario(path: Path | None) -> Scenario:
    if path is None:
        return Scenario()
    try:
        return Scenario.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise SystemExit(f"scenario {path}: {exc}") from exc


@dataclass
class SimulatedCall:
    sid: str
    to: str
    sender: str
    status: str
    created: datetime
    status_callback: str | None
    machine_callback: str | None
    events: frozenset[str] | set[str]
    """The progress events the caller asked for (Twilio sends `completed` only by default)."""
    sequence: int = 0
    answered_at: datetime | None = None
    progress: asyncio.Task[None] | None = field(default=None, repr=False)

    def resource(self, account: str) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "account_sid": account,
            "to": self.to,
            "from": self.sender,
            "status": self.status,
            "direction": "outbound-api",
            "date_created": format_datetime(self.created),
            "date_updated": format_datetime(datetime.now(UTC)),
            "start_time": format_datetime(self.answered_at) if self.answered_at else None,
            "uri": f"/2010-04-01/Accounts/{account}/Calls/{self.sid}.json",
        }


class TwilioError(web.HTTPException):
    """An error body shaped like Twilio's, which the SDK turns into TwilioRestException."""

    def __init__(self, status: int, code: int, message: str) -> None:
        self.status_code = status
        body = json.dumps(
            {
                "code": code,
                "message": message,
                "status": status,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
            }
        )
        super().__init__(text=body, content_type="application/json")


class CarrierSimulator:
    def __init__(self, account_sid: str, auth_token: str, scenario: Scenario, log_path: Path | None) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.scenario = scenario
        self.log_path = log_path
        self.calls: dict[str, SimulatedCall] = {}
        self.messages: list[dict[str, Any]] = []
        self._signer = RequestValidator(auth_token)
        self._session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._authenticate])
        prefix = API_PREFIX.format(account="{account}")
        app.router.add_post(prefix + "/Calls.json", self.create_call)
        app.router.add_get(prefix + "/Calls.json", self.list_calls)
        app.router.add_get(prefix + "/Calls/{sid}.json", self.fetch_call)
        app.router.add_post(prefix + "/Calls/{sid}.json", self.update_call)
        app.router.add_post(prefix + "/Messages.json", self.create_message)
        app.router.add_get(prefix + "/Messages.json", self.list_messages)
        app.on_cleanup.append(self._close)
        return app

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if (
            request.headers.get("Authorization") != expected
            or request.match_info.get("account") != self.account_sid
        ):
            raise TwilioError(401, 20003, "Authenticate")
        response: web.StreamResponse = await handler(request)
        return response

    async def _close(self, app: web.Application) -> None:
        for call in self.calls.values():
            if call.progress:
                call.progress.cancel()
        if self._session:
            await self._session.close()

    async def create_call(self, request: web.Request) -> web.Response:
        form = await request.post()
        to = _require_number(form.get("To"), "To", 21211)
        sender = _require_number(form.get("From"), "From", 21212)
        if not (form.get("Twiml") or form.get("Url")):
            raise TwilioError(400, 21205, "Url or Twiml is required")
        call = SimulatedCall(
            sid="CA" + secrets.token_hex(16),
            to=to,
            sender=sender,
            status="queued",
            created=datetime.now(UTC),
            status_callback=_str(form.get("StatusCallback")),
            events=frozenset(str(e) for e in form.getall("StatusCallbackEvent", [])) or {"completed"},
            machine_callback=_str(form.get("AsyncAmdStatusCallback")),
        )
        self.calls[call.sid] = call
        behaviour = self.scenario.behaviour(to)
        self._log(
            {"kind": "call", "sid": call.sid, "to": to, "from": sender, "behaviour": behaviour,
             "twiml": _str(form.get("Twiml")), "timeout": _str(form.get("Timeout"))}
        )  # fmt: skip
        call.progress = asyncio.create_task(self._ring(call, behaviour))
        return web.json_response(call.resource(self.account_sid), status=201)

    async def list_calls(self, request: web.Request) -> web.Response:
        calls = [
            c.resource(self.account_sid)
            for c in self.calls.values()
            if request.query.get("To", c.to) == c.to and request.query.get("From", c.sender) == c.sender
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
            if call.progress:
                call.progress.cancel()
            final = "completed" if call.status == "in-progress" else "canceled"
            await self._report(call, final)
        return web.json_response(call.resource(self.account_sid))

    async def create_message(self, request: web.Request) -> web.Response:
        form = await request.post()
        to = _require_number(form.get("To"), "To", 21211)
        sender = _require_number(form.get("From"), "From", 21212)
        body = _str(form.get("Body"))
        if not body:
            raise TwilioError(400, 21602, "Message body is required")
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
        return web.json_response(message, status=201)

    async def list_messages(self, request: web.Request) -> web.Response:
        found = [
            m
            for m in self.messages
            if request.query.get("To", m["to"]) == m["to"]
            and request.query.get("From", m["from"]) == m["from"]
        ]
        return web.json_response(_page("messages", found, request))

    def _call(self, request: web.Request) -> SimulatedCall:
        call = self.calls.get(request.match_info["sid"])
        if call is None:
            raise TwilioError(404, 20404, "The requested resource was not found")
        return call

    async def _ring(self, call: SimulatedCall, behaviour: Behaviour) -> None:
        await self._report(call, "initiated")
        await self._report(call, "ringing")
        await asyncio.sleep(self.scenario.ring_seconds)
        if behaviour in ("answer", "machine"):
            call.answered_at = datetime.now(UTC)
            await self._report(call, "in-progress")
            answered_by = "human" if behaviour == "answer" else "machine_start"
            await self._post(call.machine_callback, self._params(call, AnsweredBy=answered_by))
        else:
            await self._report(call, {"no-answer": "no-answer", "busy": "busy", "fail": "failed"}[behaviour])

    async def _report(self, call: SimulatedCall, status: str) -> None:
        call.status = "queued" if status == "initiated" else status
        event = PROGRESS_EVENTS.get(status, "completed")
        if event in call.events:
            await self._post(call.status_callback, self._params(call, CallStatus=call.status))

    def _params(self, call: SimulatedCall, **extra: str) -> dict[str, str]:
        call.sequence += 1
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call.sid,
            "Called": call.to,
            "To": call.to,
            "Caller": call.sender,
            "From": call.sender,
            "Direction": "outbound-api",
            "SequenceNumber": str(call.sequence),
            "Timestamp": format_datetime(datetime.now(UTC)),
            **extra,
        }

    async def _post(self, url: str | None, params: dict[str, str]) -> None:
        """Deliver a callback signed as Twilio signs it; a failed delivery is logged, not retried."""
        if not url:
            return
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        signature = self._signer.compute_signature(url, params)
        try:
            target = URL(url, encoded=True)  # byte for byte what was signed, as Twilio sends it
            async with self._session.post(
                target, data=params, headers={"X-Twilio-Signature": signature}
            ) as resp:
                if resp.status >= 400:
                    log.warning("callback %s answered %s", url, resp.status)
        except aiohttp.ClientError as exc:
            log.warning("callback %s failed: %s", url, exc)

    def _log(self, entry: dict[str, Any]) -> None:
        entry = {"at": datetime.now(UTC).isoformat(), **entry}
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(entry) + "\n")


def _str(value: object) -> str | None:
    return str(value) if value is not None else None


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
