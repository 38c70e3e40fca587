"""What pages read, a run's summary, a page of its people or everyone, or the definitions, or the
page that says why it cannot be had.

A page reads the run's summary (its own view: steps, batches, the people of its bridge steps),
never the whole roster merged at once: a batch's people are read a page at a time
(`roster_pages`), so a run warning 50,000 costs a page what it shows."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

from aiohttp import web
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from config import Settings
from domain.errors import InvalidDefinition
from domain.run_view import PeoplePage, PeopleQuery, PersonView, RunView
from procedures.definitions import Definitions, load_definitions
from roster_pages import every_person, read_page
from watch import NoWorker, Refused, read_view


async def summary_for_page(client: Client, workflow_id: str) -> RunView:
    try:
        return await read_view(client, workflow_id, with_batches=False)
    except NoWorker as exc:
        raise web.HTTPServiceUnavailable(text=str(exc)) from exc
    except Refused as exc:
        raise web.HTTPGone(text=str(exc)) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise web.HTTPNotFound(text=f"There is no run {workflow_id!r}.") from exc
        raise web.HTTPServiceUnavailable(text=f"Temporal is not answering ({exc.status.name}).") from exc


@contextlib.contextmanager
def batches_answering() -> Iterator[None]:
    """A batch that cannot answer right now is a page saying so (503), not a traceback."""
    try:
        yield
    except NoWorker as exc:
        raise web.HTTPServiceUnavailable(text=str(exc)) from exc
    except RPCError as exc:
        raise web.HTTPServiceUnavailable(text=f"Temporal is not answering ({exc.status.name}).") from exc


async def page_for_page(client: Client, summary: RunView, query: PeopleQuery) -> PeoplePage:
    """One page of the run's people, from the batches it covers."""
    with batches_answering():
        return await read_page(client, summary, query)


async def everyone_for_page(client: Client, summary: RunView) -> list[PersonView]:
    """Everyone, for a page that lists them all: only for runs of a size a page can hold."""
    with batches_answering():
        return [person async for person in every_person(client, summary)]


def batch_people(client: Client, summary: RunView) -> AsyncIterator[PersonView]:
    """The people the run's batches hold, in roster order, a batch at a time (the run's own
    people are in its summary already)."""
    return every_person(client, summary.model_copy(update={"people": []}))


def definitions_for_page(settings: Settings) -> Definitions:
    """Read again for every page: a definition merged a minute ago is the one launched."""
    try:
        return load_definitions(settings.definitions_dir)
    except InvalidDefinition as exc:
        raise web.HTTPInternalServerError(
            text="The procedure definitions cannot be used until they are fixed: " + "; ".join(exc.problems)
        ) from exc
