"""Calls paced per account by the Temporal server, as the carrier saw them: two runs launched at
the same moment, served by two workers, together keep to the account's calls per second (the
carrier's queue never holds more than a second's worth); a person's home call waits until their
work call has rung out; nobody reached is called again; no call of a step starts after its
deadline, and calls left without a turn say so. At 1 call/s, five calls are dialled a second
apart, none held back for seconds."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bench import population as pop
from carrier.simulator.scenario import Behaviour
from carrier.twilio import TwilioCarrier
from config import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN
from domain.events import EndRequest
from domain.run_view import RunView
from stack.loopback import Bridged, Harness, eventually, harness
from tests.support import confcall_in_seconds
from worker import running_workers, smtp_settings
from workflows.calling import NO_TURN
from workflows.procedure_run import ProcedureRun

CPS = 2
PER_RUN = 8
RING = 2.0
"""Each phone rings this long (simulator), longer than the scheme's 1 s: late work calls are
still ringing when the home round comes."""
TIMELINE = confcall_in_seconds(home_after=4, deadline=12)
LOOPBACK = timedelta(milliseconds=200)
"""A call the worker starts just before the deadline reaches the carrier a request later."""


def answers_at_work(n: int) -> Behaviour:
    return "answer" if n % 4 == 0 else "no-answer"


def at(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["at"])


def dialled(call: dict[str, Any]) -> datetime:
    """When the carrier dialled it: beyond the account's rate, calls wait in its queue."""
    return at(call) + timedelta(milliseconds=call["queue_ms"])


def settled(report: RunView) -> bool:
    return report.steps[0].ended_at is not None and all(
        a.outcome != "pending" for p in report.people for a in p.attempts
    )


async def second_worker(h: Harness, target: str) -> Client:
    """A worker needs a client of its own: one client cannot run two workers on one task queue."""
    return await Client.connect(target, data_converter=h.client.data_converter)


@pytest.fixture(scope="module")
async def two_runs(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Harness, list[Bridged], list[RunView]]:
    """Two runs of 8 launched at the same moment at 2 calls/s, each worker with its own client;
    both run to their deadline, then end. Once for the module's tests: they read what it left."""
    tmp_path = tmp_path_factory.mktemp("pacing")
    people = 2 * PER_RUN
    contacts = pop.write_contacts(tmp_path / "contacts.yaml", pop.contacts(people))
    scenario = pop.scenario(people, at_work=answers_at_work, at_home=lambda n: "no-answer", ring_seconds=RING)
    target = dev_env.client.service_client.config.target_host
    async with harness(dev_env.client, tmp_path, contacts, scenario, calls_per_second=CPS) as h, h.worker():
        other = await second_worker(h, target)
        carrier = TwilioCarrier(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, h.simulator_url)
        async with running_workers(other, h.settings, carrier, smtp_settings(h.settings, h.mailbox.port)):
            first, second = await asyncio.gather(
                h.launch(*(pop.person_id(n) for n in range(PER_RUN)), definitions=TIMELINE, force=True),
                h.launch(
                    *(pop.person_id(n) for n in range(PER_RUN, people)), definitions=TIMELINE, force=True
                ),
            )
            reports = [await eventually(partial(h.roster, run), settled, 60) for run in (first, second)]
            for run in (first, second):
                await h.handle(run).execute_update(ProcedureRun.end, EndRequest())
        await carrier.close()
    return h, [first, second], reports


async def test_two_runs_on_two_workers_keep_to_the_accounts_calls_per_second(
    two_runs: tuple[Harness, list[Bridged], list[RunView]],
) -> None:
    """The carrier queues calls beyond the account's rate (as Twilio does): what reaches its API
    in a burst waits there. The account's rate across runs and workers keeps that wait under a
    second's worth of calls; 16 calls at once would wait 7.5 s."""
    h, _, _ = two_runs
    calls = h.carrier_entries("call")
    longest = max(c["queue_ms"] for c in calls) / 1000
    assert longest <= 1 + 1 / CPS + 0.3, f"calls waited up to {longest:.2f} s in the carrier's queue"


async def test_two_runs_on_two_workers_call_in_order_and_before_the_deadline(
    two_runs: tuple[Harness, list[Bridged], list[RunView]],
) -> None:
    h, (first, second), reports = two_runs
    people = 2 * PER_RUN
    calls = h.carrier_entries("call")
    by_number = {c["to"]: c for c in calls}
    assert len(by_number) == len(calls), "no number called twice"
    for n in range(people):
        if answers_at_work(n) == "answer":
            assert pop.home(n) not in by_number, f"person {n} was reached at work"
        elif pop.home(n) in by_number:
            rang_out = dialled(by_number[pop.work(n)]) + timedelta(seconds=RING)
            assert dialled(by_number[pop.home(n)]) >= rang_out, f"person {n}: home call while work still rang"
    home_calls = [n for n in range(people) if pop.home(n) in by_number]
    assert home_calls, "some home calls got a turn before the deadline"

    unplaced = []
    for run, report in zip((first, second), reports, strict=True):
        deadline = report.steps[0].deadline_at
        assert deadline is not None
        numbers = {a.number for p in report.people for a in p.attempts}
        assert all(at(c) <= deadline + LOOPBACK for c in calls if c["to"] in numbers), (
            f"{run.workflow_id}: a call after the step's deadline"
        )
        for attempt in (a for p in report.people for a in p.attempts if a.outcome == "not-placed"):
            assert attempt.number not in by_number, "recorded not placed, and the carrier never saw it"
            unplaced.append(attempt.error)
    assert NO_TURN in unplaced, (
        "two runs at 2 calls/s cannot call everyone by the deadline: some calls had no turn"
    )


async def test_five_calls_at_one_call_per_second_are_dialled_a_second_apart(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The server lets a burst through at first (two calls at once at 1 call/s) and the carrier
    queues the second; then one call a second. A rate split among task-queue partitions held
    calls back for seconds here (+0, +3, +3, +7, +11 s): the calls queue must have one."""
    tmp_path = tmp_path_factory.mktemp("one-per-second")
    contacts = pop.write_contacts(tmp_path / "contacts.yaml", pop.contacts(5))
    scenario = pop.scenario(5, at_work=lambda n: "busy", at_home=lambda n: "busy", ring_seconds=0.1)
    async with harness(dev_env.client, tmp_path, contacts, scenario, calls_per_second=1) as h, h.worker():
        slow = confcall_in_seconds(home_after=30, deadline=60)  # only the work calls in this test
        launched = await h.launch(*(pop.person_id(n) for n in range(5)), definitions=slow, force=True)
        calls = await eventually(lambda: h.carrier_entries("call"), lambda c: len(c) == 5, 20)
        await h.handle(launched).execute_update(ProcedureRun.end, EndRequest())
    dials = sorted(dialled(call) for call in calls)
    after_first = [round((moment - dials[0]).total_seconds(), 2) for moment in dials]
    assert all(abs(offset - n) <= 0.35 for n, offset in enumerate(after_first)), after_first
    assert max(call["queue_ms"] for call in calls) <= 1_300, "at most a second's worth waited"
