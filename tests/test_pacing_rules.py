"""The pacer's rules (`domain.pacing`), which the pacer workflow and the launch's capacity check
both follow: runs asking one after another share a burst under way instead of each waiting for
a burst of its own, and still no second at the carrier holds more calls than the account allows."""

from __future__ import annotations

import heapq
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
    first = bursts.take(at(0), 10, 500, FAR, by_windows=True)
    later = bursts.take(at(0.4), 10, 500, FAR, by_windows=True)
    assert first == [at(0)] * 10, "the first run's calls go at once"
    assert later == [at(0.4)] * 10, "the next run's too, in the same burst, not MIN_WAIT later"


def test_pacers_recorded_before_keep_their_rule() -> None:
    bursts = Bursts()
    bursts.take(at(0), 10, 500, FAR)
    later = bursts.take(at(0.4), 10, 500, FAR)
    assert later == [at(0.4) + MIN_WAIT] * 10, "a burst of its own, far enough for a timer"


def test_a_full_burst_sends_the_rest_to_the_next_one_after_its_last_call() -> None:
    bursts = Bursts()
    bursts.take(at(0), 3, 5, FAR, by_windows=True)
    slots = bursts.take(at(0.5), 4, 5, FAR, by_windows=True)
    assert slots[:2] == [at(0.5)] * 2, "the burst under way had room for two"
    next_burst = at(0.5) + AT_ONCE_LAG + timedelta(seconds=1.1)
    assert slots[2:] == [next_burst] * 2, "1.1 s after its last call reached the carrier"


def test_a_burst_still_to_come_takes_calls_at_once_an_interval_after_the_one_before() -> None:
    bursts = Bursts()
    bursts.take(at(0), 5, 5, FAR, by_windows=True)  # full, at once: reaches the carrier by 0.3 s
    assert bursts.take(at(0.2), 1, 5, FAR, by_windows=True) == [at(1.6)], "a timer burst, MIN_WAIT ahead"
    assert bursts.take(at(1.5), 2, 5, FAR, by_windows=True) == [at(1.5)] * 2, (
        "1.1 s after the full burst: at once, counted in the coming one, not in a burst after it"
    )


def test_at_one_call_per_second_nobody_joins() -> None:
    bursts = Bursts()
    slots = [bursts.take(at(n * 0.3), 1, 1, FAR, by_windows=True)[0] for n in range(4)]
    assert all(a and b and b - a >= timedelta(seconds=1.1) for a, b in itertools.pairwise(slots)), slots


def test_no_second_at_the_carrier_ever_holds_more_than_the_rate() -> None:
    """Random runs asking at random moments; a call placed at once reaches the carrier up to
    AT_ONCE_LAG after its slot, one a timer waits for at its slot: counted wherever it lands."""
    rate = 5
    for seed in range(100):
        rng = random.Random(seed)
        bursts, now, landings = Bursts(), 0.0, []
        for _ in range(40):
            now += rng.uniform(0, 0.5)
            for slot in bursts.take(at(now), rng.randint(1, 6), rate, FAR, by_windows=True):
                assert slot is not None
                lag = AT_ONCE_LAG.total_seconds() if slot == at(now) else 0.0
                start = (slot - T0).total_seconds()
                landings.append((start, start + lag))
        for window in {moment for landing in landings for moment in landing}:  # where a busiest second starts
            inside = [call for call in landings if call[0] < window + 1 and call[1] >= window]
            assert len(inside) <= rate, (seed, window, inside)


def test_a_call_whose_timer_fired_late_goes_at_once_only_if_no_window_around_it_is_full() -> None:
    bursts = Bursts()
    assert bursts.take(at(0), 5, 5, FAR, by_windows=True) == [at(0)] * 5
    assert bursts.take(at(0.2), 2, 5, FAR, by_windows=True) == [at(1.6)] * 2
    assert bursts.take_late(at(1.9), 1, 5, FAR, missed=at(1.6)) == [at(1.9)], "room around it: at once"

    one = Bursts()
    one.take(at(0), 1, 1, FAR, by_windows=True)
    assert one.take(at(0.1), 1, 1, FAR, by_windows=True) == [at(1.5)]
    assert one.take(at(0.2), 1, 1, FAR, by_windows=True) == [at(2.6)]
    assert one.take_late(at(1.7), 1, 1, FAR, missed=at(1.5)) == [at(3.7)], (
        "at once it would share a second with the call at 2.6: a fresh slot after that one"
    )


def test_no_second_at_the_carrier_holds_more_than_the_rate_even_with_timers_firing_late() -> None:
    """As above, with a third of the timers firing 0.1 to 0.8 s late, as on a loaded server: a
    late call goes at once if its burst allows it, else waits for a fresh slot."""
    rate, lag = 5, AT_ONCE_LAG.total_seconds()
    for seed in range(100):
        rng = random.Random(seed)
        bursts, landings = Bursts(), []
        events: list[tuple[float, int, float | None]] = []  # (when, order, the slot it missed)
        now = 0.0
        for n in range(30):
            now += rng.uniform(0, 0.5)
            heapq.heappush(events, (now, n, None))
        order = 1000
        while events:
            when, _, missed = heapq.heappop(events)
            count = 1 if missed is not None else rng.randint(1, 6)
            given = (
                bursts.take_late(at(when), 1, rate, FAR, missed=at(missed))
                if missed is not None
                else bursts.take(at(when), count, rate, FAR, by_windows=True)
            )
            for slot in given:
                assert slot is not None
                start = (slot - T0).total_seconds()
                if slot == at(when):
                    landings.append((start, start + lag))
                elif rng.random() < 1 / 3:
                    order += 1
                    heapq.heappush(events, (start + rng.uniform(0.1, 0.8), order, start))
                else:
                    landings.append((start, start))
        for window in {moment for landing in landings for moment in landing}:
            inside = [call for call in landings if call[0] < window + 1 and call[1] >= window]
            assert len(inside) <= rate, (seed, window, inside)
