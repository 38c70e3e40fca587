"""What pages read, a run's view or the definitions, or the page that says why it cannot be had."""

from __future__ import annotations

from aiohttp import web
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from config import Settings
from domain.errors import InvalidDefinition
from domain.run_view import RunView
from procedures.definitions import Definitions, load_definitions
from watch import NoWorker, Refused, read_view


async def view_for_page(client: Client, workflow_id: str) -> RunView:
    try:
        return await read_view(client, workflow_id)
    except NoWorker as exc:
        raise web.HTTPServiceUnavailable(text=str(exc)) from exc
    except Refused as exc:
        raise web.HTTPGone(text=str(exc)) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise web.HTTPNotFound(text=f"There is no run {workflow_id!r}.") from exc
        raise web.HTTPServiceUnavailable(text=f"Temporal is not answering ({exc.status.name}).") from exc


def definitions_for_page(settings: Settings) -> Definitions:
    """Read again for every page: a definition merged a minute ago is the one launched."""
    try:
        return load_definitions(settings.definitions_dir)
    except InvalidDefinition as exc:
        raise web.HTTPInternalServerError(
            text="The procedure definitions cannot be used until they are fixed: " + "; ".join(exc.problems)
        ) from exc
