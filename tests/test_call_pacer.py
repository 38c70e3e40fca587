"""The account's call pacer on the dev server: a request retried after a crash (its first answer
lost) gets the slots it got the first time, so the account's slots are not spent twice and the
calls of other runs are not pushed past their deadline (found by `make chaos`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.pacing import PacingActivities
from workflows.call_pacer import CallPacer, SlotRequest, pacer_queue


def request(request_id: str, count: int) -> SlotRequest:
    return SlotRequest(
        count=count,
        calls_per_second=1,
        not_after=datetime.now(UTC) + timedelta(minutes=2),
        request_id=request_id,
    )


async def test_a_retried_request_gets_the_same_slots_and_spends_none_more(
    dev_env: WorkflowEnvironment,
) -> None:
    task_queue = f"pacer-{uuid.uuid4()}"
    pacer = PacingActivities(dev_env.client, task_queue)
    async with Worker(dev_env.client, task_queue=pacer_queue(task_queue), workflows=[CallPacer]):
        first = await pacer.reserve_call_slots(request("run-a/1", 3))
        retried = await pacer.reserve_call_slots(request("run-a/1", 3))
        other = await pacer.reserve_call_slots(request("run-b/1", 1))

    assert retried == first
    assert all(slot is not None for slot in first + other)
    assert len(set(first)) == 3, "one call per second: three bursts"
    # The other run's call comes in the burst after run A's last, not two bursts later.
    assert other[0] is not None and first[-1] is not None
    assert timedelta(seconds=1) <= other[0] - first[-1] < timedelta(seconds=2)


async def test_requests_without_an_id_are_never_taken_for_each_other(dev_env: WorkflowEnvironment) -> None:
    """Runs recorded before requests were named replay their unnamed requests: each gets its own."""
    task_queue = f"pacer-{uuid.uuid4()}"
    pacer = PacingActivities(dev_env.client, task_queue)
    async with Worker(dev_env.client, task_queue=pacer_queue(task_queue), workflows=[CallPacer]):
        first = await pacer.reserve_call_slots(request("", 1))
        second = await pacer.reserve_call_slots(request("", 1))

    assert first[0] is not None and second[0] is not None
    assert second[0] - first[0] >= timedelta(seconds=1)
