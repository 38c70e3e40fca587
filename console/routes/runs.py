"""The runs list, a run's live page with its stream of updates, and what a launcher does to a
running run: end it, mute, unmute or remove someone in the bridge, call someone again now.

Each action is a Temporal update recorded by the run with the signed-in account's name and the
channel `web`; a refusal (the run's validator, or a run already over) comes back as a message
on the page. Ending and removing someone ask first: a page to confirm, whose form says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, cast, get_args
from urllib.parse import quote

from aiohttp import web
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from console.access import launchers_only, signed_in
from console.live import sections, stream
from console.pages import render
from console.reading import definitions_for_page, page_for_page, summary_for_page
from console.roster import Roster, RosterQuery
from console.runs import RunFilter, list_runs
from console.sessions import session_of
from console.state import console_of
from domain.events import EndRequest, Moderation, ModeratorAction
from workflows.procedure_run import ProcedureRun

routes = web.RouteTableDef()
ACTION_TIMEOUT = 15.0
"""An action waits for the carrier (mute, remove); past this the page says it is still going."""


@routes.get("/runs")
async def runs(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    query = request.query
    try:
        run_filter = RunFilter.read(
            query.get("state", ""), query.get("procedure", "").strip(), query.get("launched_by", "").strip()
        )
    except ValueError as exc:
        return render(request, "runs.html", status=400, rows=[], run_filter=RunFilter(), error=str(exc),
                      procedures=[])  # fmt: skip
    try:
        rows = await list_runs(console.client, run_filter)
    except RPCError as exc:
        raise web.HTTPServiceUnavailable(
            text=f"Temporal is not answering ({exc.status.name}): try again."
        ) from exc
    procedures = sorted(definitions_for_page(console.settings).procedures)
    return render(request, "runs.html", rows=rows, run_filter=run_filter, error=None, procedures=procedures)


def live_context(request: web.Request) -> dict[str, Any]:
    return {"can_act": signed_in(request).can_launch, "csrf": session_of(request).csrf}


def roster_query(request: web.Request) -> RosterQuery:
    """The page of people asked for (`?state=…&page=…`); 400 saying what is wrong."""
    try:
        return RosterQuery.read(request.query)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"This page of people cannot be shown: {exc}.") from exc


@routes.get("/runs/{id}")
async def run_page(request: web.Request) -> web.StreamResponse:
    query = roster_query(request)
    client = console_of(request).client
    view = await summary_for_page(client, request.match_info["id"])
    roster = Roster.of(view, query, await page_for_page(client, view, query.people))
    return render(request, "run.html", view=view, roster=roster,
                  sections=sections(view, roster, **live_context(request)))  # fmt: skip


@routes.get("/runs/{id}/live")
async def live(request: web.Request) -> web.StreamResponse:
    query = roster_query(request)
    console = console_of(request)
    return await stream(
        request, console.client, request.match_info["id"], query, console.closing, **live_context(request)
    )


@routes.get("/runs/{id}/end")
@launchers_only
async def end_page(request: web.Request) -> web.StreamResponse:
    view = await summary_for_page(console_of(request).client, request.match_info["id"])
    return render(request, "end.html", view=view)


@routes.post("/runs/{id}/end")
@launchers_only
async def end(request: web.Request) -> web.StreamResponse:
    workflow_id = request.match_info["id"]
    form = await request.post()
    reason = str(form.get("reason") or "").strip() or "ended from the console"
    handle = console_of(request).client.get_workflow_handle_for(ProcedureRun.run, workflow_id)
    ending = handle.execute_update(
        ProcedureRun.end, EndRequest(reason=reason[:200], by=signed_in(request).name, channel="web")
    )
    session_of(request).say(await outcome(ending, "Ended."))
    raise web.HTTPSeeOther(f"/runs/{workflow_id}")


@routes.post("/runs/{id}/moderate")
@launchers_only
async def moderate(request: web.Request) -> web.StreamResponse:
    workflow_id = request.match_info["id"]
    form = await request.post()
    kind, person = str(form.get("action", "")), str(form.get("person", ""))
    if kind not in get_args(Moderation) or not person:
        raise web.HTTPBadRequest(text="Unknown action.")
    back = RosterQuery.kept(str(form.get("roster", "")))
    if kind == "remove" and form.get("confirm") != "yes":
        return await remove_page(request, workflow_id, person, back)
    action = ModeratorAction(
        kind=cast(Moderation, kind), person_id=person, by=signed_in(request).name, channel="web"
    )
    handle = console_of(request).client.get_workflow_handle_for(ProcedureRun.run, workflow_id)
    session_of(request).say(await outcome(handle.execute_update(ProcedureRun.moderate, action), None))
    raise web.HTTPSeeOther(f"/runs/{workflow_id}{back.suffix}#person-{quote(person)}")


async def remove_page(
    request: web.Request, workflow_id: str, person_id: str, back: RosterQuery
) -> web.StreamResponse:
    """The question before a removal; its form sends the same action with `confirm=yes`. Only
    the run's own people (those of its bridge steps) are in a bridge: its summary holds them."""
    view = await summary_for_page(console_of(request).client, workflow_id)
    person = next((p for p in view.people if p.id == person_id), None)
    if person is None:
        raise web.HTTPNotFound(text=f"No one with id {person_id!r} in this run.")
    return render(request, "remove.html", view=view, person=person, back=back)


async def outcome(update: Awaitable[Any], done: str | None) -> str:
    """What an update did, or why not, in words for the page."""
    try:
        result = await asyncio.wait_for(update, ACTION_TIMEOUT)
    except WorkflowUpdateFailedError as exc:
        return f"Not done: {getattr(exc.cause, 'message', None) or exc.cause or exc}."
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return "Not done: this run is already over."
        return f"Not done: Temporal said {exc.status.name} ({exc.message})."
    except TimeoutError:
        return "Still in progress: the page shows it when it is done."
    return done or f"Done: {result}."
