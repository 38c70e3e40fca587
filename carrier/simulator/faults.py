"""Faults injected on purpose. Scripted ones come from the scenario, one per API request to a
number; time windows are opened while running, for chaos drills: the API answering 500 or 503
(all of it, or only its voice or its messaging part: a carrier whose voice is down may still
text), or webhooks lost as when our callback server is down."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from carrier.simulator.journal import Journal
from carrier.simulator.scenario import Fault
from carrier.simulator.shapes import TwilioError


class Faults:
    def __init__(
        self, scripted: dict[str, list[Fault]], journal: Journal, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._scripted = {number: list(faults) for number, faults in scripted.items()}
        self._journal = journal
        self._clock = clock
        self._api_down_until = 0.0
        self._api_down_status = 500
        self._api_down_part: ApiPart = "all"
        self._webhooks_paused_until = 0.0

    def strike(self, number: str) -> bool:
        """Raise the next scripted fault for this number as its Twilio error; True means
        `lost-response`: do the work, then answer 500 as if the reply were lost."""
        pending = self._scripted.get(number)
        if not pending:
            return False
        fault = pending.pop(0)
        self._journal.record("fault", {"to": number, "fault": fault})
        if fault == "rate-limited":
            raise TwilioError(429, 20429, "Too Many Requests")
        if fault == "server-error":
            raise TwilioError(500, 20500, "Internal Server Error")
        if fault == "lost-response":
            return True
        raise TwilioError(400, int(fault), f"Twilio error {fault}")

    def open_windows(
        self,
        server_errors_for_s: float | None,
        webhooks_paused_for_s: float | None,
        *,
        status: int = 500,
        part: ApiPart = "all",
    ) -> None:
        """Start (or, with 0, close) a window from now; a window not given is left as it is."""
        now = self._clock()
        if server_errors_for_s is not None:
            self._api_down_until = now + server_errors_for_s
            self._api_down_status, self._api_down_part = status, part
        if webhooks_paused_for_s is not None:
            self._webhooks_paused_until = now + webhooks_paused_for_s
        self._journal.record("fault-window", self.windows())

    def windows(self) -> dict[str, float]:
        """Seconds left in each window (0: closed)."""
        now = self._clock()
        return {
            "server_errors_for_s": round(max(self._api_down_until - now, 0.0), 3),
            "webhooks_paused_for_s": round(max(self._webhooks_paused_until - now, 0.0), 3),
        }

    def refuse_request(self, request_line: str) -> None:
        """During a server-error window, every API request of its part is a 500 (or 503) and
        nothing is done."""
        if self._clock() < self._api_down_until and self._api_down_part in ("all", part_of(request_line)):
            self._journal.record(
                "fault", {"fault": "server-error", "status": self._api_down_status, "request": request_line}
            )
            if self._api_down_status == 503:
                raise TwilioError(503, 20503, "Service Unavailable")
            raise TwilioError(500, 20500, "Internal Server Error")

    def webhooks_paused(self) -> bool:
        return self._clock() < self._webhooks_paused_until


ApiPart = Literal["all", "voice", "messaging"]


def part_of(request_line: str) -> ApiPart:
    """Which part of a carrier's API a request is for (Twilio's and Telnyx's paths alike)."""
    path = request_line.lower()
    if "/messages" in path:
        return "messaging"
    if "/calls" in path or "/conferences" in path:
        return "voice"
    return "all"
