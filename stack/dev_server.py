"""How the embedded dev server is started, wherever it is (`make run`, `make stack`,
`make prod-like`, the tests and the benchmarks).

One task-queue partition: a task queue's rate limit is split evenly among its partitions, each
with a bucket of its own, so at a low rate a call landing in a busy partition waits for that
partition's share (measured on this server's default of 4 partitions at 1 call/s: 5 calls
started at +0, +3, +3, +7 and +11 s; with one partition at +0, +0, +1, +2 and +3 s). The dev
server can only set the count for every queue; production sets it for the calls queue alone
(deploy/README.md). Every limit stays at its default.
"""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from config import DEV_ENCRYPTION_KEYS, Settings, data_converter
from stack.binaries import temporal_cli
from workflows import search_attributes

ONE_PARTITION = [
    "--dynamic-config-value",
    "matching.numTaskqueueReadPartitions=1",
    "--dynamic-config-value",
    "matching.numTaskqueueWritePartitions=1",
]


async def start_dev_env() -> WorkflowEnvironment:
    """A dev server of its own, in memory, with rallycall's search attributes and payload key
    (the tests' and the benchmarks')."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        search_attributes=search_attributes.ALL,
        data_converter=data_converter(Settings(_env_file=None, encryption_keys=DEV_ENCRYPTION_KEYS)),
        dev_server_extra_args=ONE_PARTITION,
    )
