"""Side effects under way in this worker process, by what they are for. The server starts an
activity's next try when the last one's heartbeats stop coming: usually its worker died, but a
worker too busy to heartbeat in time is still sending. A next try landing in the same process
then waits for what the earlier try is doing, and takes its outcome, instead of calling or
texting or mailing a second time (measured: 100 conferences at once on one worker, a heartbeat
timeout of 5 s, and 490 of 1,000 PIN SMS and 261 emails sent twice without this). Across
processes, the heartbeat details say what a dead try had done."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from temporalio import activity

T = TypeVar("T")
KEPT_FOR = 600.0
"""Seconds an outcome is kept for a later try (longer than any retry's backoff)."""
KEPT_AT_MOST = 50_000


@dataclass
class Work:
    started: float
    attempt: int
    """The try that started it: only a later try does failed work again."""
    future: asyncio.Future[Any]


class InFlight:
    def __init__(self) -> None:
        self._work: OrderedDict[str, Work] = OrderedDict()

    async def once(self, part: str, work: Callable[[], Awaitable[T]], *, finish: bool = False) -> T:
        """`work()` for this part of the running activity, unless a try of it in this process
        did it or is doing it: then that outcome. Failed work is done again only by a later
        try. The work goes on if the try that started it is cancelled; with `finish`, that try
        waits for it and returns its outcome all the same (a call being dialled is ringing)."""
        self._forget_old()
        info = activity.info()
        key = f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}/{part}"
        found = self._work.get(key)
        failed = found is not None and found.future.done() and not _succeeded(found.future)
        if found is None or (failed and found.attempt < info.attempt):
            found = Work(time.monotonic(), info.attempt, asyncio.ensure_future(work()))
            self._work[key] = found
            self._work.move_to_end(key)
        try:
            result: T = await asyncio.shield(found.future)
        except asyncio.CancelledError:
            if not finish or found.future.cancelled():
                raise
            result = await found.future
        return result

    def _forget_old(self) -> None:
        """Oldest first, outcomes kept past KEPT_FOR or beyond KEPT_AT_MOST are dropped; work
        still under way stays. It looks only as far as it drops: called for every message, a
        look at all of them made a 9,000-person step quadratic (the worker's event loop was
        busy copying this table, its workflow tasks took seconds)."""
        now = time.monotonic()
        over = len(self._work) - KEPT_AT_MOST
        dropped: list[str] = []
        for key, work in self._work.items():
            if len(dropped) >= over and now - work.started < KEPT_FOR:
                break
            if work.future.done():
                dropped.append(key)
        for key in dropped:
            del self._work[key]


def _succeeded(future: asyncio.Future[Any]) -> bool:
    return not future.cancelled() and future.exception() is None
