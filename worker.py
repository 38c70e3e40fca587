"""The worker: runs the procedure workflows and their activities against the configured carrier
and SMTP server. `python worker.py` runs it alone (against Twilio unless
RALLYCALL_TWILIO_API_URL points elsewhere); the embedded stack runs it in-process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from datetime import timedelta

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.workflowservice.v1 import UpdateTaskQueueConfigRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

from activities.caller_index import CallerIndexActivities
from activities.calls import CarrierActivities
from activities.mail import MailActivities, SmtpSettings
from activities.pacing import PacingActivities
from carrier.port import Carrier
from carrier.twilio import TwilioCarrier
from config import Settings, connect_temporal, refuse_dev_secrets, settings
from domain.call_queue import UNKNOWN_ACCOUNT_RATE, CallQueue
from workflows.call_pacer import CallPacer, pacer_queue
from workflows.caller_index import CallerIndex
from workflows.dial_in_guard import DialInGuard
from workflows.pin_lease import PinLease
from workflows.procedure_run import ProcedureRun
from workflows.step_batch import StepBatch

ACTIVITY_SLOTS = 600
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
log = logging.getLogger("rallycall.worker")


async def keep_calls_paced(client: Client, calls: CallQueue) -> None:
    """Tell the server the account's rate: calls of its fairness key start at most
    `calls_per_second`, for every worker; a key no worker named gets UNKNOWN_ACCOUNT_RATE.
    The operator's equivalent is in deploy/README.md (`temporal task-queue config set`)."""
    request = UpdateTaskQueueConfigRequest(
        namespace=client.namespace,
        identity=client.identity,
        task_queue=calls.task_queue,
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    )
    request.update_fairness_key_rate_limit_default.rate_limit.requests_per_second = UNKNOWN_ACCOUNT_RATE
    request.update_fairness_key_rate_limit_default.reason = "rallycall: an unknown carrier account's rate"
    request.set_fairness_weight_overrides[calls.account] = calls.calls_per_second / UNKNOWN_ACCOUNT_RATE
    try:
        await client.workflow_service.update_task_queue_config(request)
    except RPCError as exc:  # the time-skipping test server keeps no rates
        log.warning("the Temporal server keeps no call rate for %s: %s", calls.task_queue, exc)


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
    client: Client, config: Settings, carrier: Carrier, smtp: SmtpSettings
) -> AsyncIterator[None]:
    """Run the workflows and all their activities until the block exits."""
    calls = CarrierActivities(carrier, config.public_url, client)
    mail = MailActivities(smtp)
    pacing = PacingActivities(client, config.task_queue)
    index = CallerIndexActivities(client, config.task_queue, config.pin_secret)
    worker = Worker(
        client,
        task_queue=config.task_queue,
        # CallPacer here too: a pacer started on this queue before it had its own lives on until it ends
        workflows=[ProcedureRun, StepBatch, PinLease, CallPacer, CallerIndex, DialInGuard],
        activities=[
            calls.place_call,
            calls.place_calls,
            calls.hang_up,
            calls.end_conference,
            calls.send_sms,
            calls.send_sms_batch,
            calls.mute,
            calls.carrier_truth,
            calls.remove_from_bridge,
            mail.send_email,
            mail.send_email_batch,
            pacing.reserve_call_slots,
            pacing.reserve_timed_call_slots,
            index.unregister_callers,
        ],
        # activities wait on the carrier and the mail server, not the CPU: a round of 250 calls
        # or 500 invitations starts at once instead of in waves of the SDK's default 100
        max_concurrent_activities=ACTIVITY_SLOTS,
        activity_task_poller_behavior=PollerBehaviorSimpleMaximum(ACTIVITY_POLLERS),
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(WORKFLOW_POLLERS),
        sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
    )
    pacer = Worker(  # its own slots: the runs' tasks wait for it (see `pacer_queue`)
        client,
        task_queue=pacer_queue(config.task_queue),
        workflows=[CallPacer],
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(2),
    )
    placing = Worker(  # its own queue: its rate is the account's, kept by the server
        client,
        task_queue=config.call_queue().task_queue,
        activities=[calls.place_call],
        max_concurrent_activities=CALL_SLOTS,
        activity_task_poller_behavior=PollerBehaviorSimpleMaximum(ACTIVITY_POLLERS),
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
    )
    await keep_calls_paced(client, config.call_queue())
    async with worker, pacer, placing:
        yield


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = settings()
    refuse_dev_secrets(config, "worker")
    client = await connect_temporal(config.metrics_addr)
    carrier = TwilioCarrier(config.twilio_account_sid, config.twilio_auth_token, config.twilio_api_url)
    # SIGTERM, as a rolling upgrade sends it: shut down cleanly, so the server moves our runs at once
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        async with running_workers(client, config, carrier, smtp_settings(config)):
            await stop.wait()
    finally:
        await carrier.close()


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__).parse_args()  # --help; settings come from the environment
    asyncio.run(main())
