"""Telnyx's REST API on loopback: the TeXML Calls and Conferences resources (served by the
same handlers as Twilio's, through the `TELNYX` wire), the Messaging API's send, and reads of
the TeXML application, the dial-in number and its messaging profile.

The front door takes `Authorization: Bearer <API key>`; a drill's server-error window answers
500 before anything is done, as in the Twilio dialect. Every error leaves as Telnyx spells it,
`{"errors": [{"code", "title", "detail", "source": {"pointer"}}]}`: the shared handlers and
`Faults` raise Twilio's errors, translated here by code. A scripted numeric fault is taken as a
Telnyx error code (`10002`: invalid number)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import MultiDict, MultiDictProxy

from carrier.simulator.faults import Faults
from carrier.simulator.messages import Messages
from carrier.simulator.shapes import TwilioError, not_found, require_number, text
from carrier.simulator.wire import Form, Wire

API = "/v2"
TEXML_ACCOUNT = API + "/texml/Accounts/{account}"

TELNYX_CODES: dict[int, tuple[str, str, str | None]] = {
    20003: ("10009", "Authentication failed", None),
    20404: ("10005", "Resource not found", None),
    16022: ("10005", "Resource not found", None),
    20429: ("10011", "Too many requests", None),
    20500: ("10007", "Unexpected error", None),
    20503: ("10007", "Unexpected error", None),
    21205: ("10004", "Missing required parameter", None),
    21211: ("10002", "Invalid phone number", "/To"),
    21212: ("10002", "Invalid phone number", "/From"),
    21602: ("10004", "Missing required parameter", "/text"),
}
"""Twilio's code → Telnyx's code, title and the parameter at fault (codes from Telnyx's API
error reference: 10002 invalid phone number, 10004 missing parameter, 10005 not found, 10007
unexpected error, 10009 authentication failed, 10011 too many requests)."""


class TelnyxError(web.HTTPException):
    def __init__(self, status: int, code: str, title: str, detail: str, pointer: str | None = None) -> None:
        self.status_code = status
        error: dict[str, Any] = {"code": code, "title": title, "detail": detail}
        if pointer:
            error["source"] = {"pointer": pointer}
        super().__init__(text=json.dumps({"errors": [error]}), content_type="application/json")


def translated(error: TwilioError) -> TelnyxError:
    body = json.loads(error.text or "{}")
    code, message = int(body.get("code", 0)), str(body.get("message", ""))
    telnyx_code, title, pointer = TELNYX_CODES.get(code, (str(code), "Error", None))
    return TelnyxError(error.status_code, telnyx_code, title, message, pointer)


def telnyx_app(account_sid: str, api_key: str, faults: Faults) -> web.Application:
    @web.middleware
    async def front_door(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(API + "/"):
            return await handler(request)
        try:
            faults.refuse_request(f"{request.method} {request.path}")
            authorized = request.headers.get("Authorization") == f"Bearer {api_key}"
            if not authorized or request.match_info.get("account", account_sid) != account_sid:
                raise TwilioError(401, 20003, "The API key is not valid for this account")
            return await handler(request)
        except TwilioError as exc:
            raise translated(exc) from None

    return web.Application(middlewares=[front_door])


async def json_body(request: web.Request) -> Form:
    """The SDK sends TeXML parameters as a JSON object (`{"To": ..., "Muted": true}`); read as
    form values, as Twilio's would be (`true` → "true")."""
    found = await request.json() if request.can_read_body else {}
    form: MultiDict[str] = MultiDict()
    for name, value in found.items():
        if value is not None:
            form.add(name, json.dumps(value) if isinstance(value, bool) else str(value))
    return MultiDictProxy(form)


def with_call_sid(resource: dict[str, Any]) -> dict[str, Any]:
    """Telnyx answers a TeXML call's creation with `call_sid`, `from`, `to` and `status`."""
    return {
        "call_sid": resource["sid"],
        "from": resource["from"],
        "to": resource["to"],
        "status": resource["status"],
    }


TELNYX = Wire(
    TEXML_ACCOUNT,
    document="Texml",
    call_requires=("ApplicationSid",),  # the TeXML application: its outbound profile, caller IDs
    read_form=json_body,
    created_call=with_call_sid,
)


