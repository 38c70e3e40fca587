"""The pacer's rules (`domain.pacing`), which the pacer workflow and the launch's capacity check
both follow: runs asking one after another share a burst under way instead of each waiting for
a burst of its own, and still no second at the carrier holds more calls than the account allows."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

from domain.pacing import AT_ONCE_LAG, MIN_WAIT, Bursts

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
FAR = T0 + timedelta(hours=1)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_runs_asking_one_after_another_share_the_burst_under_way() -> None:
    bursts = Bursts()
    first = bursts.take(at(0), 10, 500, FAR, join_started=True)
    later = bursts.take(at(0.4), 10, 500, FAR, join_started=True)
    assert first == [at(0)] * 10, "the first run's calls go at once"
    assert later == [at(0.4)] * 10, "the next run's too, in the same burst, not MIN_WAIT later"


def test_pacers_recorded_before_keep_their_rule() -> None:
    bursts = Bursts()
    bursts.take(at(0), 10, 500, FAR)
    later = bursts.take(at(0.4), 10, 500, FAR)
    assert later == [at(0.4) + MIN_WAIT] * 10, "a burst of its own, far enough for a timer"


def test_a_full_burst_sends_the_rest_to_the_next_one_after_its_last_call() -> None:
    bursts = Bursts()
    bursts.take(at(0), 3, 5, FAR, join_started=True)
    slots = bursts.take(at(0.5), 4, 5, FAR, join_started=True)
    assert slots[:2] == [at(0.5)] * 2, "the burst under way had room for two"
    next_burst = at(0.5) + AT_ONCE_LAG + timedelta(seconds=1.1)
    assert slots[2:] == [next_burst] * 2, "1.1 s after its last call reached the carrier"


def test_at_one_call_per_second_nobody_joins() -> None:
    bursts = Bursts()
    slots = [bursts.take(at(n * 0.3), 1, 1, FAR, join_started=True)[0] for n in range(4)]
    assert all(a and b and b - a >= timedelta(seconds=1.1) for a, b in itertools.pairwise(slots)), slots


def test_no_second_at_the_carrier_ever_holds_more_than_the_rate() -> None:
    """Random runs asking at random moments; a call placed at once reaches the carrier up to
    AT_ONCE_LAG after its slot, one a timer waits for at its slot: counted wherever it lands."""
    rate = 5
    for seed in range(200):
        rng = random.Random(seed)
        bursts, now, landings = Bursts(), 0.0, []
        for _ in range(40):
            now += rng.uniform(0, 0.5)
            for slot in bursts.take(at(now), rng.randint(1, 6), rate, FAR, join_started=True):
                assert slot is not None
                lag = AT_ONCE_LAG.total_seconds() if slot == at(now) else 0.0
                start = (slot - T0).total_seconds()
                landings.append((start, start + lag))
        for window in {moment for landing in landings for moment in landing}:  # where a busiest second starts
            inside = [call for call in landings if call[0] < window + 1 and call[1] >= window]
            assert len(inside) <= rate, (seed, window, inside)
