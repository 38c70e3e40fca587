"""Launch checks at real size, before anything starts: one bridge holds 250 across all the
conference steps of a run, and a run the account's call rate cannot keep in time is refused
with exact figures (unless forced), in words and in `--json`."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from bench import population as pop
from config import Settings
from directory import pin_lease_id
from domain.capacity import capacity
from domain.errors import InvalidLaunch
from domain.events import EndRequest
from launching import LaunchRequest, OverCapacity, calls_waiting, check_capacity, prepare, red_button
from stack.loopback import eventually, harness
from tests.support import DEFINITIONS, SCENARIO, run_starter
from workflows.caller_index import SHARDS
from workflows.procedure_run import ProcedureRun

TEAM, DEPUTIES = 200, 60


def settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **overrides)


def crisis(contacts: Path, team: range, deputies: range) -> LaunchRequest:
    procedure = DEFINITIONS.procedure("crisis-with-deputies")
    fields = {
        "body": "fire",
        "Contacts.S001": ",".join(pop.person_id(n) for n in team),
        "Contacts.S002": ",".join(pop.person_id(n) for n in deputies),
    }
    return LaunchRequest(procedure, DEFINITIONS.schemes, fields, contacts_file=contacts)


@pytest.fixture
def people(tmp_path: Path) -> Path:
    return pop.write_contacts(tmp_path / "contacts.yaml", pop.contacts(TEAM + DEPUTIES))


def test_one_bridge_counts_the_team_and_the_deputies_together(people: Path) -> None:
    with pytest.raises(InvalidLaunch) as refused:
        prepare(crisis(people, range(TEAM), range(TEAM, TEAM + DEPUTIES)), settings(), pin="123456")
    assert refused.value.problems == [
        "260 people could be called into this run's bridge (step 001: 200, step 002: 60); "
        "a bridge holds at most 250"
    ]
    exactly = prepare(crisis(people, range(TEAM), range(TEAM, TEAM + 50)), settings(), pin="123456")
    assert len(exactly.bridge_people()) == 250
    overlapping = crisis(people, range(TEAM), range(TEAM - 10, TEAM + 50))
    assert len(prepare(overlapping, settings(), pin="123456").bridge_people()) == 250, (
        "someone on both lists is one person in the bridge"
    )


def red_button_for(contacts: Path, count: int) -> LaunchRequest:
    procedure = DEFINITIONS.procedure("conference-call")
    destinations = [pop.person_id(n) for n in range(count)]
    return red_button(procedure, DEFINITIONS.schemes, destinations, "", contacts_file=contacts)


def test_250_at_one_call_per_second_cannot_keep_the_red_button_in_time(people: Path) -> None:
    """At 1 call/s the work round needs 250 s = 4 min 10 s: calls start at +0, +1 ... +119 s
    (120 of them) before the +2:00 deadline; the other 130 are not placed, and none of the 250
    home calls due at +1:00 gets a turn (the work calls still waiting go first)."""
    plan = prepare(red_button_for(people, 250), settings(calls_per_second=1), pin="123456")
    with pytest.raises(OverCapacity) as refused:
        check_capacity(plan, settings(calls_per_second=1), force=False)
    (load,) = refused.value.loads
    work, home = load.rounds
    assert (work.planned_calls, work.calls, work.not_alerted) == (250, 120, 130)
    assert work.last_start is not None and work.last_start.total_seconds() == pytest.approx(119)
    assert (home.planned_calls, home.calls, home.not_alerted) == (250, 0, 250)
    assert refused.value.problems == [
        "step 001: at 1 call/s with nobody answering, the work phone round at +0:00 "
        "needs 4 min 10 s for its 250 calls; 120 would be placed, the last at +1:59, 130 not alerted "
        "before the deadline at +2:00; the home phone round at +1:00 needs 4 min 10 s for its 250 "
        "calls, 250 not alerted before the deadline at +2:00",
        "launch anyway with --force",
    ]
    assert check_capacity(plan, settings(calls_per_second=1), force=True) == refused.value.loads
    assert capacity(plan, 250) == [], "at 250 calls/s everyone is called on time"


def test_a_few_calls_of_other_runs_ahead_still_leave_a_launch_in_time(people: Path) -> None:
    """Three people at 1 call/s behind 5 calls of other runs: 5 s late, within a tenth of the
    two-minute step; behind 15, a work call would start 15 s late: refused."""
    plan = prepare(red_button_for(people, 3), settings(calls_per_second=1), pin="123456")
    assert capacity(plan, 1, waiting=5) == []
    (late,) = capacity(plan, 1, waiting=15)
    assert late.rounds[0].delayed == 3 and "and 15 calls of other runs waiting" in late.describe()


async def test_the_cli_refuses_with_the_figures_and_force_launches_with_a_warning(
    dev_env: WorkflowEnvironment, tmp_path: Path, people: Path
) -> None:
    async with harness(dev_env.client, tmp_path, people, SCENARIO, calls_per_second=1) as h:
        to = [arg for n in range(250) for arg in ("--to", pop.person_id(n))]
        before = (await h.client.count_workflows()).count
        code, output, error = await run_starter(
            dev_env, h, "conference", "--contacts", str(people), *to, "--json"
        )
        assert code == 2, output + error
        refusal = json.loads(output)
        assert refusal["error"] == "over_capacity"
        work, home = refusal["steps"][0]["rounds"]
        assert (work["calls"], work["not_alerted"], home["not_alerted"]) == (120, 130, 250)
        assert "needs 4 min 10 s for its 250 calls" in refusal["message"]
        assert error.startswith("error: cannot launch:"), "the words on stderr, stdout stays JSON"
        assert (await h.client.count_workflows()).count == before, "refused: no PIN, no run"

        code, output, error = await run_starter(
            dev_env, h, "conference", "--contacts", str(people), *to, "--force"
        )
        assert code == 0, output + error
        assert "WARNING (--force) step 001: at 1 call/s" in output
        assert "250 not alerted before the deadline at +2:00" in output
        workflow_id = output.split(":")[1].split()[0]
        run = await h.client.get_workflow_handle(workflow_id).describe()
        assert run.status == WorkflowExecutionStatus.RUNNING, "forced: launched all the same"
        pin = output.split("PIN")[1].split()[0]
        leftovers = [workflow_id, pin_lease_id(pin, h.settings.pin_secret)]
        leftovers += [f"{h.settings.task_queue}-caller-index-{shard:02d}" for shard in range(SHARDS)]
        for leftover in leftovers:  # no worker ran them: nothing to end gracefully
            with contextlib.suppress(RPCError):
                await h.client.get_workflow_handle(leftover).terminate("test over")


async def test_calls_already_waiting_on_the_account_count_against_a_new_launch(
    dev_env: WorkflowEnvironment, tmp_path: Path, people: Path
) -> None:
    """A first run's 200 calls wait for their turn at 1 call/s (no calls worker yet takes them):
    three more people at 1 call/s would be in time alone, and are refused behind those 200."""
    async with (
        harness(dev_env.client, tmp_path, people, SCENARIO, calls_per_second=1) as h,
        h.worker(calls_too=False),
    ):
        first = await h.launch(*(pop.person_id(n) for n in range(200)), force=True)
        waiting = await eventually(lambda: calls_waiting(h.client, h.settings), lambda n: n >= 200, 30)
        assert waiting == 200
        plan = prepare(red_button_for(people, 3), h.settings, pin="123456")
        assert check_capacity(plan, h.settings, force=False) == [], "alone, three are in time"
        with pytest.raises(OverCapacity) as refused:
            await h.launch(*(pop.person_id(n) for n in range(200, 203)))
        assert "and 200 calls of other runs waiting" in refused.value.problems[0]
        await h.handle(first).execute_update(ProcedureRun.end, EndRequest())
