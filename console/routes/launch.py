"""Launching from the browser: the red button, and every procedure's generated form.

Each goes form, confirmation, launch, then the dial-in number and PIN. The checks and the
launch are `launching.py`'s, the same as the CLI's, with channel `web` and the signed-in
account as the launcher; a refusal comes back as the form, each problem beside its field.

The launcher says which language their texts are written in (the procedure's, unless they
chose another): those texts are spoken by a voice of it, the rest in each person's language.

The confirmation form carries a one-time key, the launch's idempotency key: a second submit
(a double click, a reload, a phone resending the form, the same form sent to another console
replica or after a restart) gets the run the first one started. The console keeps no launch in
memory: the launched page reads the run's dial-in number and PIN from Temporal.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from temporalio.service import RPCError

from console.access import launchers_only, signed_in
from console.forms import FilledForm, Placed, place
from console.pages import render
from console.reading import definitions_for_page
from console.state import ConsoleState, console_of
from domain.call_queue import PRIORITY
from domain.capacity import StepLoad, StepReach, reach, step_loads
from domain.contacts import load_contacts
from domain.errors import InvalidLaunch
from i18n.languages import SHIPPED
from launching import (
    Launched,
    LaunchRequest,
    OverCapacity,
    calls_waiting,
    check_capacity,
    frozen_plan,
    launch,
    prepare,
    red_button,
)
from procedures.definitions import Definitions, ProcedureDefinition

routes = web.RouteTableDef()


@dataclass(frozen=True)
class Choice:
    """A contact as the picker shows it."""

    id: str
    name: str


@dataclass(frozen=True)
class LaunchPage:
    """Where one procedure's form, confirmation and launch live."""

    procedure: ProcedureDefinition
    definitions: Definitions
    red: bool

    @property
    def url(self) -> str:
        return "/red-button" if self.red else f"/procedures/{self.procedure.name}"

    @property
    def template(self) -> str:
        return "red_button.html" if self.red else "procedure.html"

    def texts_in(self, filled: FilledForm, installed: str) -> str:
        """The language the form's texts are in: as chosen, else the procedure's."""
        return filled.text_language or self.procedure.language or installed


def page_for(request: web.Request) -> LaunchPage:
    console = console_of(request)
    definitions = definitions_for_page(console.settings)
    name = request.match_info.get("name") or console.settings.red_button
    procedure = definitions.procedures.get(name)
    if procedure is None:
        raise web.HTTPNotFound(text=f"There is no procedure named {name!r}.")
    return LaunchPage(procedure, definitions, red="name" not in request.match_info)


def contact_choices(console: ConsoleState) -> tuple[list[Choice], list[str]]:
    """The contacts to pick from, by name; or why there are none."""
    try:
        entries = load_contacts(console.settings.contacts_file)
    except InvalidLaunch as exc:
        return [], exc.problems
    choices = [Choice(cid, str(entry.get("name") or cid)) for cid, entry in entries.items()]
    return sorted(choices, key=lambda c: c.name.casefold()), []


def form_page(
    request: web.Request, page: LaunchPage, filled: FilledForm, placed: Placed, status: int = 200
) -> web.Response:
    console = console_of(request)
    contacts, contact_problems = contact_choices(console)
    form = page.procedure.form
    return render(
        request,
        page.template,
        status=status,
        page=page,
        procedure=page.procedure,
        filled=filled,
        placed=Placed(placed.general + contact_problems, placed.by_field),
        contacts=contacts,
        text_field=next((f for f in form if f.kind == "text"), None),
        contacts_field=next((f for f in form if f.kind == "contacts"), None),
        languages=SHIPPED,
        texts_in=page.texts_in(filled, console.settings.language),
    )


def launch_request(
    request: web.Request, page: LaunchPage, filled: FilledForm, key: str | None = None
) -> LaunchRequest:
    """The same request the CLI builds: `red_button` for the red button, the form otherwise."""
    settings = console_of(request).settings
    options: dict[str, Any] = {
        "idempotency_key": key,
        "contacts_file": settings.contacts_file,
        "launched_by": signed_in(request).name,
        "channel": "web",
        "record": filled.record,
        "force": filled.force,
        "text_language": filled.text_language or None,
    }
    schemes = page.definitions.schemes
    if not page.red:
        return LaunchRequest(page.procedure, schemes, filled.fields(), **options)
    text = next((f.name for f in page.procedure.form if f.kind == "text"), None)
    contacts = next((f.name for f in page.procedure.form if f.kind == "contacts"), None)
    destinations = filled.destinations(contacts) if contacts else []
    return red_button(page.procedure, schemes, destinations, filled.text.get(text or "", ""), **options)


