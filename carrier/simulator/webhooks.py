"""Webhooks as the carrier sends them: form-encoded POSTs, never retried, signed as its dialect
signs them (Twilio: `X-Twilio-Signature` over URL and form; Telnyx: ed25519 over a timestamp and
the raw body). Each one is journaled with its answer, so a test can see what the outside world was
told; during a paused window they are lost (journaled as `webhook-lost`), as when the
receiving server is down."""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
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


@dataclass(frozen=True)
class Signed:
    body: bytes
    headers: dict[str, str]


class Signer(Protocol):
    def sign(self, url: str, params: dict[str, str]) -> Signed: ...


def _form(params: dict[str, str]) -> bytes:
    return urlencode(params).encode()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class TwilioSigner:
    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token)

    def sign(self, url: str, params: dict[str, str]) -> Signed:
        signature = self._validator.compute_signature(url, params)
        return Signed(_form(params), {**FORM, "X-Twilio-Signature": signature})


class TelnyxSigner:
    """`Telnyx-Signature-Ed25519`: base64 of the ed25519 signature of `"{timestamp}|{body}"`,
    `Telnyx-Timestamp` in Unix seconds; `private_key` is the base64 of the key's 32-byte seed."""

    def __init__(self, private_key: str) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_key))

    def sign(self, url: str, params: dict[str, str]) -> Signed:
        body = _form(params)
        timestamp = str(int(time.time()))
        signature = self._key.sign(timestamp.encode() + b"|" + body)
        headers = {
            "Telnyx-Signature-Ed25519": base64.b64encode(signature).decode(),
            "Telnyx-Timestamp": timestamp,
        }
        return Signed(body, {**FORM, **headers})


class Webhooks:
    def __init__(self, signer: Signer, journal: Journal, faults: Faults) -> None:
        self._signer = signer
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
        signed = self._signer.sign(url, params)
        target = URL(url, encoded=True)  # byte for byte what was signed, as the carrier sends it
        try:
            async with self._session.post(target, data=signed.body, headers=signed.headers) as resp:
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
