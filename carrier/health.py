"""A worker's own view of each carrier's health, for calls and for SMS apart.

Only carrier faults count: a server error, a timeout, a refused connection, a flood of 429s (each
weighs a third: a busy carrier paces a big round with a few). No answer, busy, an invalid number
or our own credentials refused say nothing about the carrier's health.
FAULTS_IN_A_ROW of them, with no success between and none older than FAULT_WINDOW, and the
worker stops sending that medium to that carrier for OPEN_FOR (what it would send fails over
at once); then one request goes through as a probe, and one success restores it.

Why three: Twilio documents single 5xx and 429 answers as part of normal operation (a retry a
second later goes through), so one or two are retried on the same carrier; three in a row
within seconds, across different calls, is an outage or a carrier refusing us. With calls at 1
a second, three faults take about 3 s, inside the drill's 10 s goal for the first call through
the next carrier. Each worker process keeps its own: no shared state to fail with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Medium = Literal["voice", "sms"]
FAULTS_IN_A_ROW = 3
FAULT_WINDOW = 30.0
"""Seconds: faults further apart than this are separate blips, not an outage."""
RATE_LIMITED_WEIGHT = 1 / 3
"""A 429 is the carrier pacing us (a big round at once): nine in a row, not three, are a flood."""
OPEN_FOR = 30.0
"""Seconds a failed carrier gets no request of that medium before one probe."""


@dataclass
class Breaker:
    clock: Callable[[], float]
    faults: list[tuple[float, float]] = field(default_factory=list)
    """When each fault of the current run came, and what it weighs."""
    open_until: float = 0.0
    probing: bool = False
    last_fault: str = ""

    def allows(self) -> bool:
        """Whether a request may go: closed, or open past OPEN_FOR with no probe under way
        (this request is then the probe)."""
        if not self.open_until:
            return True
        if self.clock() >= self.open_until and not self.probing:
            self.probing = True
            return True
        return False

    def fault(self, why: str, rate_limited: bool = False) -> None:
        """One more fault (a 429 counts RATE_LIMITED_WEIGHT: only a flood stops a carrier)."""
        now = self.clock()
        self.last_fault = why
        weight = RATE_LIMITED_WEIGHT if rate_limited else 1.0
        self.faults = [(at, w) for at, w in self.faults if now - at <= FAULT_WINDOW] + [(now, weight)]
        if self.probing or sum(w for _, w in self.faults) >= FAULTS_IN_A_ROW:
            self.open_until, self.probing = now + OPEN_FOR, False

    def release(self) -> None:
        """The request that was the probe told nothing of the carrier's health (refused for
        its number or our settings, cancelled): the next request probes again."""
        self.probing = False

    def success(self) -> None:
        self.faults.clear()
        self.open_until, self.probing = 0.0, False

    @property
    def is_open(self) -> bool:
        return bool(self.open_until)


class CarrierHealth:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._breakers: dict[tuple[str, Medium], Breaker] = {}

    def of(self, carrier: str, medium: Medium) -> Breaker:
        key = (carrier, medium)
        if key not in self._breakers:
            self._breakers[key] = Breaker(self._clock)
        return self._breakers[key]
