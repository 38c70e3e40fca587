"""The worker: runs the procedure workflows and their activities against the configured carrier
and SMTP server. `python worker.py` runs it alone (against Twilio unless
RALLYCALL_TWILIO_API_URL points elsewhere); the embedded stack runs it in-process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
    UpdateTaskQueueConfigRequest,
)
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker, WorkerDeploymentConfig

import key_checks
from activities.caller_index import CallerIndexActivities
from activities.calls import CarrierActivities
from activities.mail import MailActivities, SmtpSettings
from carrier.accounts import Carriers
from carrier.port import Carrier
from config import Settings, checked_settings, connect_temporal
from domain.call_queue import UNKNOWN_ACCOUNT_RATE, CallQueue
from workflows.caller_index import CallerIndex
from workflows.dial_in_guard import DialInGuard
from workflows.pin_lease import PinLease
from workflows.procedure_run import ProcedureRun
from workflows.step_batch import StepBatch

ACTIVITY_SLOTS = 200
"""Activities of the runs' queue at once: message batches and carrier clean-ups, which wait
on the network, not the CPU."""
ACTIVITY_POLLERS = 20
WORKFLOW_POLLERS = 10
CALL_SLOTS = 200
"""Calls one worker places at once (each waits only for the carrier's answer to its request)."""
STICKY_TIMEOUT = timedelta(seconds=3)
"""A dead worker's runs move to another worker this soon (the SDK's default is 10 s: a sixth of
the one-minute home-phone round)."""
HEARTBEAT_THROTTLE = timedelta(milliseconds=200)
"""An activity's progress (each message of a batch) reaches the server within this: a try that
takes over from a dead worker re-sends nothing the server heard of (the SDK's default waits up
to 80% of the heartbeat timeout)."""
CONFIG_TRIES = 6
"""Tries at the calls queue's rates before the worker gives up (about 6 s in all)."""
REFUSALS = frozenset(
    {
        RPCStatusCode.PERMISSION_DENIED,
        RPCStatusCode.UNAUTHENTICATED,
        RPCStatusCode.NOT_FOUND,
        RPCStatusCode.UNIMPLEMENTED,
    }
)
"""Answers no retry changes: the worker stops and says why."""
log = logging.getLogger("rallycall.worker")
T = TypeVar("T")


async def deployment(client: Client, config: Settings) -> WorkerDeploymentConfig | None:
    """This build in the deployment (Temporal Worker Versioning): a run is pinned to the build it
    started on, so a rolling upgrade never changes a conference under its feet; the long-lived
    helpers (PIN leases, caller index, dial-in guard) move to the current build. A deployment
    with no current build yet (its first start) gets this one; later builds become current when
    the operator says so (deploy/README.md). None where the server has no Worker Versioning
    (the time-skipping test server): workers are then unversioned."""

    async def current_build() -> str:
        try:
            described = await client.workflow_service.describe_worker_deployment(
                DescribeWorkerDeploymentRequest(
                    namespace=client.namespace, deployment_name=config.deployment_name
                )
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return ""
            raise
        return str(described.worker_deployment_info.routing_config.current_deployment_version.build_id)

    async def make_this_build_current() -> None:
        await client.workflow_service.set_worker_deployment_current_version(
            SetWorkerDeploymentCurrentVersionRequest(
                namespace=client.namespace,
                deployment_name=config.deployment_name,
                build_id=config.build_id,
                identity=client.identity,
                allow_no_pollers=True,
            )
        )

    try:
        if not await retrying("reading the worker deployment", current_build):
            await retrying("making this build current", make_this_build_current)
            log.info("build %s is the current build of %s", config.build_id, config.deployment_name)
    except RPCError as exc:
        if exc.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        log.warning("this Temporal server has no Worker Versioning: workers are unversioned")
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(config.deployment_name, config.build_id),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.PINNED,
    )


async def keep_calls_paced(client: Client, calls: CallQueue) -> bool:
    """Tell the server each carrier account's rate: calls of its fairness key start at most
    its `calls_per_second`, for every worker; a key no worker named gets UNKNOWN_ACCOUNT_RATE. The
    operator's equivalent is in deploy/README.md (`temporal task-queue config set`). False where
    the server keeps no task-queue rates (the time-skipping test server): each worker then keeps
    the rate for itself. Any other refusal stops the worker before it serves anything: unpaced
    calls would flood the carrier's queue past every deadline."""
    request = UpdateTaskQueueConfigRequest(
        namespace=client.namespace,
        identity=client.identity,
        task_queue=calls.task_queue,
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    )
    request.update_fairness_key_rate_limit_default.rate_limit.requests_per_second = UNKNOWN_ACCOUNT_RATE
    request.update_fairness_key_rate_limit_default.reason = "rallycall: an unknown carrier account's rate"
    weights = {route.account: route.calls_per_second / UNKNOWN_ACCOUNT_RATE for route in calls.routes("")}
    for account, weight in weights.items():
        request.set_fairness_weight_overrides[account] = weight

    async def set_rate() -> None:
        if not await rate_is_set(client, calls, weights):
            await client.workflow_service.update_task_queue_config(request)

    try:
        await retrying(f"setting the rate of {calls.task_queue}", set_rate)
    except RPCError as exc:
        if exc.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        log.warning("the Temporal server keeps no rate for %s: this worker keeps it alone", calls.task_queue)
        return False
    return True


async def retrying(what: str, call: Callable[[], Awaitable[T]]) -> T:
    """A setup call to the server, tried again on a transient error (measured in `make chaos`:
    two workers starting together, one got "Expected exactly one row to be updated" writing the
    queue's config), up to CONFIG_TRIES; a refusal no retry changes is raised at once."""
    for attempt in range(CONFIG_TRIES):
        try:
            return await call()
        except RPCError as exc:
            if exc.status in REFUSALS or attempt + 1 == CONFIG_TRIES:
                raise
            log.warning("%s failed, trying again: %s", what, exc)
            await asyncio.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable: the last try raises")


async def rate_is_set(client: Client, calls: CallQueue, weights: dict[str, float]) -> bool:
    """The queue already has the rates this worker would set (a restart writes nothing)."""
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=calls.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            report_config=True,
        )
    )
    config = described.config
    default = config.fairness_keys_rate_limit_default.rate_limit.requests_per_second
    overrides = config.fairness_weight_overrides
    return default == UNKNOWN_ACCOUNT_RATE and all(overrides.get(a) == w for a, w in weights.items())


