"""The live run page's updates, as server-sent events: the page's sections rendered again from
the run's latest summary and the roster page the browser is on, and only those that changed
sent, as HTML the page swaps in.

Each open page polls the run's summary (its own view, without its batches' people) twice a
second, so a change shows within a second. The page of people it shows comes from the summary
when the run has no batches; otherwise it is read again at most once a second, asking only the
batches it covers (a page filtered by state first asks every batch its count, so at most 25
batches a second). The sections are the same templates the page itself was rendered with:
there is one way to show a person's row, not one on the server and another in the script.
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
from console.roster import Roster, RosterQuery
from domain.run_view import PeoplePage, RunView
from roster_pages import read_page
from watch import NoWorker, Refused, read_view

POLL_SECONDS = 0.5
PAGE_SECONDS = 1.0
"""A page of batches' people is read again at most this often."""
COUNTS_PER_SECOND = 25
"""A page filtered by state asks every batch for its count first: at most this many batches a
second per open page (250 batches, a 50,000-person step: every 10 s)."""
KEEPALIVE_SECONDS = 15.0
SECTIONS = {
    "run-status": "run/_status.html",
    "run-steps": "run/_steps.html",
    "run-people": "run/_people.html",
    "run-pins": "run/_pins.html",
    "run-moderation": "run/_moderation.html",
}
"""Each live section of the run page: its element id and its template."""


def page_seconds(view: RunView, query: RosterQuery) -> float:
    """How long a page of batches' people is shown before it is read again."""
    return PAGE_SECONDS if query.state is None else max(PAGE_SECONDS, len(view.batches) / COUNTS_PER_SECOND)


def sections(view: RunView, roster: Roster | None, **context: Any) -> dict[str, str]:
    """Every section; without a roster (its page could not be read yet), all but the people."""
    return {
        element: fragment(template, view=view, roster=roster, **context)
        for element, template in SECTIONS.items()
        if roster is not None or element != "run-people"
    }


async def read_or_notice(client: Client, workflow_id: str) -> tuple[RunView | None, str, bool]:
    """The summary, or why there is none right now, and whether that is final."""
    try:
        return await read_view(client, workflow_id, with_batches=False), "", False
    except NoWorker as exc:
        return None, str(exc), False
    except Refused as exc:
        return None, str(exc), True
    except RPCError as exc:
        return None, f"Temporal is not answering ({exc.status.name}); retrying.", False


async def page_or_notice(
    client: Client, summary: RunView, query: RosterQuery
) -> tuple[PeoplePage | None, str]:
    try:
        return await read_page(client, summary, query.people), ""
    except NoWorker as exc:
        return None, str(exc)
    except RPCError as exc:
        return None, f"Temporal is not answering ({exc.status.name}); retrying."


async def stream(
    request: web.Request,
    client: Client,
    workflow_id: str,
    query: RosterQuery,
    closing: asyncio.Event,
    **context: Any,
) -> web.StreamResponse:
    """Send `update` events until the run has ended (then `ended`) or the browser goes away."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    sent: dict[str, str] = {}
    notice: str | None = None
    page: PeoplePage | None = None
    loop = asyncio.get_running_loop()
    last_write = page_read_at = loop.time()
    try:
        await response.write(b"retry: 1000\n\n")
        while not closing.is_set():
            view, now_notice, final = await read_or_notice(client, workflow_id)
            changed = {}
            if view is not None:
                due = loop.time() - page_read_at >= page_seconds(view, query) or view.state == "ended"
                if page is None or not view.batches or due:
                    fresh, page_notice = await page_or_notice(client, view, query)
                    if fresh is not None:
                        page, page_read_at = fresh, loop.time()
                    now_notice = now_notice or page_notice
                roster = Roster.of(view, query, page) if page is not None else None
                changed = {k: v for k, v in sections(view, roster, **context).items() if sent.get(k) != v}
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
