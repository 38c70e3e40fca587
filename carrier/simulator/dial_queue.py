"""The account's outbound queues, as Twilio keeps them: calls start at most `calls_per_second`
(the account's CPS); a call created faster is accepted at once, waits `queued`, and its status
callbacks report how long in `QueueTime` (milliseconds). SMS likewise, at the account's SMS
rate. So what the carrier dialled or sent, and when, is in the journal (`queue_ms`) even when
requests reach its API in bursts."""

from __future__ import annotations

import asyncio


class DialQueue:
    def __init__(self, calls_per_second: float | None) -> None:
        """`calls_per_second`: the rate of whatever this queue holds (calls, or SMS)."""
        self._interval = 1 / calls_per_second if calls_per_second else 0.0
        self._next_start = 0.0

    def take_turn(self) -> float:
        """Seconds the call created now waits before it is dialled; its turn is kept."""
        now = asyncio.get_running_loop().time()
        start = max(now, self._next_start)
        self._next_start = start + self._interval
        return start - now