def smtp_settings(config: Settings, port: int | None = None) -> SmtpSettings:
    return SmtpSettings(
        host=config.smtp_host,
        port=port or config.smtp_port,
        sender=config.mail_from,
        username=config.smtp_username,
        password=config.smtp_password,
        starttls=config.smtp_starttls,
    )


@contextlib.asynccontextmanager
async def running_workers(
    client: Client,
    config: Settings,
    carriers: Carrier | Carriers,
    smtp: SmtpSettings,
    *,
    runs_too: bool = True,
    calls_too: bool = True,
) -> AsyncIterator[None]:
    """Run the workflows and their activities until the block exits: the runs' task queue
    (workflows, messages, carrier clean-ups) and the calls task queue, whose rate the server
    keeps; either can be left to other workers."""
    carrier_activities = CarrierActivities(
        Carriers.given(carriers, config.carrier_accounts()), config.public_url, client
    )
    mail = MailActivities(smtp)
    index = CallerIndexActivities(client, config.task_queue, config.pin_secret)
    versions = await deployment(client, config)  # both checks before any worker starts: a refusal
    by_server = await keep_calls_paced(client, config.call_queue()) if calls_too else True  # exits
    runs = Worker(
        client,
        task_queue=config.task_queue,
        workflows=[ProcedureRun, StepBatch, PinLease, CallerIndex, DialInGuard],
        activities=[
            carrier_activities.hang_up,
            carrier_activities.end_conference,
            carrier_activities.send_sms_batch,
            carrier_activities.mute,
            carrier_activities.carrier_truth,
            carrier_activities.remove_from_bridge,
            mail.send_email_batch,
            index.unregister_callers,
        ],
        max_concurrent_activities=ACTIVITY_SLOTS,
        max_cached_workflows=config.workflow_cache,
        activity_task_poller_behavior=PollerBehaviorSimpleMaximum(ACTIVITY_POLLERS),
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(WORKFLOW_POLLERS),
        sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        deployment_config=versions,
    )
    async with contextlib.AsyncExitStack() as serving:
        if runs_too:
            await serving.enter_async_context(runs)
        if calls_too:
            await serving.enter_async_context(
                Worker(
                    client,
                    task_queue=config.call_queue().task_queue,
                    activities=[carrier_activities.place_call],
                    max_task_queue_activities_per_second=None if by_server else config.calls_per_second,
                    max_concurrent_activities=CALL_SLOTS,
                    activity_task_poller_behavior=PollerBehaviorSimpleMaximum(ACTIVITY_POLLERS),
                    max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
                    deployment_config=versions,
                )
            )
        if versions is not None:  # launchers compare their secrets with these before a launch
            publishing = asyncio.create_task(key_checks.publish(client, config))
            serving.callback(publishing.cancel)
        yield


async def main(serve: str) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = checked_settings("worker")
    client = await connect_temporal(config.metrics_addr)
    carriers = Carriers.of(config.carrier_accounts())
    # SIGTERM, as a rolling upgrade sends it: shut down cleanly, so the server moves our runs at once
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        async with running_workers(
            client,
            config,
            carriers,
            smtp_settings(config),
            runs_too=serve != "calls",
            calls_too=serve != "runs",
        ):
            await stop.wait()
    finally:
        await carriers.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, epilog="Settings come from the environment.")
    parser.add_argument(
        "--serve",
        choices=["all", "runs", "calls"],
        default="all",
        help="the runs' task queue, the calls task queue (placing calls at the account's rate), or both",
    )
    asyncio.run(main(parser.parse_args().serve))
