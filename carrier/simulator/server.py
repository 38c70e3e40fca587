"""A stand-in carrier: the subset of Twilio's REST API rallycall uses, on loopback.

Calls ring and answer as the scenario says; answered calls run the TwiML they were created
with, so they hear the welcome and join a conference room. Rooms send conference and recording
callbacks, calls send status and answering-machine callbacks, messages send status callbacks;
all are signed as Twilio signs them. Inbound calls to the dial-in number fetch its Voice URL and
key in digits at each `<Gather>`, as a caller's phone would through Twilio. Calls, hang-ups,
what each call said and in which language, texts, webhooks and faults are appended to a
JSON-lines journal.

With `dialect="telnyx"` it speaks Telnyx instead: the TeXML REST API (Twilio's resources under
`/v2/texml/Accounts/{account}`, Bearer auth with the API key, Telnyx's errors), the Messaging
API's send with idempotency keys, and webhooks signed with ed25519. Calls, rooms, phones, the
journal and faults are the same machinery, so drills count both carriers alike.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from carrier.simulator.calls import Call, Calls
from carrier.simulator.control import Control
from carrier.simulator.faults import Faults
from carrier.simulator.journal import Journal
from carrier.simulator.messages import Messages
from carrier.simulator.phones import Phones
from carrier.simulator.rest import TWILIO, AccountApi, CallsApi, MessagesApi, api_app
from carrier.simulator.rest_conferences import ConferencesApi
from carrier.simulator.rooms import Room, Rooms
from carrier.simulator.runtime import Runtime
from carrier.simulator.scenario import Scenario
from carrier.simulator.switch import Switch
from carrier.simulator.telnyx_rest import TELNYX, TelnyxAccountApi, TelnyxMessagesApi, telnyx_app
from carrier.simulator.webhooks import Signer, TelnyxSigner, TwilioSigner, Webhooks

Dialect = Literal["twilio", "telnyx"]


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
        dialect: Dialect = "twilio",
        signing_key: str | None = None,
    ) -> None:
        """Twilio: `account_sid` and `auth_token` as Twilio's. Telnyx: `account_sid` is the
        account's ID in TeXML paths, `auth_token` the API key, and `signing_key` the base64
        ed25519 private key (32-byte seed) that signs webhooks."""
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.scenario = scenario
        self.dialect = dialect
        self.journal = Journal(log_path)
        self.faults = Faults(scenario.faults, self.journal)
        self.webhooks = Webhooks(_signer(dialect, auth_token, signing_key), self.journal, self.faults)
        self._calls = Calls(account_sid, self.webhooks)
        self._rooms = Rooms(account_sid, self.webhooks, scenario.recording_seconds)
        self._messages = Messages(account_sid, scenario, self.webhooks, self.journal)
        self._switch = Switch(self._calls, self._rooms)
        runtime = Runtime(self._calls, self._rooms, self._switch, self.webhooks, self.journal)
        self._phones = Phones(scenario, self._calls, self._switch, runtime, self.journal)
        self._account = (
            TelnyxAccountApi(dial_in_number, voice_url)
            if dialect == "telnyx"
            else AccountApi(account_sid, dial_in_number, voice_url)
        )
        self._control = Control(self._phones, self.faults, dial_in_number, voice_url, self.drop_rooms)

    @property
    def calls(self) -> dict[str, Call]:
        """Every call, by SID."""
        return self._calls.by_sid

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every message resource, in the order they were sent."""
        return self._messages.sent

    async def drop_rooms(self) -> list[str]:
        """Lose every room, as a carrier whose conference service fails: their calls drop.
        Returns the rooms' names."""
        dropped = list(self._rooms.live.values())
        for room in dropped:
            self.journal.record("room-dropped", {"room": room.name, "participants": len(room.participants)})
        await asyncio.gather(*(self._switch.fail(room) for room in dropped))
        return [room.name for room in dropped]

    @property
    def rooms(self) -> dict[str, Room]:
        """The conference rooms not yet ended, by name."""
        return self._rooms.live

    def app(self) -> web.Application:
        telnyx = self.dialect == "telnyx"
        wire = TELNYX if telnyx else TWILIO
        app = (telnyx_app if telnyx else api_app)(self.account_sid, self.auth_token, self.faults)
        messages = TelnyxMessagesApi if telnyx else MessagesApi
        app.add_routes(
            CallsApi(self._calls, self._switch, self._phones, self.faults, self.journal, wire).routes()
            + messages(self._messages, self.faults).routes()
            + ConferencesApi(
                self._rooms, self._calls, self._switch, self._phones, self.faults, self.journal, wire
            ).routes()
            + self._account.routes()
            + self._control.routes()
        )
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, app: web.Application) -> None:
        self._calls.stop_all()
        self._messages.stop()
        await self.webhooks.close()


def _signer(dialect: Dialect, auth_token: str, signing_key: str | None) -> Signer:
    if dialect == "twilio":
        return TwilioSigner(auth_token)
    if not signing_key:
        raise ValueError("the Telnyx dialect signs its webhooks: give it an ed25519 signing_key")
    return TelnyxSigner(signing_key)
