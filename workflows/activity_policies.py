"""How the workflows call their activities: retries, timeouts that notice a dead worker in
seconds, and reading what a failed activity says. Shared by calls, messages, checks with the
carrier and moderation."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.calls import NON_RETRYABLE

CARRIER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=NON_RETRYABLE,
)
MAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(seconds=60),
    non_retryable_error_types=["MailRejected", "MailMisconfigured"],
)
HEARTBEAT = timedelta(seconds=10)
"""An activity whose worker died is tried again on another this soon (every activity that can
wait on the network heartbeats every second: `activities.heartbeats`). Not less: a worker busy
with a hundred runs at once can leave its heartbeats seconds late, and the next try then runs
beside a live one (`activities.in_flight` keeps that from sending twice in one process)."""


def error_type(err: ActivityError) -> str | None:
    return err.cause.type if isinstance(err.cause, ApplicationError) else None


def failure_message(err: FailureError) -> str:
    """What a failed activity said (an activity's error is its cause; a local activity's may
    come as the error itself)."""
    cause = err.cause
    return str(cause.message if isinstance(cause, ApplicationError) else cause or err)


def first_names(names: list[str]) -> str:
    """An activity's summary of whom it is for: the first three, and how many more."""
    return ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