NAMES_SHOWN = 100
"""People named on the confirmation page; the rest are counted (a district is 50,000)."""


def confirmation(
    request: web.Request,
    page: LaunchPage,
    filled: FilledForm,
    people: list[str],
    loads: list[StepLoad],
    reaching: list[StepReach] | None = None,
) -> web.Response:
    return render(
        request,
        "confirm.html",
        page=page,
        procedure=page.procedure,
        filled=filled,
        people=people[:NAMES_SHOWN],
        people_count=len(people),
        loads=loads,
        reaching=reaching or [],
        texts_in=page.texts_in(filled, console_of(request).settings.language),
        key=secrets.token_urlsafe(16),
    )


@routes.get("/red-button")
@routes.get("/procedures/{name}")
async def show_form(request: web.Request) -> web.StreamResponse:
    page = page_for(request)
    return form_page(request, page, FilledForm.blank(page.procedure), Placed())


@routes.post("/red-button")
@routes.post("/procedures/{name}")
@launchers_only
async def review(request: web.Request) -> web.StreamResponse:
    """Check everything the launch will check, then ask for confirmation (or show the form
    again: with the problems, or as it was when "change" was pressed)."""
    page = page_for(request)
    form = await request.post()
    filled = FilledForm.read(page.procedure, form)
    if form.get("edit"):
        return form_page(request, page, filled, Placed())
    settings = console_of(request).settings
    try:
        launch = launch_request(request, page, filled)
        pin = "0" * settings.pin_digits if page.procedure.has_conference() else None
        plan = prepare(launch, settings, pin)
    except InvalidLaunch as exc:
        return form_page(request, page, filled, place(page.procedure, filled, exc.problems), status=422)
    ahead = await calls_waiting(console_of(request).client, settings, PRIORITY[plan.steps[0].objective])
    every_step = step_loads(plan, settings.calls_per_second, ahead)
    loads = check_capacity(plan, settings, True, ahead, every_step)
    reaching = reach(plan, every_step, settings.sms_per_second)
    return confirmation(request, page, filled, [person.name for person in plan.people], loads, reaching)


@routes.post("/red-button/launch")
@routes.post("/procedures/{name}/launch")
@launchers_only
async def confirm_launch(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    page = page_for(request)
    form = await request.post()
    key = form.get("key")
    if not isinstance(key, str) or not key:
        raise web.HTTPBadRequest(text="This launch form is incomplete: start again from the form.")
    filled = FilledForm.read(page.procedure, form)
    # shielded: a launch goes on even if the browser that asked for it disconnects
    intent = launch_request(request, page, filled, key)
    started = asyncio.ensure_future(launch(console.client, console.settings, intent))
    try:
        launched = await asyncio.shield(started)
    except OverCapacity as exc:
        return confirmation(request, page, filled, [], exc.loads)
    except InvalidLaunch as exc:
        return form_page(request, page, filled, place(page.procedure, filled, exc.problems), status=422)
    except (RPCError, RuntimeError) as exc:
        problem = f"The launch failed ({exc}). Look in the runs list before trying again."
        return form_page(request, page, filled, Placed([problem]), status=503)
    raise web.HTTPSeeOther(f"/launched/{launched.workflow_id}")


@routes.get("/launched/{id}")
@launchers_only
async def launched(request: web.Request) -> web.StreamResponse:
    """The dial-in number and PIN of a run launched from the console, read from the run's own
    input (any replica, any time after): for the accounts that may launch."""
    console = console_of(request)
    run_id = request.match_info["id"]
    try:
        plan = await frozen_plan(console.client, run_id)
    except RPCError as exc:
        raise web.HTTPServiceUnavailable(text=f"Temporal did not answer ({exc.message}): try again.") from exc
    except ValueError:  # not a run's input: some other workflow's ID
        plan = None
    if plan is None:
        raise web.HTTPNotFound(text="There is no launch with this ID: find it in the runs list.")
    found = Launched(workflow_id=run_id, pin=plan.pin, dial_in_number=plan.dial_in_number)
    return render(request, "launched.html", launched=found, title=plan.title)


@routes.get("/procedures")
async def procedures(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    definitions = definitions_for_page(console.settings)
    return render(
        request,
        "procedures.html",
        procedures=list(definitions.procedures.values()),
        red_button=console.settings.red_button,
    )
