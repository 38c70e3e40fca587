"""A run's report: a printable page, and the same as CSV (one row per event) and JSON (the run's
whole view, as `starter.py status --json` prints it).

The CSV is written as the batches' people are read, at any size. The page lists everyone up to
1,000 people; above, it gives the run's figures, says how many and links to the CSV. The JSON is
built whole up to 1,000 people, and above streams its people in as `status --json` does.
"""

from __future__ import annotations

from aiohttp import web

from console.pages import render
from console.reading import batch_people, batches_answering, everyone_for_page, summary_for_page
from console.report import LISTED, report_csv_parts, report_rows_with
from console.roster import everyone
from console.state import console_of
from console.streaming import stream_out
from rendering.json_stream import view_json
from roster_pages import every_person

routes = web.RouteTableDef()


def attachment(workflow_id: str, extension: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{workflow_id}-report.{extension}"'}


@routes.get("/runs/{id}/report")
async def report(request: web.Request) -> web.StreamResponse:
    client = console_of(request).client
    summary = await summary_for_page(client, request.match_info["id"])
    count = everyone(summary)
    if count > LISTED:
        return render(request, "report.html", view=summary, everyone=count, people=None, rows=None)
    with batches_answering():
        batch = [person async for person in batch_people(client, summary)]
    if summary.batches_list_their_people:
        people = summary.people + batch
    else:  # a run of 0.1.0: its own rows hold everyone, the batches' merged into them
        people = await everyone_for_page(client, summary)
    rows = report_rows_with(summary, batch)
    return render(request, "report.html", view=summary, everyone=count, people=people, rows=rows)


@routes.get("/runs/{id}/report.csv")
async def report_as_csv(request: web.Request) -> web.StreamResponse:
    client = console_of(request).client
    summary = await summary_for_page(client, request.match_info["id"])
    parts = report_csv_parts(summary, batch_people(client, summary))
    return await stream_out(request, parts, "text/csv", attachment(summary.workflow_id, "csv"))


@routes.get("/runs/{id}/report.json")
async def report_as_json(request: web.Request) -> web.StreamResponse:
    client = console_of(request).client
    summary = await summary_for_page(client, request.match_info["id"])
    headers = attachment(summary.workflow_id, "json")
    if everyone(summary) > LISTED:
        parts = view_json(summary, every_person(client, summary), indent=2)
        return await stream_out(request, parts, "application/json", headers)
    whole = summary.model_copy(update={"people": await everyone_for_page(client, summary)})
    return web.Response(
        text=whole.model_dump_json(indent=2), content_type="application/json", headers=headers
    )
