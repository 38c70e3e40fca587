"""Finding a running run from what a caller gives: the PIN they key in, or the number they
call from. Neither is stored in clear: both are keyed HMACs (RALLYCALL_PIN_SECRET)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from workflows.caller_index import SHARDS, CallerIndex, Held, Lookup, link_id, shard_id


def _digest(secret: str, value: str, length: int) -> str:
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()[:length]


def pin_lease_id(pin: str, secret: str) -> str:
    """The ID of the workflow that holds a PIN while its run is open."""
    return f"pin-lease-{_digest(secret, pin, 24)}"


def caller_key(number: str, secret: str) -> str:
    """What the caller index holds for each of a run's numbers."""
    return _digest(secret, number, 32)


@dataclass(frozen=True)
class PinHolder:
    run_id: str
    running: bool
    """False: the PIN was this run's and the run has ended (its lease is kept for Temporal's
    retention period), so a caller keying it is late, not guessing."""


async def pin_holder(client: Client, secret: str, pin: str) -> PinHolder | None:
    """The run holding this PIN, or that held it last; None if no run ever did (lately)."""
    handle = client.get_workflow_handle(pin_lease_id(pin, secret))
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    run_id = await description.memo_value("conference", type_hint=str)
    return PinHolder(run_id, description.status == WorkflowExecutionStatus.RUNNING)


async def conference_with_pin(client: Client, secret: str, pin: str) -> str | None:
    """The running run holding this PIN, if any."""
    holder = await pin_holder(client, secret, pin)
    return holder.run_id if holder and holder.running else None


async def conferences_of_caller(
    client: Client, secret: str, task_queue: str, number: str, rpc_timeout: timedelta | None = None
) -> list[str]:
    """Running runs in which this number belongs to someone: one query of one index shard, and
    one more for each further link while the shard says more follow."""
    key = caller_key(number, secret)
    runs: set[str] = set()
    link = 0
    while True:
        found = await _ask(client, shard_id(task_queue, key, link), key, rpc_timeout)
        if found is None:
            break
        runs.update(found.runs)
        if not found.more:
            break
        link += 1
    return sorted(runs)


async def index_size(client: Client, task_queue: str) -> tuple[int, int]:
    """How many workflows the caller index runs (shards and their links), and how many entries
    (a number's keyed hash in a run) they hold."""
    links = [held async for _, held in index_links(client, task_queue)]
    return len(links), sum(held.entries for held in links)


async def index_links(client: Client, task_queue: str) -> AsyncIterator[tuple[str, Held]]:
    """Every running link of every shard, with what it holds: a shard's links in order, as
    long as each says more follow."""
    for shard in range(SHARDS):
        link = 0
        while True:
            workflow_id = link_id(task_queue, shard, link)
            try:
                held = await client.get_workflow_handle_for(CallerIndex.run, workflow_id).query(
                    CallerIndex.held
                )
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    break
                raise
            yield workflow_id, held
            if not held.more:
                break
            link += 1


async def _ask(client: Client, shard: str, key: str, rpc_timeout: timedelta | None) -> Lookup | None:
    handle = client.get_workflow_handle_for(CallerIndex.run, shard)
    try:
        return await handle.query(CallerIndex.lookup, key, rpc_timeout=rpc_timeout)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
