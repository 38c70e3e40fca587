"""The simulator's own controls, under `/simulator/` (not Twilio's API, no credentials): a
caller dialling the conference number, and the fault windows of a chaos drill."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from carrier.simulator.faults import ApiPart, Faults
from carrier.simulator.phones import Phones
from carrier.simulator.shapes import require_number


class FaultWindows(BaseModel):
    """Seconds from now; 0 closes a window, and a window not given is left as it is."""

    model_config = ConfigDict(extra="forbid")

    server_errors_for_s: float | None = Field(default=None, ge=0)
    """Every REST API request answers 500 (Twilio error 20500) and does nothing."""
    server_errors_status: Literal[500, 503] = 500
    """503 (Service Unavailable): the carrier says it did nothing."""
    server_errors_on: ApiPart = "all"
    """Only the voice part (calls, conferences) or the messaging part of the API."""
    webhooks_paused_for_s: float | None = Field(default=None, ge=0)
    """No webhook is delivered: each is lost, as when the callback server is down."""


class Control:
    def __init__(
        self,
        phones: Phones,
        faults: Faults,
        dial_in_number: str | None,
        voice_url: str | None,
        drop_rooms: Callable[[], Awaitable[list[str]]],
    ) -> None:
        self._phones = phones
        self._faults = faults
        self._drop_rooms = drop_rooms
        self._dial_in_number = dial_in_number
        self._voice_url = voice_url

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/simulator/inbound", self.inbound_call),
            web.post("/simulator/faults", self.fault_windows),
            web.post("/simulator/drop-rooms", self.drop_rooms),
        ]

    async def inbound_call(self, request: web.Request) -> web.Response:
        """`{"from": E164, "digits": [...], "hangup_after_s": N}`: someone dials the conference
        number and keys one entry of `digits` at each prompt."""
        if not (self._voice_url and self._dial_in_number):
            raise web.HTTPConflict(text="this simulator has no dial-in number configured")
        order = await request.json()
        caller = require_number(order.get("from"), "From", 13214)
        keys = [str(d) for d in order.get("digits", [])]
        hangup_after = order.get("hangup_after_s")
        result = await self._phones.dial_in(
            self._dial_in_number, self._voice_url, caller, keys, float(hangup_after) if hangup_after else None
        )
        return web.json_response(result)

    async def drop_rooms(self, request: web.Request) -> web.Response:
        """The carrier loses every conference room now (their calls drop): `{"dropped": [names]}`."""
        return web.json_response({"dropped": await self._drop_rooms()})

    async def fault_windows(self, request: web.Request) -> web.Response:
        """Open or close fault windows (`FaultWindows`); answers the seconds left in each."""
        try:
            windows = FaultWindows.model_validate(await request.json())
        except ValidationError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        self._faults.open_windows(
            windows.server_errors_for_s,
            windows.webhooks_paused_for_s,
            status=windows.server_errors_status,
            part=windows.server_errors_on,
        )
        return web.json_response(self._faults.windows())
