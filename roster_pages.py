"""A run's roster page by page, at any size. The run lists the people of its bridge steps (at
most 250); each batch the people of its part of a step without a bridge, 200 at most. A page
asks only the batches it covers, by their sizes in the run's summary; a page filtered by state
first asks every batch how many it holds in that state (a small answer each). Rows come in
roster order: the run's own people, then each batch's, so someone in a bridge step and in a
step without one has a row in each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from temporalio.client import Client, WorkflowQueryFailedError

from domain.run_view import PeoplePage, PeopleQuery, PersonState, PersonView, RunView, page_of
from watch import QUERY_TIMEOUT, asked_of_batch, batch_view, with_batch_people
from workflows.step_batch import StepBatch

QUERIES_AT_ONCE = 20
"""Batches asked at once for their counts: a busy worker answers the rest a moment later."""
PAGE = 500


async def read_page(client: Client, summary: RunView, query: PeopleQuery) -> PeoplePage:
    """The people of `query`'s page. `summary` is the run's own view (`read_view` without its
    batches): its people come first, then each batch's."""
    if not summary.batches_list_their_people:  # a run of 0.1.0: its rows and its batches' merged
        return page_of((await with_batch_people(client, summary)).people, query)
    own = page_of(summary.people, query)
    sizes = await batch_totals(client, summary, query.state)
    rows = list(own.people)
    skip, wanted = max(0, query.offset - own.total), query.limit - len(rows)
    for batch, size in zip(summary.batches, sizes, strict=True):
        if wanted <= 0:
            break
        if skip >= size:
            skip -= size
            continue
        page = await batch_page(
            client, batch.workflow_id, PeopleQuery(offset=skip, limit=wanted, state=query.state)
        )
        rows += page.people
        skip, wanted = 0, wanted - len(page.people)
    return PeoplePage(total=own.total + sum(sizes), people=rows)


async def every_person(
    client: Client, summary: RunView, state: PersonState | None = None
) -> AsyncIterator[PersonView]:
    """Everyone in roster order, a batch at a time: the report and `status` stream them."""
    if not summary.batches_list_their_people:
        summary = (await with_batch_people(client, summary)).model_copy(update={"batches": []})
    for person in summary.people:
        if state is None or person.state == state:
            yield person
    for batch in summary.batches:
        offset = 0
        while True:
            page = await batch_page(
                client, batch.workflow_id, PeopleQuery(offset=offset, limit=PAGE, state=state)
            )
            for person in page.people:
                yield person
            offset += len(page.people)
            if not page.people or offset >= page.total:
                break


async def batch_totals(client: Client, summary: RunView, state: PersonState | None) -> list[int]:
    """How many of each batch's people a page may list: its size, or how many it holds in
    `state` (asked of each)."""
    if state is None:
        return [batch.size for batch in summary.batches]
    gate = asyncio.Semaphore(QUERIES_AT_ONCE)

    async def count(workflow_id: str) -> int:
        async with gate:
            return (await batch_page(client, workflow_id, PeopleQuery(limit=0, state=state))).total

    return list(await asyncio.gather(*(count(batch.workflow_id) for batch in summary.batches)))


async def batch_page(client: Client, workflow_id: str, query: PeopleQuery) -> PeoplePage:
    """A batch's page; a batch of a build before 0.2.0 (no `people` query) is paged from its view."""
    handle = client.get_workflow_handle_for(StepBatch.run, workflow_id)
    try:
        return await asked_of_batch(
            workflow_id, handle.query(StepBatch.people, query, rpc_timeout=QUERY_TIMEOUT)
        )
    except WorkflowQueryFailedError:
        return page_of((await batch_view(client, workflow_id)).people, query)
