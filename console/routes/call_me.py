"""Call-me links: a person opens the link from their PIN SMS and the bridge calls them.

The link is signed (`links.py`) and names one run and one person; the run's workflow picks
which of that person's numbers to call, so the link cannot reach any other phone. A forged or
altered link, a run that has ended and a person already in the bridge or being called are
refused, and so is a link that has had its person called `call_me.CALLS_PER_PERSON` times in the
run (the run's workflow counts them, so the limit holds on every console replica). No sign-in:
the link itself is the credential, and the page shows no number.
"""

from __future__ import annotations

from aiohttp import web
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from console.pages import render
from console.state import console_of
from domain import call_me as link_limits
from domain.events import ModeratorAction
from domain.run_view import PersonView, RunView
from links import read_call_me
from watch import NoWorker, Refused, read_view
from workflows.procedure_run import ProcedureRun

routes = web.RouteTableDef()
INVALID = "This link is not valid. Use the link in your SMS exactly as it came, or dial in with the PIN."
OVER = "This conference call has ended."


async def person_of(request: web.Request) -> tuple[RunView, PersonView]:
    """The run and the person the link names, while the run is going; an error page otherwise."""
    console = console_of(request)
    link = read_call_me(console.settings.console_secret, request.match_info["token"])
    if link is None:
        raise web.HTTPNotFound(text=INVALID)
    try:
        view = await read_view(console.client, link.run_id, with_batches=False)  # a link is for a bridge
    except Refused as exc:
        raise web.HTTPGone(text=OVER) from exc
    except NoWorker as exc:
        raise web.HTTPServiceUnavailable(
            text="The conference system is busy: try again in a minute."
        ) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise web.HTTPNotFound(text=INVALID) from exc
        raise web.HTTPServiceUnavailable(
            text="The conference system is not answering: try again soon."
        ) from exc
    person = next((p for p in view.people if p.id == link.person_id and not p.guest), None)
    if person is None:
        raise web.HTTPNotFound(text=INVALID)
    if view.state == "ended":
        raise web.HTTPGone(text=OVER)
    return view, person


def spent(view: RunView, person: PersonView) -> bool:
    return link_limits.calls_made(view.moderation, person.id) >= link_limits.CALLS_PER_PERSON


@routes.get("/call-me/{token}")
async def call_me_page(request: web.Request) -> web.StreamResponse:
    view, person = await person_of(request)
    used_up = spent(view, person)
    refusal = link_limits.SPENT if used_up else None
    return render(request, "call_me.html", person=person, called=False, refusal=refusal, spent=used_up)


@routes.post("/call-me/{token}")
async def call_me(request: web.Request) -> web.StreamResponse:
    view, person = await person_of(request)
    if person.in_conference or person.state in ("calling", "queued"):
        return render(request, "call_me.html", person=person, called=False, refusal=None, spent=False)
    handle = console_of(request).client.get_workflow_handle_for(ProcedureRun.run, view.workflow_id)
    action = ModeratorAction(kind="call_again", person_id=person.id, by=link_limits.LINK, channel="web")
    try:
        await handle.execute_update(ProcedureRun.moderate, action)
    except WorkflowUpdateFailedError as exc:
        refusal = getattr(exc.cause, "message", None) or "the conference refused"
        return render(request, "call_me.html", status=409, person=person, called=False, refusal=refusal,
                      spent=refusal == link_limits.SPENT)  # fmt: skip
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise web.HTTPGone(text=OVER) from exc
        raise
    return render(request, "call_me.html", person=person, called=True, refusal=None, spent=False)
