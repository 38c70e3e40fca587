"""Call-me links: a person opens the link from their PIN SMS and the bridge calls them.

The link is signed (`links.py`) and names one run and one person; the run's workflow picks
which of that person's numbers to call, so the link cannot reach any other phone. A forged or
altered link, a run that has ended and a person already in the bridge or being called are
refused, and so is a link that has had its person called `call_me.CALLS_PER_PERSON` times in the
run (the run's workflow counts them, so the limit holds on every console replica). No sign-in:
the link itself is the credential, and the page shows no number.

The page and its refusals are in the person's language (the run's when they have none); a link
that names no one is answered in the browser's language, if rallycall ships it.
"""

from __future__ import annotations

from aiohttp import web
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from console.pages import browser_language, in_language, render
from console.state import console_of
from domain import call_me as link_limits
from domain.events import ModeratorAction
from domain.run_view import PersonView, RunView
from i18n.catalogues import N_, words
from links import read_call_me
from watch import NoWorker, Refused, read_view
from workflows.procedure_run import ProcedureRun

routes = web.RouteTableDef()
INVALID = N_("This link is not valid. Use the link in your SMS exactly as it came, or dial in with the PIN.")
OVER = N_("This conference call has ended.")
BUSY = N_("The conference system is busy: try again in a minute.")
NOT_ANSWERING = N_("The conference system is not answering: try again soon.")
REFUSED = N_("the conference refused")
TITLES = {
    404: N_("This link cannot be used"),
    410: N_("The conference call is over"),
    503: N_("Please try again"),
}


class LinkRefused(Exception):
    """Why the link cannot be used now, and to whom it is said (None: no one is known yet)."""

    def __init__(self, status: int, message: str, person: PersonView | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.person = person


def language_for(request: web.Request, person: PersonView | None) -> str:
    """The person's language, else the installation's; the browser's when no one is known."""
    installed = console_of(request).settings.language
    if person is None:
        return browser_language(request, installed)
    return person.language or installed


async def person_of(request: web.Request) -> tuple[RunView, PersonView]:
    """The run and the person the link names, while the run is going; LinkRefused otherwise."""
    console = console_of(request)
    link = read_call_me(console.settings.console_secret, request.match_info["token"])
    if link is None:
        raise LinkRefused(404, INVALID)
    try:
        view = await read_view(console.client, link.run_id, with_batches=False)  # a link is for a bridge
    except Refused as exc:
        raise LinkRefused(410, OVER) from exc
    except NoWorker as exc:
        raise LinkRefused(503, BUSY) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise LinkRefused(404, INVALID) from exc
        raise LinkRefused(503, NOT_ANSWERING) from exc
    person = next((p for p in view.people if p.id == link.person_id and not p.guest), None)
    if person is None:
        raise LinkRefused(404, INVALID)
    if view.state == "ended":
        raise LinkRefused(410, OVER, person)
    return view, person


def spent(view: RunView, person: PersonView) -> bool:
    return link_limits.calls_made(view.moderation, person.id) >= link_limits.CALLS_PER_PERSON


def refused_page(request: web.Request, refused: LinkRefused) -> web.Response:
    language = language_for(request, refused.person)
    return render(
        request,
        "error.html",
        status=refused.status,
        **in_language(language),
        title=words(TITLES[refused.status], language),
        message=words(refused.message, language),
    )


def link_page(
    request: web.Request,
    person: PersonView,
    *,
    called: bool = False,
    refusal: str | None = None,
    status: int = 200,
) -> web.Response:
    """The page with its button, or what was done, or why not (`refusal`, in English as the
    run or the route gives it, said here in the person's language where the catalogues have it)."""
    language = language_for(request, person)
    used_up = refusal == link_limits.SPENT
    if used_up:
        refusal = words(link_limits.SPENT_TEXT, language, calls=link_limits.CALLS_PER_PERSON)
    elif refusal:
        refusal = words(refusal, language)
    return render(
        request,
        "call_me.html",
        status=status,
        **in_language(language),
        person=person,
        called=called,
        refusal=refusal,
        spent=used_up,
    )


@routes.get("/call-me/{token}")
async def call_me_page(request: web.Request) -> web.StreamResponse:
    try:
        view, person = await person_of(request)
    except LinkRefused as refused:
        return refused_page(request, refused)
    return link_page(request, person, refusal=link_limits.SPENT if spent(view, person) else None)


@routes.post("/call-me/{token}")
async def call_me(request: web.Request) -> web.StreamResponse:
    try:
        view, person = await person_of(request)
    except LinkRefused as refused:
        return refused_page(request, refused)
    if person.in_conference or person.state in ("calling", "queued"):
        return link_page(request, person)
    handle = console_of(request).client.get_workflow_handle_for(ProcedureRun.run, view.workflow_id)
    action = ModeratorAction(kind="call_again", person_id=person.id, by=link_limits.LINK, channel="web")
    try:
        await handle.execute_update(ProcedureRun.moderate, action)
    except WorkflowUpdateFailedError as exc:
        refusal = getattr(exc.cause, "message", None) or REFUSED
        return link_page(request, person, refusal=refusal, status=409)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return refused_page(request, LinkRefused(410, OVER, person))
        raise
    return link_page(request, person, called=True)
