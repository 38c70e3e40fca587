"""Heartbeats that let the server notice a dead worker in seconds: an activity with a heartbeat
timeout is tried again on another worker that soon after its worker died, instead of after its
whole start-to-close timeout."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from temporalio import activity

EVERY = 1.0
"""Seconds between heartbeats while an activity waits on the network: well inside the
heartbeat timeout the workflows set (10 s)."""


@contextlib.asynccontextmanager
async def heartbeating(details: Callable[[], Any] = lambda: None) -> AsyncIterator[None]:
    """Heartbeat `details()` every EVERY seconds while the block runs (what the try has done so
    far, for the next try to read if this worker dies)."""

    async def beat() -> None:
        while True:
            activity.heartbeat(details())
            await asyncio.sleep(EVERY)

    ticker = asyncio.create_task(beat())
    try:
        yield
    finally:
        ticker.cancel()