class TelnyxMessagesApi:
    """`POST /v2/messages`: one message per `Idempotency-Key`, whatever the tries (a try after a
    lost answer gets the first try's message)."""

    def __init__(self, messages: Messages, faults: Faults) -> None:
        self._messages = messages
        self._faults = faults
        self._by_key: dict[str, dict[str, Any]] = {}

    def routes(self) -> list[web.RouteDef]:
        return [web.post(API + "/messages", self.send)]

    async def send(self, request: web.Request) -> web.Response:
        order = await request.json()
        key = request.headers.get("Idempotency-Key")
        if key and key in self._by_key:
            return web.json_response({"data": self._by_key[key]})
        to = require_number(order.get("to"), "to", 21211)
        sender = require_number(order.get("from"), "from", 21212)
        body = text(order.get("text"))
        if not body:
            raise TwilioError(400, 21602, "Message text is required")
        lost_response = self._faults.strike(to)
        message = _telnyx_message(self._messages.accept(to, sender, body, None))
        if key:
            self._by_key[key] = message
        if lost_response:
            raise TwilioError(500, 20500, "Internal Server Error (the message was sent)")
        return web.json_response({"data": message})


def _telnyx_message(sent: dict[str, Any]) -> dict[str, Any]:
    return {
        "record_type": "message",
        "id": sent["sid"],
        "direction": "outbound",
        "type": "SMS",
        "from": {"phone_number": sent["from"]},
        "to": [{"phone_number": sent["to"], "status": "queued"}],
        "text": sent["body"],
        "parts": 1,
        "errors": [],
    }


APPLICATION_ID = "rallycall-dev-texml-app"
"""The simulator's one TeXML application (the loopback stack's `application_id`): the dial-in
number is assigned to it, and its voice URL is the number's. Calls take any `ApplicationSid`."""
MESSAGING_PROFILE_ID = "rallycall-dev-messaging-profile"
"""The dial-in number's messaging profile, enabled."""


class TelnyxAccountApi:
    """Reads of the TeXML application, the account's one phone number (the dial-in number) and
    its messaging profile (what `rallycall carriers check` asks). `filter[phone_number]` matches
    digits only, part of a number too, as Telnyx's does."""

    def __init__(self, dial_in_number: str | None, voice_url: str | None) -> None:
        self._dial_in_number = dial_in_number
        self._voice_url = voice_url

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(API + "/texml_applications/{id}", self.application),
            web.get(API + "/phone_numbers", self.numbers),
            web.get(API + "/messaging_profiles/{id}", self.messaging_profile),
        ]

    async def application(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != APPLICATION_ID:
            raise not_found()
        application = {"record_type": "texml_application", "id": APPLICATION_ID, "active": True}
        voice = {"voice_url": self._voice_url or "", "voice_method": "post"}
        return web.json_response({"data": application | {"friendly_name": "rallycall (simulated)"} | voice})

    async def numbers(self, request: web.Request) -> web.Response:
        number = self._dial_in_number
        wanted = request.query.get("filter[phone_number]", "")
        found = [_phone_number(number)] if number and wanted.isdigit() and wanted in number else []
        meta = {"page_number": 1, "page_size": 20, "total_pages": 1, "total_results": len(found)}
        return web.json_response({"data": found, "meta": meta})

    async def messaging_profile(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != MESSAGING_PROFILE_ID:
            raise not_found()
        profile = {"record_type": "messaging_profile", "id": MESSAGING_PROFILE_ID, "enabled": True}
        return web.json_response({"data": profile | {"name": "rallycall (simulated)"}})


def _phone_number(number: str) -> dict[str, Any]:
    return {
        "record_type": "phone_number",
        "id": number.lstrip("+"),
        "phone_number": number,
        "status": "active",
        "phone_number_type": "local",
        "connection_id": APPLICATION_ID,
        "messaging_profile_id": MESSAGING_PROFILE_ID,
        "tags": [],
        "deletion_lock_enabled": False,
        "purchased_at": "2026-01-01T00:00:00Z",
        "created_at": "2026-01-01T00:00:00Z",
    }
