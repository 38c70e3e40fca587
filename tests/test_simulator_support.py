"""Shared by the simulator's tests (no tests of its own): the simulator on loopback, the real
`twilio` SDK pointed at it as carrier/twilio.py does, and a webhook receiver that refuses what
is not signed for its public URL, as rallycall's callback server does."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.voice_response import Dial, VoiceResponse

from carrier.simulator import CarrierSimulator, Scenario
from config import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN

CALLER_ID = "+41215550100"
ROOM_EVENTS = "start end join leave mute hold"


@dataclass
class Receiver:
    """Records every signed webhook, in order; an unsigned one gets 403 and is not recorded."""

    url: str = ""
    received: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    _validator: RequestValidator = field(default_factory=lambda: RequestValidator(DEV_AUTH_TOKEN))

    async def handle(self, request: web.Request) -> web.Response:
        params = {key: str(value) for key, value in (await request.post()).items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        if not self._validator.validate(self.url + request.path_qs, params, signature):
            return web.Response(status=403)
        self.received.append((request.path, params))
        return web.Response(text="<Response/>", content_type="text/xml")

    def at(self, path: str) -> list[dict[str, str]]:
        return [params for where, params in self.received if where == path]


@dataclass
class Bench:
    simulator: CarrierSimulator
    url: str
    client: Client
    hooks: Receiver
    journal: Path

    def hook(self, path: str) -> str:
        return self.hooks.url + path

    def entries(self, kind: str) -> list[dict[str, Any]]:
        if not self.journal.exists():
            return []
        lines = [json.loads(line) for line in self.journal.read_text().splitlines()]
        return [entry for entry in lines if entry["kind"] == kind]

    async def call_into_room(self, to: str, room: str, **conference: Any) -> str:
        """Place a call whose TwiML joins `room` (events to `/room`) once answered."""
        response = VoiceResponse()
        dial = Dial()
        dial.conference(
            room, status_callback=self.hook("/room"), status_callback_event=ROOM_EVENTS, **conference
        )
        response.append(dial)
        call = await self.client.calls.create_async(
            to=to, from_=CALLER_ID, twiml=str(response), status_callback=self.hook("/call")
        )
        return str(call.sid)

    def room_events(self, event: str) -> list[dict[str, str]]:
        return [p for p in self.hooks.at("/room") if p["StatusCallbackEvent"] == event]


@contextlib.asynccontextmanager
async def bench(tmp_path: Path, scenario: Scenario) -> AsyncIterator[Bench]:
    hooks = Receiver()
    receiving = web.Application()
    receiving.router.add_post("/{path:.*}", hooks.handle)
    receiver = await _serve(receiving)
    hooks.url = _url_of(receiver)
    journal = tmp_path / "carrier.jsonl"
    simulator = CarrierSimulator(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, scenario, journal)
    runner = await _serve(simulator.app())
    try:
        async with twilio_client(_url_of(runner)) as client:
            yield Bench(simulator, _url_of(runner), client, hooks, journal)
    finally:
        await runner.cleanup()
        await receiver.cleanup()


@contextlib.asynccontextmanager
async def twilio_client(api_url: str) -> AsyncIterator[Client]:
    """The SDK with the dev credentials, pointed at `api_url` as carrier/twilio.py does."""
    http = AsyncTwilioHttpClient()
    client = Client(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, http_client=http, environment={})
    client.api.base_url = api_url
    client.edge = client.region = None
    try:
        yield client
    finally:
        await http.close()


async def until(check: Callable[[], bool], seconds: float = 2.0) -> None:
    """Wait (in real time) for `check` to hold."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {seconds}s")
        await asyncio.sleep(0.01)


async def _serve(app: web.Application) -> web.AppRunner:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def _url_of(runner: web.AppRunner) -> str:
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"
