"""A call's life at the carrier: queued, ringing, then in-progress or a final status, and the
status and answering-machine callbacks its creator asked for."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from carrier.simulator.shapes import API_VERSION, rfc2822
from carrier.simulator.webhooks import Webhooks

PROGRESS_EVENTS = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}
"""Which StatusCallbackEvent a call status belongs to; every final status is `completed`."""
LIVE = frozenset({"queued", "ringing", "in-progress"})


@dataclass
class Call:
    sid: str
    to: str
    sender: str
    direction: str
    status: str
    created: datetime
    status_callback: str | None = None
    machine_callback: str | None = None
    detects_machines: bool = False
    """Created with `MachineDetection`: its application, told who answered, hangs up on machines."""
    events: frozenset[str] = frozenset({"completed"})
    """The progress events the caller asked for (Twilio sends `completed` only by default)."""
    twiml: str | None = None
    sequence: int = 0
    answered_at: datetime | None = None
    answered_by: str | None = None
    ended_at: datetime | None = None
    room: str | None = None
    """The conference room it joined, by name."""
    queue_ms: int | None = None
    """How long an outbound call waited in the account's queue before it was dialled."""
    tasks: list[asyncio.Task[None]] = field(default_factory=list, repr=False)

    @property
    def live(self) -> bool:
        return self.status in LIVE

    def resource(self, account: str) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "account_sid": account,
            "to": self.to,
            "from": self.sender,
            "status": self.status,
            "direction": self.direction,
            "answered_by": self.answered_by,
            "api_version": API_VERSION,
            "date_created": rfc2822(self.created),
            "date_updated": rfc2822(datetime.now(UTC)),
            "start_time": rfc2822(self.answered_at),
            "end_time": rfc2822(self.ended_at),
            "uri": f"/{API_VERSION}/Accounts/{account}/Calls/{self.sid}.json",
        }


class Calls:
    """Every call the carrier has placed or received, by SID."""

    def __init__(self, account_sid: str, webhooks: Webhooks) -> None:
        self.account_sid = account_sid
        self.by_sid: dict[str, Call] = {}
        self._webhooks = webhooks

    def open(self, to: str, sender: str, direction: str, status: str) -> Call:
        call = Call("CA" + secrets.token_hex(16), to, sender, direction, status, datetime.now(UTC))
        self.by_sid[call.sid] = call
        return call

    def start(self, call: Call, work: Coroutine[Any, Any, None]) -> None:
        """Run what happens on this call in the background; a hang-up cancels it."""
        call.tasks.append(asyncio.create_task(work))

    def stop(self, call: Call) -> None:
        """Cancel the call's background work, except the task doing the stopping."""
        current = asyncio.current_task()
        for task in call.tasks:
            if task is not current:
                task.cancel()

    def stop_all(self) -> None:
        for call in self.by_sid.values():
            self.stop(call)

    async def report(self, call: Call, status: str) -> None:
        """Move to `status` (`initiated` is `queued`) and tell the status callback if it asked."""
        call.status = "queued" if status == "initiated" else status
        if not call.live:
            call.ended_at = datetime.now(UTC)
        if PROGRESS_EVENTS.get(status, "completed") in call.events:
            params = self.params(call, CallStatus=call.status)
            await self._webhooks.post(call.status_callback, params, f"call {call.status}")

    async def answer(self, call: Call, answered_by: str) -> None:
        """Picked up: `in-progress`, then the answering-machine verdict if detection was asked."""
        call.answered_at = datetime.now(UTC)
        call.answered_by = answered_by if call.detects_machines else None
        await self.report(call, "in-progress")
        params = self.params(call, AnsweredBy=answered_by)
        await self._webhooks.post(call.machine_callback, params, f"answered-by {answered_by}")

    def params(self, call: Call, **extra: str) -> dict[str, str]:
        """The parameters of every call webhook, numbered in the order they are sent."""
        call.sequence += 1
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call.sid,
            "Called": call.to,
            "To": call.to,
            "Caller": call.sender,
            "From": call.sender,
            "Direction": call.direction,
            "SequenceNumber": str(call.sequence),
            "Timestamp": rfc2822(datetime.now(UTC)),
            **({"QueueTime": str(call.queue_ms)} if call.queue_ms is not None else {}),
            **extra,
        }
