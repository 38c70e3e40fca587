"""The live run page's updates, as server-sent events: the page's sections rendered again from
the run's latest view, and only those that changed sent, as HTML the page swaps in.

Each open page polls the run's view twice a second, so a change shows within a second. The
sections are the same templates the page itself was rendered with: there is one way to show a
person's row, not one on the server and another in the script.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web
from temporalio.client import Client
from temporalio.service import RPCError

from console.pages import fragment
from domain.run_view import RunView
from watch import NoWorker, Refused, read_view

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
SECTIONS = {
    "run-status": "run/_status.html",
    "run-steps": "run/_steps.html",
    "run-people": "run/_people.html",
    "run-pins": "run/_pins.html",
    "run-moderation": "run/_moderation.html",
}
"""Each live section of the run page: its element id and its template."""


def sections(view: RunView, **context: Any) -> dict[str, str]:
    return {element: fragment(template, view=view, **context) for element, template in SECTIONS.items()}


async def read_or_notice(client: Client, workflow_id: str) -> tuple[RunView | None, str, bool]:
    """The view, or why there is none right now, and whether that is final."""
    try:
        return await read_view(client, workflow_id), "", False
    except NoWorker as exc:
        return None, str(exc), False
    except Refused as exc:
        return None, str(exc), True
    except RPCError as exc:
        return None, f"Temporal is not answering ({exc.status.name}); retrying.", False


async def stream(
    request: web.Request, client: Client, workflow_id: str, closing: asyncio.Event, **context: Any
) -> web.StreamResponse:
    """Send `update` events until the run has ended (then `ended`) or the browser goes away."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    sent: dict[str, str] = {}
    notice: str | None = None
    loop = asyncio.get_running_loop()
    last_write = loop.time()
    try:
        await response.write(b"retry: 1000\n\n")
        while not closing.is_set():
            view, now_notice, final = await read_or_notice(client, workflow_id)
            changed = {}
            if view is not None:
                changed = {k: v for k, v in sections(view, **context).items() if sent.get(k) != v}
                sent.update(changed)
            if changed or now_notice != notice:
                notice = now_notice
                data = json.dumps({"sections": changed, "notice": notice})
                await response.write(f"event: update\ndata: {data}\n\n".encode())
                last_write = loop.time()
            elif loop.time() - last_write > KEEPALIVE_SECONDS:
                await response.write(b": still here\n\n")
                last_write = loop.time()
            if final or (view is not None and view.state == "ended"):
                await response.write(b"event: ended\ndata: {}\n\n")
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing.wait(), POLL_SECONDS)
    except ConnectionResetError:
        pass
    return response
