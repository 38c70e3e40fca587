"""A run's report: a printable page, and the same as CSV (one row per event) and JSON (the run's
whole view, as `starter.py status --json` prints it)."""

from __future__ import annotations

from aiohttp import web

from console.pages import render
from console.reading import view_for_page
from console.report import report_csv, report_rows
from console.state import console_of

routes = web.RouteTableDef()


def attachment(workflow_id: str, extension: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{workflow_id}-report.{extension}"'}


@routes.get("/runs/{id}/report")
async def report(request: web.Request) -> web.StreamResponse:
    view = await view_for_page(console_of(request).client, request.match_info["id"])
    return render(request, "report.html", view=view, rows=report_rows(view))


@routes.get("/runs/{id}/report.csv")
async def report_as_csv(request: web.Request) -> web.StreamResponse:
    view = await view_for_page(console_of(request).client, request.match_info["id"])
    return web.Response(
        text=report_csv(view), content_type="text/csv", headers=attachment(view.workflow_id, "csv")
    )


@routes.get("/runs/{id}/report.json")
async def report_as_json(request: web.Request) -> web.StreamResponse:
    view = await view_for_page(console_of(request).client, request.match_info["id"])
    return web.Response(
        text=view.model_dump_json(indent=2),
        content_type="application/json",
        headers=attachment(view.workflow_id, "json"),
    )
