"""Reading a run's view from Temporal, for the CLI, the demo and the console: a running run
answers a query, an ended one its result; a step's batches add their people. And following a
run in a terminal, one timeline line per change."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from domain.run_view import PersonView, RunView
from rendering.terminal import changes, clock
from workflows import search_attributes as sa
from workflows.procedure_run import ProcedureRun
from workflows.step_batch import StepBatch

T = TypeVar("T")
QUERY_TIMEOUT = timedelta(seconds=5)
NO_ANSWER = (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED)
"""How a query that no worker answered within QUERY_TIMEOUT fails."""


class NoWorker(Exception):
    """A running run whose worker is down: its view cannot be read right now."""


class Refused(Exception):
    """The run (or its absence) said no; a message for the user."""


ENDED_WITHIN = 10.0
"""Seconds `view_once_ended` waits for an ended run to say so (it does within a workflow task)."""


async def view_once_ended(client: Client, workflow_id: str, within: float = ENDED_WITHIN) -> RunView:
    """The run's own view (its batches' people are read page by page, `roster_pages`) once it
    says it has ended: not when its workflow completes, which may wait minutes for the
    carrier's recording."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        view = await read_view(client, workflow_id, with_batches=False)
        if view.state == "ended" or loop.time() >= deadline:
            return view
        await asyncio.sleep(0.1)


async def read_view(client: Client, workflow_id: str, *, with_batches: bool = True) -> RunView:
    """The run's view; with its batches' people when it alerted through batches."""
    handle = client.get_workflow_handle_for(ProcedureRun.run, workflow_id)
    description = await handle.describe()
    if description.status == WorkflowExecutionStatus.RUNNING:
        try:
            view = await handle.query(ProcedureRun.view, rpc_timeout=QUERY_TIMEOUT)
        except RPCError as exc:
            if exc.status == RPCStatusCode.FAILED_PRECONDITION:
                raise NoWorker(
                    f"run {workflow_id} cannot answer right now: its last workflow task failed and "
                    "Temporal is retrying it (the worker's log says why)"
                ) from exc
            if exc.status not in NO_ANSWER:
                raise
            attributes = description.typed_search_attributes
            raise NoWorker(
                f"run {workflow_id} is running but no worker answered within "
                f"{QUERY_TIMEOUT.seconds} s: start one (make stack, or python worker.py). Last indexed: "
                f"{attributes.get(sa.IN_CONFERENCE)}/{attributes.get(sa.PARTICIPANTS)} in the bridge."
            ) from exc
    elif description.status == WorkflowExecutionStatus.COMPLETED:
        view = await handle.result()
    else:
        state = description.status.name.lower() if description.status else "unknown"
        raise Refused(f"run {workflow_id} is {state}: it has no view")
    return await with_batch_people(client, view) if with_batches else view


async def with_batch_people(client: Client, view: RunView) -> RunView:
    """The run's own view with its batches' people merged in: one query per batch, and a view
    that grows with the run. For small runs (tests, the timeline); any size is read page by
    page (`roster_pages`)."""
    if not view.batches:
        return view
    views = await asyncio.gather(*(batch_view(client, b.workflow_id) for b in view.batches))
    return with_people_of(view, views)


async def batch_view(client: Client, workflow_id: str) -> RunView:
    """A batch's people."""
    handle = client.get_workflow_handle_for(StepBatch.run, workflow_id)
    return await asked_of_batch(workflow_id, handle.query(StepBatch.view, rpc_timeout=QUERY_TIMEOUT))


async def asked_of_batch(workflow_id: str, query: Awaitable[T]) -> T:
    """A batch's answer. A batch whose worker is busy past the query timeout, or whose last
    workflow task failed, is NoWorker like its run: read again later, not a traceback."""
    try:
        return await query
    except RPCError as exc:
        if exc.status not in (RPCStatusCode.FAILED_PRECONDITION, *NO_ANSWER):
            raise
        raise NoWorker(
            f"batch {workflow_id} did not answer within {QUERY_TIMEOUT.seconds} s (its workers are "
            "busy or down, or its last workflow task failed): read the run again in a moment"
        ) from exc


def with_people_of(view: RunView, batches: list[RunView]) -> RunView:
    """The run's view with every batch's people in it; someone in several steps is one row."""
    people: dict[str, PersonView] = {p.id: p.model_copy(deep=True) for p in view.people}
    for batch in batches:
        for person in batch.people:
            known = people.get(person.id)
            if known is None:
                people[person.id] = person
                continue
            known.attempts += person.attempts
            known.notifications += person.notifications
            known.too_late += person.too_late
            known.acknowledged_at = known.acknowledged_at or person.acknowledged_at
            known.delivered_at = known.delivered_at or person.delivered_at
    return view.model_copy(update={"people": list(people.values())})


FOLLOWED_IN_BATCHES = 1_000
"""The timeline has a line per person of a run's batches up to this many; beyond, a line per
batch (its count), and `status` lists the people."""


async def follow(
    client: Client, workflow_id: str, emit: Callable[[str], None], *, poll_seconds: float = 0.5
) -> RunView | None:
    """Print the timeline until the run ends; returns the final view (the run's own, with its
    batches' people when they are few enough to follow)."""

    async def read() -> RunView:
        view = await read_view(client, workflow_id, with_batches=False)
        if sum(batch.size for batch in view.batches) <= FOLLOWED_IN_BATCHES:
            return await with_batch_people(client, view)
        return view

    return await follow_views(read, emit, poll_seconds=poll_seconds)


async def follow_views(
    read: Callable[[], Awaitable[RunView]], emit: Callable[[str], None], *, poll_seconds: float = 0.5
) -> RunView | None:
    """The same from any source of views (Temporal, or the console's API): a view that cannot
    be read now (a worker or the network down) is read again; a refusal ends it."""
    last: RunView | None = None
    while True:
        try:
            view = await read()
        except (RPCError, NoWorker, OSError, TimeoutError):
            await asyncio.sleep(poll_seconds)
            continue
        except Refused as exc:
            emit(str(exc))
            return last
        for at, text in changes(last, view):
            emit(f"{clock(view.started_at, at)}  {text}")
        last = view
        if view.state == "ended":
            return view
        await asyncio.sleep(poll_seconds)
