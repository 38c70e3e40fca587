"""Twilio's REST API on loopback: the front door (HTTP basic auth with the account's SID and
token; a drill's server-error window answers 500 before anything is done), the Calls and
Messages resources, and reads of the account and its dial-in number. Conferences are in
`rest_conferences`."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from carrier.simulator.calls import Call, Calls
from carrier.simulator.faults import Faults
from carrier.simulator.journal import Journal
from carrier.simulator.messages import Messages
from carrier.simulator.phones import Phones
from carrier.simulator.rooms import UPDATED_VIA_API
from carrier.simulator.shapes import API_VERSION, TwilioError, not_found, page, require_number, text, words
from carrier.simulator.switch import Switch
from carrier.simulator.wire import Wire

ACCOUNT = f"/{API_VERSION}/Accounts/{{account}}"
TWILIO = Wire(ACCOUNT, ".json")


def api_app(account_sid: str, auth_token: str, faults: Faults) -> web.Application:
    expected = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()

    @web.middleware
    async def front_door(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(f"/{API_VERSION}/"):
            faults.refuse_request(f"{request.method} {request.path}")
            authorized = request.headers.get("Authorization") == expected
            if not authorized or request.match_info.get("account") != account_sid:
                raise TwilioError(401, 20003, "Authenticate")
        return await handler(request)

    return web.Application(middlewares=[front_door])


def matches(request: web.Request, to: str, sender: str) -> bool:
    """The `To` and `From` filters of the Calls and Messages lists."""
    return request.query.get("To", to) == to and request.query.get("From", sender) == sender


class CallsApi:
    def __init__(
        self,
        calls: Calls,
        switch: Switch,
        phones: Phones,
        faults: Faults,
        journal: Journal,
        wire: Wire = TWILIO,
    ) -> None:
        self._calls = calls
        self._switch = switch
        self._phones = phones
        self._faults = faults
        self._journal = journal
        self._wire = wire

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(self._wire.path("/Calls"), self.create),
            web.get(self._wire.path("/Calls"), self.list_calls),
            web.get(self._wire.path("/Calls/{sid}"), self.fetch),
            web.post(self._wire.path("/Calls/{sid}"), self.update),
        ]

    async def create(self, request: web.Request) -> web.Response:
        form = await self._wire.read_form(request)
        to = require_number(form.get("To"), "To", 21211)
        sender = require_number(form.get("From"), "From", 21212)
        document = self._wire.document
        if not (form.get(document) or form.get("Url")):
            raise TwilioError(400, 21205, f"Url or {document} is required")
        for name in self._wire.call_requires:
            if not form.get(name):
                raise TwilioError(400, 21205, f"{name} is required")
        lost_response = self._faults.strike(to)
        call = self._calls.open(to, sender, "outbound-api", "queued")
        call.status_callback = text(form.get("StatusCallback"))
        call.machine_callback = text(form.get("AsyncAmdStatusCallback"))
        call.detects_machines = form.get("MachineDetection") is not None
        call.events = words(form.getall("StatusCallbackEvent", [])) or call.events
        call.twiml = text(form.get(document))
        await self._phones.dial(call, text(form.get("Timeout")))
        if lost_response:
            raise TwilioError(500, 20500, "Internal Server Error (the call was placed)")
        return web.json_response(self._wire.created_call(call.resource(self._calls.account_sid)), status=201)

    async def list_calls(self, request: web.Request) -> web.Response:
        found = [c for c in self._calls.by_sid.values() if matches(request, c.to, c.sender)]
        return web.json_response(page("calls", [c.resource(self._calls.account_sid) for c in found], request))

    async def fetch(self, request: web.Request) -> web.Response:
        return web.json_response(self._call(request).resource(self._calls.account_sid))

    async def update(self, request: web.Request) -> web.Response:
        """Hanging up: an answered call completes, a ringing one is canceled."""
        call = self._call(request)
        form = await self._wire.read_form(request)
        if form.get("Status") in ("completed", "canceled") and call.live:
            self._journal.record("hangup", {"sid": call.sid, "to": call.to})
            status = "completed" if call.status == "in-progress" else "canceled"
            await self._switch.hang_up(call, status, UPDATED_VIA_API)
        return web.json_response(call.resource(self._calls.account_sid))

    def _call(self, request: web.Request) -> Call:
        call = self._calls.by_sid.get(request.match_info["sid"])
        if call is None:
            raise not_found()
        return call


class MessagesApi:
    def __init__(self, messages: Messages, faults: Faults) -> None:
        self._messages = messages
        self._faults = faults

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(ACCOUNT + "/Messages.json", self.create),
            web.get(ACCOUNT + "/Messages.json", self.list_messages),
        ]

    async def create(self, request: web.Request) -> web.Response:
        form = await request.post()
        to = require_number(form.get("To"), "To", 21211)
        sender = require_number(form.get("From"), "From", 21212)
        body = text(form.get("Body"))
        if not body:
            raise TwilioError(400, 21602, "Message body is required")
        lost_response = self._faults.strike(to)
        message = self._messages.accept(to, sender, body, text(form.get("StatusCallback")))
        if lost_response:
            raise TwilioError(500, 20500, "Internal Server Error (the message was sent)")
        return web.json_response(message, status=201)

    async def list_messages(self, request: web.Request) -> web.Response:
        found = [m for m in self._messages.sent if matches(request, m["to"], m["from"])]
        return web.json_response(page("messages", found, request))


class AccountApi:
    """Reads of the account and of its one number, the dial-in number with its voice URL (what
    `rallycall carriers check` asks). The `PhoneNumber` filter matches part of a number, as
    Twilio's does."""

    def __init__(self, account_sid: str, dial_in_number: str | None, voice_url: str | None) -> None:
        self._account_sid = account_sid
        self._dial_in_number = dial_in_number
        self._voice_url = voice_url

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(ACCOUNT + ".json", self.fetch),
            web.get(ACCOUNT + "/IncomingPhoneNumbers.json", self.numbers),
        ]

    async def fetch(self, request: web.Request) -> web.Response:
        sid = self._account_sid
        account = {"sid": sid, "friendly_name": "rallycall simulator", "status": "active", "type": "Full"}
        return web.json_response(account | {"uri": f"/{API_VERSION}/Accounts/{sid}.json"})

    async def numbers(self, request: web.Request) -> web.Response:
        number = self._dial_in_number
        wanted = request.query.get("PhoneNumber", "").lstrip("+")
        found = [self._number(number)] if number and wanted in number else []
        return web.json_response(page("incoming_phone_numbers", found, request))

    def _number(self, number: str) -> dict[str, Any]:
        sid = "PN" + hashlib.sha256(number.encode()).hexdigest()[:32]
        return {
            "sid": sid,
            "account_sid": self._account_sid,
            "phone_number": number,
            "friendly_name": number,
            "status": "in-use",
            "capabilities": {"voice": True, "sms": True, "mms": False, "fax": False},
            "voice_url": self._voice_url or "",
            "voice_method": "POST",
            "voice_application_sid": "",
            "uri": f"/{API_VERSION}/Accounts/{self._account_sid}/IncomingPhoneNumbers/{sid}.json",
        }
