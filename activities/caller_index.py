"""A run's callers in the caller index: the numbers are hashed with the secret only launchers,
workers and callback servers hold, and signalled to their shards."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from directory import caller_key
from domain.plan import RunPlan
from workflows.caller_index import CallerIndex, IndexState, Registration, shard_id

INDEXED_FOR = timedelta(minutes=10)
"""Beyond a run's maximum duration, in case it never unregisters."""


class RunCallers(BaseModel):
    run_id: str
    numbers: list[str]
    expires_at: datetime


def callers_of(plan: RunPlan, run_id: str, started_at: datetime) -> RunCallers:
    numbers = sorted({n for person in plan.people for n in person.numbers()})
    return RunCallers(run_id=run_id, numbers=numbers, expires_at=started_at + plan.max_duration + INDEXED_FOR)


def by_shard(callers: RunCallers, task_queue: str, secret: str) -> dict[str, Registration]:
    keys: defaultdict[str, list[str]] = defaultdict(list)
    for number in callers.numbers:
        key = caller_key(number, secret)
        keys[shard_id(task_queue, key)].append(key)
    return {
        shard: Registration(run_id=callers.run_id, keys=shard_keys, expires_at=callers.expires_at)
        for shard, shard_keys in keys.items()
    }


async def register_callers(client: Client, task_queue: str, secret: str, callers: RunCallers) -> None:
    """Signal-with-start each shard the run's numbers fall in (idempotent: again writes the
    same entries). The launcher does it as it starts a run, so a dial-in a moment later finds it."""
    await asyncio.gather(
        *(
            client.start_workflow(
                CallerIndex.run,
                IndexState(),
                id=shard,
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                start_signal="register",
                start_signal_args=[registration],
                static_summary="Caller index: which runs a caller's number belongs to (hashed)",
            )
            for shard, registration in by_shard(callers, task_queue, secret).items()
        )
    )


class CallerIndexActivities:
    def __init__(self, client: Client, task_queue: str, secret: str) -> None:
        self._client = client
        self._task_queue = task_queue
        self._secret = secret

    @activity.defn
    async def unregister_callers(self, callers: RunCallers) -> None:
        """A run that closes takes its numbers out of the index."""
        shards = by_shard(callers, self._task_queue, self._secret)
        await asyncio.gather(*(self._unregister(s, r) for s, r in shards.items()))

    async def _unregister(self, shard: str, registration: Registration) -> None:
        try:
            await self._client.get_workflow_handle(shard).signal(CallerIndex.unregister, registration)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise  # a shard that ended holds nothing to forget; anything else is retried
