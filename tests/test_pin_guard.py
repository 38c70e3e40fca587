"""The PIN guard counts wrong PINs per caller over a sliding ten minutes (a fake clock here)."""

from __future__ import annotations

from callbacks.pin_guard import WINDOW_SECONDS, PinGuard


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_limit_is_per_caller_and_forgets_after_ten_minutes() -> None:
    clock = Clock()
    guard = PinGuard(limit=3, clock=clock)
    for _ in range(2):
        guard.failed("+41797770001")
        clock.now += 60
    assert not guard.refuses("+41797770001"), "two wrong PINs: still allowed"
    guard.failed("+41797770001")
    assert guard.refuses("+41797770001"), "the third wrong PIN within ten minutes closes the line"
    assert not guard.refuses("+41797770002"), "another caller is not affected"

    clock.now += WINDOW_SECONDS - 120  # the first failure is now ten minutes old
    assert not guard.refuses("+41797770001"), "the oldest failure has expired: two left in the window"
    guard.failed("+41797770001")
    assert guard.refuses("+41797770001")
    clock.now += WINDOW_SECONDS
    assert not guard.refuses("+41797770001")
