"""Webhooks as Twilio sends them: form-encoded POSTs signed with `X-Twilio-Signature`, never
retried. Each one is journaled with its answer, so a test can see what the outside world was
told; during a paused window they are lost (journaled as `webhook-lost`), as when the
receiving server is down."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.request_validator import RequestValidator
from yarl import URL

from carrier.simulator.faults import Faults
from carrier.simulator.journal import Journal

log = logging.getLogger("rallycall.simulator")
TIMEOUT = aiohttp.ClientTimeout(total=15)


@dataclass(frozen=True)
class Answer:
    status: int | None
    """None: nothing answered (refused, timed out, or lost in a paused window)."""
    body: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status < 400


class Webhooks:
    def __init__(self, auth_token: str, journal: Journal, faults: Faults) -> None:
        self._signer = RequestValidator(auth_token)
        self._journal = journal
        self._faults = faults
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str | None, params: dict[str, str], event: str) -> Answer:
        """Deliver `params` to `url` (no URL: nothing to tell); `event` names it in the journal."""
        if not url:
            return Answer(None)
        about = {"event": event, "sid": _subject(params), "url": _without_query(url)}
        if self._faults.webhooks_paused():
            self._journal.record("webhook-lost", about)
            return Answer(None)
        sent = time.monotonic()
        answer = await self._send(url, params)
        answered_in = round((time.monotonic() - sent) * 1000, 1)  # as the carrier waited for it
        self._journal.record("webhook", {**about, "status": answer.status, "ms": answered_in})
        return answer

    async def _send(self, url: str, params: dict[str, str]) -> Answer:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        signature = self._signer.compute_signature(url, params)
        target = URL(url, encoded=True)  # byte for byte what was signed, as Twilio sends it
        try:
            async with self._session.post(
                target, data=params, headers={"X-Twilio-Signature": signature}
            ) as resp:
                if resp.status >= 400:
                    log.warning("webhook %s answered %s", url, resp.status)
                return Answer(resp.status, await resp.text())
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("webhook %s failed: %s", url, exc)
            return Answer(None)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _subject(params: dict[str, str]) -> str | None:
    """The call, message or conference a webhook is about (a participant's call first)."""
    return params.get("CallSid") or params.get("MessageSid") or params.get("ConferenceSid")


def _without_query(url: str) -> str:
    """Query strings of callback URLs carry rallycall's identifiers: kept out of the journal."""
    return urlunsplit(urlsplit(url)._replace(query="", fragment=""))
