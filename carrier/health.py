"""A worker's own view of each carrier's health, for calls and for SMS apart.

Only carrier faults count: a server error, a timeout, a refused connection, a 429. No answer,
busy, an invalid number or our own credentials refused say nothing about the carrier's health.
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
OPEN_FOR = 30.0
"""Seconds a failed carrier gets no request of that medium before one probe."""


@dataclass
class Breaker:
    clock: Callable[[], float]
    faults: list[float] = field(default_factory=list)
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

    def fault(self, why: str) -> None:
        now = self.clock()
        self.last_fault = why
        self.faults = [at for at in self.faults if now - at <= FAULT_WINDOW] + [now]
        if self.probing or len(self.faults) >= FAULTS_IN_A_ROW:
            self.open_until, self.probing = now + OPEN_FOR, False

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
