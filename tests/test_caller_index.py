"""The caller index at real size on the dev server: 40,000 numbers of 40 running conferences
(160 full bridges' worth of work phones) spread over 16 shards of at most 1,500 entries each. The
shards pass what they have no room for on to further links; every number is found, no link's
state or history carries a payload near Temporal's 256 KB warning, and a run that closes is
forgotten in every link."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.caller_index import CallerIndexActivities, RunCallers, register_callers
from bench.scale import largest_payload
from directory import conferences_of_caller, index_links, index_size
from stack.loopback import eventually
from tests.support import harness
from workflows.caller_index import ENTRIES_AT_MOST, SHARDS

RUNS, NUMBERS = 40, 1_000


def numbers_of(run: int) -> list[str]:
    return [f"+4179{run:03d}{n:04d}" for n in range(NUMBERS)]


async def test_forty_thousand_numbers_are_found_and_forgotten_through_linked_shards(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    async with harness(dev_env.client, tmp_path, contacts_file) as h, h.worker():
        client, queue, secret = h.client, h.settings.task_queue, h.settings.pin_secret
        expires = datetime.now(UTC) + timedelta(hours=1)
        callers = [
            RunCallers(run_id=f"run-{r:02d}", numbers=numbers_of(r), expires_at=expires) for r in range(RUNS)
        ]
        for batch in range(0, RUNS, 10):
            await asyncio.gather(
                *(register_callers(client, queue, secret, c) for c in callers[batch : batch + 10])
            )

        workflows, _ = await eventually(
            lambda: index_size(client, queue), lambda s: s[1] == RUNS * NUMBERS, 60
        )
        assert workflows > SHARDS, f"full shards passed numbers on to further links: {workflows} workflows"
        sample = random.Random(7).sample(range(RUNS * NUMBERS), 300)
        found = await asyncio.gather(
            *(
                conferences_of_caller(client, secret, queue, numbers_of(n // NUMBERS)[n % NUMBERS])
                for n in sample
            )
        )
        assert found == [[f"run-{n // NUMBERS:02d}"] for n in sample], "every number leads to its run"

        async for workflow_id, held in index_links(client, queue):
            assert held.entries <= ENTRIES_AT_MOST
            history = await client.get_workflow_handle(workflow_id).fetch_history()
            assert largest_payload(history.events) < 256 * 1024, "every payload under Temporal's warning"

        closing = CallerIndexActivities(client, queue, secret)  # what a closing run's activity does
        await asyncio.gather(*(closing.unregister_callers(c) for c in callers[:20]))
        _, left = await eventually(lambda: index_size(client, queue), lambda s: s[1] == 20 * NUMBERS, 60)
        forgotten = await asyncio.gather(
            *(
                conferences_of_caller(client, secret, queue, numbers_of(r)[n])
                for r in range(20)
                for n in (0, 999)
            )
        )
        assert forgotten == [[]] * 40, "a closed run is forgotten in every link"
        assert left == 20 * NUMBERS
