"""A confirmed launch starts one run, whatever the browser does.

Each confirmation form carries a one-time key. A second submit of the same key (a double
click, a reload, a flaky phone connection resending the form) gets the first launch's result
instead of starting a second conference; a launch goes on even if the browser that asked for
it disconnects. A refused launch forgets its key, so the corrected form can be sent again.
Keys live in memory: a console restart forgets them, as it forgets nothing else that matters.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from launching import Launched

KEEP = 500


@dataclass(frozen=True)
class Done:
    launched: Launched
    title: str


class Launches:
    def __init__(self) -> None:
        self._tasks: OrderedDict[tuple[str, str], asyncio.Task[Done]] = OrderedDict()

    @staticmethod
    def new_key() -> str:
        return secrets.token_urlsafe(16)

    async def once(self, user: str, key: str, start: Callable[[], Coroutine[Any, Any, Done]]) -> Done:
        task = self._tasks.get((user, key))
        if task is None:
            task = asyncio.create_task(start())
            self._tasks[(user, key)] = task
            while len(self._tasks) > KEEP:
                self._tasks.popitem(last=False)
        try:
            return await asyncio.shield(task)
        except Exception:
            if self._tasks.get((user, key)) is task:
                del self._tasks[(user, key)]
            raise

    def done(self, user: str, key: str) -> Done | None:
        task = self._tasks.get((user, key))
        if task is None or not task.done() or task.cancelled() or task.exception() is not None:
            return None
        return task.result()
