"""The CLI on a launcher's laptop: launch, read and end runs through the console's HTTP API with
a personal token (RALLYCALL_CONSOLE_URL, RALLYCALL_CONSOLE_TOKEN), holding no other secret.

The console's answers map onto the CLI's own errors, so its exit codes stay what scripts know:
a refused launch 2, a refusal by the conference 3, anything else 1.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp

from domain.errors import InvalidLaunch
from domain.run_view import PAGE_AT_MOST
from watch import NoWorker, Refused

TIMEOUT = aiohttp.ClientTimeout(total=60)
"""A launch with a PIN and a capacity check takes well under a second; a minute is generous."""


class ConsoleRefused(Exception):
    """The console would not serve this token (unknown, revoked, or its role cannot do that)."""


class OverCapacityRemote(InvalidLaunch):
    """The console's over-capacity refusal, as it said it (`--force` launches anyway)."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        super().__init__([str(answer.get("message", "over capacity"))])


def insecure_url(url: str) -> str | None:
    """Why a token must not be sent to this console URL: in clear to another machine."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return None
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme == "http" and loopback:
        return None
    return f"RALLYCALL_CONSOLE_URL {url!r}: the token would cross the network in clear; use https://"


@dataclass(frozen=True)
class ConsoleApi:
    url: str
    token: str

    async def launch(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/api/launches", body)

    async def status(self, workflow_id: str) -> dict[str, Any]:
        """The run's view with everyone in `people` (the console streams it a batch at a time)."""
        return await self._call("GET", f"/api/runs/{quote(workflow_id, safe='')}")

    async def people(
        self, workflow_id: str, offset: int = 0, limit: int = PAGE_AT_MOST, state: str | None = None
    ) -> dict[str, Any]:
        """The run's view with one page of its people (`limit` at most 1,000), optionally only
        those in `state`; `people_offset` and `people_total` say where it is in the roster."""
        query = {"offset": offset, "limit": limit} | ({"state": state} if state else {})
        return await self._call("GET", f"/api/runs/{quote(workflow_id, safe='')}?{urlencode(query)}")

    async def end(self, workflow_id: str, reason: str) -> dict[str, Any]:
        return await self._call("POST", f"/api/runs/{quote(workflow_id, safe='')}/end", {"reason": reason})

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as http,
            http.request(method, self.url.rstrip("/") + path, json=body, headers=headers) as response,
        ):
            try:
                answer = await response.json(content_type=None)
            except ValueError:
                answer = {"message": (await response.text())[:200]}
            except aiohttp.ClientPayloadError as exc:  # a streamed roster cut short
                raise NoWorker(
                    "the console's answer stopped half-way (one of the run's batches did not answer): "
                    "read the run again in a moment"
                ) from exc
            if response.status < 300:
                return dict(answer)
            raise refusal_of(response.status, answer if isinstance(answer, dict) else {})


def refusal_of(status: int, answer: dict[str, Any]) -> Exception:
    message = str(answer.get("message") or answer.get("error") or f"HTTP {status}")
    if status in (401, 403):
        return ConsoleRefused(f"the console refused: {message}")
    if status == 422:
        return InvalidLaunch([str(p) for p in answer.get("problems", [message])])
    if status == 409 and answer.get("error") == "over_capacity":
        return OverCapacityRemote(answer)
    if status in (404, 409, 410):
        return Refused(message)
    if status == 503:
        return NoWorker(message)
    return RuntimeError(f"the console answered {status}: {message}")
