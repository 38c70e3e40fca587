"""The console's HTTP API for the CLI on a launcher's laptop: launch, read and end runs with a
personal token (`Authorization: Bearer …`, created and revoked with `python -m console users`).

The laptop holds that token and nothing else: no encryption key, no PIN secret, no Temporal
access. The console checks the token's account and role exactly as it checks a browser's
session (refusals in JSON: `{"error", "message"}`), launches through the same `launching.py`
(channel `cli`, the account as the launcher, the console's own contacts and definitions) and
answers in the CLI's `--json` shapes.

    POST /api/launches          {"procedure"?, "fields"?, "to"?, "welcome"?, "record"?, "force"?,
                                 "idempotency_key"?}: 201 with the launch, 200 when the key had
                                 already launched it, 422 refused (problems), 409 over capacity
    GET  /api/runs/{id}         the run's view (`status --json`), everyone's rows streamed in;
                                with `offset`, `limit` (at most 1,000) or `state`: that page of
                                people, with `people_offset` and `people_total`; 400 bad values
    POST /api/runs/{id}/end     {"reason"?}: the view once the run has ended
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from console.access import launchers_only, signed_in
from console.reading import definitions_for_page, page_for_page, summary_for_page
from console.roster import api_people_query
from console.state import console_of
from console.streaming import stream_out
from domain.errors import InvalidLaunch
from domain.events import EndRequest
from launching import LaunchRequest, OverCapacity, launch, red_button
from rendering.json_stream import view_json
from roster_pages import every_person
from watch import NoWorker, view_once_ended
from workflows.procedure_run import ProcedureRun

routes = web.RouteTableDef()


class LaunchBody(BaseModel):
    """What `starter.py conference` and `procedure launch` send."""

    model_config = ConfigDict(extra="forbid")

    procedure: str | None = None
    """None: the red button (its contacts field from `to`, its text field from `welcome`)."""
    fields: dict[str, str] = Field(default_factory=dict)
    to: list[str] = Field(default_factory=list)
    welcome: str = ""
    record: bool | None = None
    force: bool = False
    idempotency_key: str | None = None
    text_language: str | None = None
    """The language the texts are written in (`fr`): they are spoken in it."""


def as_json(data: Any) -> str:
    return json.dumps(data, default=str)  # durations as the CLI's --json writes them


def refusal(status: type[web.HTTPException], error: str, **details: Any) -> web.HTTPException:
    return status(text=as_json({"error": error, **details}), content_type="application/json")


@routes.post("/api/launches")
@launchers_only
async def api_launch(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    try:
        body = LaunchBody.model_validate(await request.json())
    except (ValueError, ValidationError) as exc:
        raise refusal(web.HTTPBadRequest, "bad_request", message=str(exc)) from exc
    definitions = definitions_for_page(console.settings)
    options: dict[str, Any] = {
        "contacts_file": console.settings.contacts_file,
        "launched_by": signed_in(request).name,
        "channel": "cli",
        "record": body.record,
        "force": body.force,
        "idempotency_key": body.idempotency_key,
        "text_language": body.text_language,
    }
    try:
        if body.procedure is None:
            if not body.to:
                raise InvalidLaunch(["no destination given (use --to with a contact id or an E.164 number)"])
            red = definitions.procedure(console.settings.red_button)
            intent = red_button(red, definitions.schemes, body.to, body.welcome, **options)
        else:
            procedure = definitions.procedure(body.procedure)
            intent = LaunchRequest(procedure, definitions.schemes, body.fields, **options)
        launched = await launch(console.client, console.settings, intent)
    except OverCapacity as exc:
        raise refusal(web.HTTPConflict, "over_capacity", message=str(exc),
                      steps=[asdict(load) for load in exc.loads]) from exc  # fmt: skip
    except InvalidLaunch as exc:
        raise refusal(web.HTTPUnprocessableEntity, "invalid_launch", problems=exc.problems) from exc
    answer = {
        "workflow_id": launched.workflow_id,
        "pin": launched.pin,
        "dial_in_number": launched.dial_in_number,
        "title": intent.procedure.title,
        "over_capacity": [asdict(load) for load in launched.over_capacity],
        "warnings": [load.describe() for load in launched.over_capacity],
        "already_launched": launched.already,
        "reach": [step.as_json() for step in launched.reach],
    }
    return web.json_response(answer, status=200 if launched.already else 201, dumps=as_json)


@routes.get("/api/runs/{id}")
async def api_status(request: web.Request) -> web.StreamResponse:
    """The run's view with everyone, streamed a batch at a time; or one page of its people."""
    try:
        query = api_people_query(request.query)
    except ValueError as exc:
        raise refusal(web.HTTPBadRequest, "bad_request", message=str(exc)) from exc
    client = console_of(request).client
    summary = await summary_for_page(client, request.match_info["id"])
    if query is None:
        everyone = view_json(summary, every_person(client, summary))
        return await stream_out(request, everyone, "application/json")
    page = await page_for_page(client, summary, query)
    answer = summary.model_dump(mode="json", exclude={"people"}) | {
        "people": [person.model_dump(mode="json") for person in page.people],
        "people_offset": query.offset,
        "people_total": page.total,
    }
    return web.json_response(answer, dumps=as_json)


@routes.post("/api/runs/{id}/end")
@launchers_only
async def api_end(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    workflow_id = request.match_info["id"]
    body = await request.json() if request.can_read_body else {}
    reason = str(body.get("reason") or "ended by the launcher")[:200] if isinstance(body, dict) else ""
    handle = console.client.get_workflow_handle_for(ProcedureRun.run, workflow_id)
    try:
        await handle.execute_update(
            ProcedureRun.end, EndRequest(reason=reason, by=signed_in(request).name, channel="cli")
        )
        view = await view_once_ended(console.client, workflow_id)
    except WorkflowUpdateFailedError as exc:
        message = getattr(exc.cause, "message", None) or str(exc.cause or exc)
        raise refusal(web.HTTPConflict, "refused", message=message) from exc
    except NoWorker as exc:
        raise refusal(web.HTTPServiceUnavailable, "no_worker", message=str(exc)) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            over = "conference not found or already over"
            raise refusal(web.HTTPNotFound, "not_found", message=over) from exc
        raise
    return web.Response(text=view.model_dump_json(), content_type="application/json")
