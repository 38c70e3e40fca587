"""Text messages: accepted as `queued`, sent at the account's SMS rate (the journal's
`queue_ms`: how long one waited in the carrier's queue), then `delivered` (or `undelivered`,
error 30003, for a handset the scenario says is unreachable). Each change after the first is told to
the message's StatusCallback; Twilio sends no callback for the initial `queued`."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any

from carrier.simulator.dial_queue import DialQueue
from carrier.simulator.journal import Journal
from carrier.simulator.scenario import Scenario
from carrier.simulator.shapes import API_VERSION, rfc2822
from carrier.simulator.webhooks import Webhooks

UNREACHABLE = (30003, "Unreachable destination handset")


class Messages:
    def __init__(self, account_sid: str, scenario: Scenario, webhooks: Webhooks, journal: Journal) -> None:
        self.account_sid = account_sid
        self.sent: list[dict[str, Any]] = []
        """Message resources, in the order they were accepted."""
        self._unreachable = frozenset(scenario.sms_undelivered)
        self._webhooks = webhooks
        self._journal = journal
        self._deliveries: set[asyncio.Task[None]] = set()
        self._queue = DialQueue(scenario.sms_per_second)

    def accept(self, to: str, sender: str, body: str, status_callback: str | None) -> dict[str, Any]:
        now = datetime.now(UTC)
        sid = "SM" + secrets.token_hex(16)
        message: dict[str, Any] = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": to,
            "from": sender,
            "body": body,
            "status": "queued",
            "direction": "outbound-api",
            "num_segments": "1",
            "error_code": None,
            "error_message": None,
            "api_version": API_VERSION,
            "date_created": rfc2822(now),
            "date_updated": rfc2822(now),
            "date_sent": None,
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        self.sent.append(message)
        queued = self._queue.take_turn()
        self._journal.record(
            "sms", {"sid": sid, "to": to, "from": sender, "body": body, "queue_ms": round(queued * 1000)}
        )
        delivery = asyncio.create_task(self._deliver(message, status_callback, queued))
        self._deliveries.add(delivery)
        delivery.add_done_callback(self._deliveries.discard)
        return dict(message)

    def stop(self) -> None:
        for delivery in self._deliveries:
            delivery.cancel()

    async def _deliver(self, message: dict[str, Any], status_callback: str | None, queued: float) -> None:
        await asyncio.sleep(queued)
        now = rfc2822(datetime.now(UTC))
        message.update(status="sent", date_sent=now, date_updated=now)
        await self._tell(message, status_callback)
        if message["to"] in self._unreachable:
            code, reason = UNREACHABLE
            message.update(status="undelivered", error_code=code, error_message=reason)
        else:
            message.update(status="delivered")
        message["date_updated"] = rfc2822(datetime.now(UTC))
        await self._tell(message, status_callback)

    async def _tell(self, message: dict[str, Any], status_callback: str | None) -> None:
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "MessageSid": message["sid"],
            "SmsSid": message["sid"],
            "MessageStatus": message["status"],
            "SmsStatus": message["status"],
            "From": message["from"],
            "To": message["to"],
        }
        if message["error_code"] is not None:
            params["ErrorCode"] = str(message["error_code"])
        await self._webhooks.post(status_callback, params, f"sms {message['status']}")
