"""Carrier faults as Twilio produces them, injected by the simulator: what is retried, what fails
one attempt and lets the scheme move on, and what stops the carrier side loudly."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from carrier.simulator import Scenario
from carrier.simulator.scenario import Fault
from domain.events import EndRequest
from domain.run_view import PersonView, RunView
from tests.support import FAST, SCENARIO, Harness, eventually, harness
from workflows.calling import CARRIER_REFUSED
from workflows.procedure_run import ProcedureRun

ALICE_WORK, ALICE_HOME = "+41215550101", "+41215550111"


def with_faults(*faults: Fault, number: str = ALICE_WORK) -> Scenario:
    return SCENARIO.model_copy(update={"faults": {number: list(faults)}})


async def finish(h: Harness, workflow_id: str) -> RunView:
    handle = h.client.get_workflow_handle_for(ProcedureRun.run, workflow_id)
    await handle.execute_update(ProcedureRun.end, EndRequest())
    return await handle.result()


def alice(report: RunView) -> PersonView:
    return next(p for p in report.people if p.id == "alice")


async def test_rate_limits_and_server_errors_are_retried_into_one_call(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    scenario = with_faults("rate-limited", "server-error", "rate-limited")
    async with harness(dev_env.client, tmp_path, contacts_file, scenario) as h, h.worker():
        launched = await h.launch("alice")
        report = await eventually(lambda: h.roster(launched), lambda r: r.people[0].in_conference, 20)
        assert [f["fault"] for f in h.carrier_entries("fault")] == [
            "rate-limited",
            "server-error",
            "rate-limited",
        ]
        assert h.called_numbers() == [ALICE_WORK], "placed once, after three refusals"
        assert [a.outcome for a in report.people[0].attempts] == ["answered"]
        await finish(h, launched.workflow_id)


async def test_a_lost_response_never_places_a_second_call(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    async with (
        harness(dev_env.client, tmp_path, contacts_file, with_faults("lost-response")) as h,
        h.worker(),
    ):
        launched = await h.launch("alice")
        report = await eventually(lambda: h.roster(launched), lambda r: r.people[0].in_conference, 20)
        assert h.called_numbers() == [ALICE_WORK], "the retry found the call the lost response had placed"
        attempt = report.people[0].attempts[0]
        assert attempt.outcome == "answered" and attempt.call_sid == next(iter(h.simulator.calls))
        await finish(h, launched.workflow_id)


async def test_a_number_the_carrier_rejects_fails_that_attempt_and_the_scheme_moves_on(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    scenario = SCENARIO.model_copy(
        update={"faults": {ALICE_WORK: [21614]}, "numbers": {**SCENARIO.numbers, ALICE_HOME: "answer"}}
    )
    async with harness(dev_env.client, tmp_path, contacts_file, scenario) as h, h.worker():
        launched = await h.launch("alice", definitions=FAST)
        report = await eventually(lambda: h.roster(launched), lambda r: r.people[0].in_conference, 20)
        work, home = report.people[0].attempts
        assert work.outcome == "failed" and "21614" in (work.error or "")
        assert home.medium == "voice_home" and home.outcome == "answered"
        assert h.called_numbers() == [ALICE_HOME], "no retry of a permanent refusal"
        await finish(h, launched.workflow_id)


async def test_refused_credentials_stop_calls_and_sms_loudly_but_email_goes_out(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    async with harness(dev_env.client, tmp_path, contacts_file, with_faults(21212)) as h, h.worker():
        launched = await h.launch("alice", "bruno", definitions=FAST)
        report = await eventually(
            lambda: h.roster(launched), lambda r: sum(len(p.notifications) for p in r.people) == 2, 20
        )
        assert len(report.problems) == 1 and "the carrier refused our configuration" in report.problems[0]
        assert "21212" in report.problems[0]
        home = [a for p in report.people for a in p.attempts if a.medium == "voice_home"]
        assert all(a.outcome == "not-placed" and a.error == CARRIER_REFUSED for a in home), "no home calls"
        assert not {"+41215550111", "+41215550112"} & set(h.called_numbers()), "no home phone rang"
        assert h.texted_numbers() == [], "no SMS through a carrier that refuses us"
        assert sorted(m["To"] for m in h.mailbox.messages()) == ["alice@example.com", "bruno@example.com"]
        final = await finish(h, launched.workflow_id)
        assert final.problems == report.problems


async def test_a_slow_carrier_never_delays_the_timeline(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    stubborn = with_faults(
        "server-error", "server-error", "server-error"
    )  # alice's work call: ~7 s of retries
    async with harness(dev_env.client, tmp_path, contacts_file, stubborn) as h, h.worker():
        launched = await h.launch("alice", "bruno", definitions=FAST)
        report = await eventually(
            lambda: h.roster(launched),
            lambda r: any(a.placed_at for a in r.person("bruno").attempts[1:]),
        )
        bruno_home = report.person("bruno").attempts[1]
        assert bruno_home.medium == "voice_home" and bruno_home.placed_at
        placed = bruno_home.placed_at - report.started_at
        assert timedelta(seconds=2) <= placed < timedelta(seconds=4), (
            "bruno's home call at +2 s, in the account's next turn (alice's retries wait for turns too), "
            "before the +4 s deadline: her retries never hold the round back"
        )
        assert alice(report).attempts[0].call_sid is None, "while alice's work call is still being retried"
        await finish(h, launched.workflow_id)


async def test_a_call_belongs_to_its_attempt_when_two_runs_call_one_number_at_once(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    faults = with_faults("lost-response", "rate-limited", "lost-response", "rate-limited", "server-error")
    async with harness(dev_env.client, tmp_path, contacts_file, faults) as h, h.worker():
        first, second = await asyncio.gather(h.launch("alice"), h.launch("alice"))
        views = [
            await eventually(partial(h.roster, run), lambda r: r.people[0].in_conference, 30)
            for run in (first, second)
        ]
        consumed = [f["fault"] for f in h.carrier_entries("fault")]
        assert consumed.count("lost-response") == 2 and "rate-limited" in consumed, consumed
        assert h.called_numbers() == [ALICE_WORK, ALICE_WORK], "one call per run, never a second for one"
        sids = [view.people[0].attempts[0].call_sid for view in views]
        assert len(set(sids)) == 2 and set(sids) == set(h.simulator.calls), "each run adopted its own call"
        for run, sid in zip((first, second), sids, strict=True):
            assert sid and h.simulator.calls[sid].room == run.workflow_id, (
                "and that call is in its own bridge"
            )
        await finish(h, first.workflow_id)
        await finish(h, second.workflow_id)
