"""Health probes for supervised pieces (`stack.processes.Probe`): each answers "healthy yet?"
within a couple of seconds and never raises; a piece that cannot answer is not healthy yet."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import aiohttp
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from stack.processes import Probe

PROBE_TIMEOUT = timedelta(seconds=2)


def http_ok(url: str) -> Probe:
    """GET `url` answers 200 (the callback servers' `/healthz`)."""

    async def probe(pid: int) -> bool:
        return await _http_status(url) == 200

    return probe


def http_serving(url: str) -> Probe:
    """GET `url` gets an answer that is not a server error (a piece with no health endpoint)."""

    async def probe(pid: int) -> bool:
        status = await _http_status(url)
        return status is not None and status < 500

    return probe


def listening(host: str, port: int) -> Probe:
    """The port accepts connections (the mailbox, the carrier simulator)."""

    async def probe(pid: int) -> bool:
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), PROBE_TIMEOUT.total_seconds()
            )
        except (OSError, TimeoutError):
            return False
        writer.close()
        await writer.wait_closed()
        return True

    return probe


def temporal_serving(address: str) -> Probe:
    """The frontend takes clients and says it is serving."""

    async def probe(pid: int) -> bool:
        try:
            client = await asyncio.wait_for(Client.connect(address), PROBE_TIMEOUT.total_seconds())
            return await client.service_client.check_health(timeout=PROBE_TIMEOUT)
        except (RuntimeError, RPCError, TimeoutError):
            return False

    return probe


def polling(client: Client, task_queue: str) -> Probe:
    """This very process polls the task queue for workflow tasks: a worker that takes work. The
    SDK names a worker `<pid>@<host>`, so a restarted worker is told apart from its dead self,
    whom the server keeps listing for a while."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )

    async def probe(pid: int) -> bool:
        try:
            response = await client.workflow_service.describe_task_queue(request, timeout=PROBE_TIMEOUT)
        except RPCError:
            return False
        return any(poller.identity.startswith(f"{pid}@") for poller in response.pollers)

    return probe


async def _http_status(url: str) -> int | None:
    try:
        async with (
            aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT.total_seconds())
            ) as session,
            session.get(url) as response,
        ):
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return None
