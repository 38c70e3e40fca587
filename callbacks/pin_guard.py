"""Slows down PIN guessing: a caller number that keys in too many wrong PINs within ten minutes
is turned away before any conference is asked. Kept in the callback server's memory: each
replica counts on its own."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable

WINDOW_SECONDS = 600.0


class PinGuard:
    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._failures: defaultdict[str, deque[float]] = defaultdict(deque)

    def refuses(self, caller: str) -> bool:
        failures = self._failures[caller]
        horizon = self._clock() - WINDOW_SECONDS
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[caller]
            return False
        return len(failures) >= self.limit

    def failed(self, caller: str) -> None:
        self._failures[caller].append(self._clock())
