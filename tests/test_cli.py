"""The starter CLI as a launcher uses it, against the dev server: launch, status, rejoin, end,
list; refusals exit non-zero with a clear message and launch nothing."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from directory import pin_lease_id
from launching import launch, red_button
from tests.support import DEFINITIONS, ROOT, SCENARIO, Harness, eventually, harness, run_starter
from watch import NoWorker, batch_view


async def starter(env: WorkflowEnvironment, h: Harness, *args: str) -> tuple[int, str]:
    """Exit code and everything printed (errors go to stderr)."""
    code, out, err = await run_starter(env, h, *args)
    return code, out + err


async def starter_json(env: WorkflowEnvironment, h: Harness, *args: str) -> Any:
    code, output, error = await run_starter(env, h, *args)
    assert code == 0, output + error
    return json.loads(output)


@pytest.fixture
async def cli_setup(dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path):
    async with harness(dev_env.client, tmp_path, contacts_file) as h, h.worker():
        yield h


async def test_one_idempotency_key_is_one_launch_from_the_cli_and_from_two_launchers_at_once(
    dev_env: WorkflowEnvironment, cli_setup: Harness
) -> None:
    h = cli_setup
    launch_alice = ("conference", "--contacts", str(h.contacts_file), "--to", "alice", "--json")
    first = await starter_json(dev_env, h, *launch_alice, "--idempotency-key", "INC-4711")
    again = await starter_json(dev_env, h, *launch_alice, "--idempotency-key", "INC-4711")
    assert (first["already_launched"], again["already_launched"]) == (False, True)
    assert (again["workflow_id"], again["pin"]) == (first["workflow_id"], first["pin"]), "the first run"
    code, output = await starter(dev_env, h, *launch_alice[:-1], "--idempotency-key", "INC-4711")
    assert code == 0 and "was already launched with this key" in output

    red = DEFINITIONS.procedure("conference-call")
    request = red_button(red, DEFINITIONS.schemes, ["bruno"], "", contacts_file=h.contacts_file,
                         idempotency_key="form-key-1")  # fmt: skip
    replicas = await asyncio.gather(*(launch(h.client, h.settings, request) for _ in range(2)))
    assert replicas[0].workflow_id == replicas[1].workflow_id and replicas[0].pin == replicas[1].pin
    assert sorted(launched.already for launched in replicas) == [False, True]

    ours = {first["workflow_id"], replicas[0].workflow_id}

    async def runs() -> list[str]:  # visibility: written a moment after the start
        return [r.id async for r in h.client.list_workflows('WorkflowType="ProcedureRun"') if r.id in ours]

    assert len(await eventually(runs, lambda found: len(found) >= 2)) == 2, "one run per key"

    async def held() -> list[str]:
        leases = []
        async for lease in h.client.list_workflows('WorkflowType="PinLease" AND ExecutionStatus="Running"'):
            described = await h.client.get_workflow_handle(lease.id).describe()
            if await described.memo_value("conference", type_hint=str) == replicas[0].workflow_id:
                leases.append(lease.id)
        return leases

    own = [pin_lease_id(replicas[0].pin or "", h.settings.pin_secret)]
    assert await eventually(held, lambda leases: leases == own, seconds=10) == own, (
        "the PIN the losing launch drew is released: only the run's own stays held"
    )
    await asyncio.sleep(2)  # a second run's calls would have reached the carrier by now
    work_calls = [number for number in h.called_numbers() if number in ("+41215550101", "+41215550102")]
    assert sorted(work_calls) == ["+41215550101", "+41215550102"], "each person called once at work"
    code, output = await starter(dev_env, h, *launch_alice[:-1], "--idempotency-key", "")
    assert code == 2 and "the idempotency key must be 1 to 200 characters" in output


async def test_end_returns_once_the_run_has_ended_and_the_recording_follows(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    slow_recording = SCENARIO.model_copy(update={"recording_seconds": 6})
    async with harness(dev_env.client, tmp_path, contacts_file, slow_recording) as h, h.worker():
        launched = await h.launch("alice", record=True)
        await eventually(lambda: h.roster(launched), lambda view: view.in_bridge == 1)
        started = asyncio.get_running_loop().time()
        ended = await starter_json(dev_env, h, "end", launched.workflow_id, "--reason", "drill over")
        took = asyncio.get_running_loop().time() - started
        assert ended["state"] == "ended" and ended["end_reason"] == "drill over" and ended["in_bridge"] == 0
        assert ended["recording_url"] is None, "the carrier has not reported the recording yet"
        description = await h.handle(launched).describe()
        assert description.status == WorkflowExecutionStatus.RUNNING, (
            f"end returned after {took:.1f} s, while the run still waits for the recording"
        )
        report = await eventually(
            lambda: starter_json(dev_env, h, "status", launched.workflow_id, "--json"),
            lambda view: view["recording_url"] is not None,
            seconds=20,
        )
        assert report["recording_url"].startswith("https://api.twilio.com/"), "the link reaches the report"


async def test_launch_status_rejoin_end_list(dev_env: WorkflowEnvironment, cli_setup: Harness) -> None:
    h = cli_setup
    contacts = str(h.contacts_file)
    launched = await starter_json(dev_env, h, "conference", "--contacts", contacts, "--to", "alice",
                                  "--to", "chloe", "--welcome", "Gas leak", "--json")  # fmt: skip
    assert set(launched) == {
        "workflow_id", "pin", "dial_in_number", "ui_url", "over_capacity", "already_launched", "reach"
    }  # fmt: skip
    [reach] = launched["reach"]
    assert (reach["step"], reach["destinations"], reach["sms"], reach["deadline"]) == ("001", 2, 0, 120.0)
    assert reach["calls"] >= 2 and reach["says"].startswith("step 001: 2 people; ")
    assert launched["already_launched"] is False
    assert launched["over_capacity"] == [], "three people at the test's call rate: all in time"
    assert launched["pin"].isdigit() and len(launched["pin"]) >= 6
    assert launched["dial_in_number"] == "+41215550100"
    assert launched["ui_url"].endswith(f"/workflows/{launched['workflow_id']}")
    workflow_id = launched["workflow_id"]

    async def status() -> dict[str, Any]:
        result: dict[str, Any] = await starter_json(dev_env, h, "status", workflow_id, "--json")
        return result

    report = await eventually(
        status,
        lambda r: r["people"][0]["in_conference"] and r["people"][1]["attempts"][0]["outcome"] == "busy",
        seconds=15,
    )
    assert report["state"] == "running"
    assert datetime.fromisoformat(report["started_at"]).utcoffset() == timedelta(0), "ISO-8601 UTC"
    alice, chloe = report["people"]
    assert alice["attempts"][0]["medium"] == "voice_pro" and alice["attempts"][0]["outcome"] == "answered"
    assert alice["joined_at"] and alice["rejoins"] == 0 and alice["notifications"] == []
    assert chloe["attempts"][0]["outcome"] == "busy" and not chloe["in_conference"]

    code, output = await starter(
        dev_env, h, "rejoin", "--pin", "000000", "--from", "+41215550113", workflow_id
    )
    assert code == 3 and "wrong PIN" in output and "recorded" in output
    code, output = await starter(dev_env, h, "rejoin", "--pin", "999999", "--from", "+41215550113")
    assert code == 3 and "no running conference has this PIN" in output
    code, output = await starter(dev_env, h, "rejoin", "--pin", launched["pin"], "--from", "+41 21 555 01 13")
    assert code == 0 and f"back in conference {workflow_id} as chloe" in output
    code, output = await starter(dev_env, h, "rejoin", "--pin", launched["pin"], "--from", "12")
    assert code == 2 and "--from '12' is not a phone number" in output

    report = await status()
    assert report["people"][1]["in_conference"] is True
    assert [a["accepted"] for a in report["pin_attempts"]] == [False, True]

    final = await starter_json(dev_env, h, "end", workflow_id, "--reason", "all clear")
    assert final["state"] == "ended" and final["end_reason"] == "all clear"
    assert not any(p["in_conference"] for p in final["people"])
    assert (await status())["state"] == "ended"

    code, output = await starter(dev_env, h, "end", workflow_id)
    assert code == 3 and "already over" in output
    code, output = await starter(
        dev_env, h, "rejoin", "--pin", launched["pin"], "--from", "+41215550113", workflow_id
    )
    assert code == 3 and "already over" in output

    listed = await eventually(
        lambda: starter_json(dev_env, h, "list", "--json"),
        lambda rows: any(r["workflow_id"] == workflow_id and r["state"] == "ended" for r in rows),
    )
    row = next(r for r in listed if r["workflow_id"] == workflow_id)
    assert (row["participants"], row["in_conference"]) == (2, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "nobody"], "unknown contact 'nobody'"),
        ([], "no destination given"),
        (["--to", "alice", "--to", "alice"], "destination 'alice' is given more than once"),
        (["--to", "+41 12"], "destination '+41 12' is not a valid phone number"),
    ],
)
async def test_refused_launch_exits_2_and_starts_nothing(
    dev_env: WorkflowEnvironment, cli_setup: Harness, args: list[str], message: str
) -> None:
    h = cli_setup
    before = await h.client.count_workflows()
    code, output = await starter(dev_env, h, "conference", "--contacts", str(h.contacts_file), *args)
    assert code == 2, output
    assert message in output
    assert (await h.client.count_workflows()).count == before.count, "nothing launched, no PIN reserved"


async def test_status_of_an_unknown_conference(dev_env: WorkflowEnvironment, cli_setup: Harness) -> None:
    code, output = await starter(dev_env, cli_setup, "status", "conference-does-not-exist")
    assert code == 3 and "not found" in output


async def test_status_says_so_when_no_worker_is_running(
    dev_env: WorkflowEnvironment, cli_setup: Harness
) -> None:
    orphan = cli_setup.settings.model_copy(update={"task_queue": f"no-worker-{uuid.uuid4().hex[:6]}"})
    red = DEFINITIONS.procedure("conference-call")
    request = red_button(red, DEFINITIONS.schemes, ["alice"], "", contacts_file=cli_setup.contacts_file)
    launched = await launch(cli_setup.client, orphan, request)
    assert launched.pin
    try:
        code, output = await starter(dev_env, cli_setup, "status", launched.workflow_id)
        assert code == 1 and "no worker answered within 5 s" in output and "0/1 in the bridge" in output
    finally:
        await cli_setup.client.get_workflow_handle(launched.workflow_id).terminate("test over")
        await cli_setup.client.get_workflow_handle(pin_lease_id(launched.pin, orphan.pin_secret)).terminate(
            "test over"
        )


async def test_a_batch_that_does_not_answer_reads_as_no_worker_not_a_traceback(
    dev_env: WorkflowEnvironment, cli_setup: Harness
) -> None:
    """A 5,000-person step's batches on a saturated worker answer their query late: `status`
    must say so and be read again (the bench crashed here on a raw RPC timeout)."""
    orphan = f"no-worker-{uuid.uuid4().hex[:6]}"
    batch = await cli_setup.client.start_workflow(
        "StepBatch", id=f"batch-{uuid.uuid4().hex[:6]}", task_queue=orphan
    )
    try:
        with pytest.raises(NoWorker, match="did not answer within 5 s"):
            await batch_view(cli_setup.client, batch.id)
    finally:
        await batch.terminate("test over")


async def test_procedure_list_show_and_launch_with_who_and_where(
    dev_env: WorkflowEnvironment, cli_setup: Harness
) -> None:
    code, listing = await starter(dev_env, cli_setup, "procedure", "list")
    assert code == 0 and "conference-call" in listing and "crisis-with-deputies" in listing
    code, form = await starter(dev_env, cli_setup, "procedure", "show", "crisis-with-deputies")
    assert code == 0
    assert (
        "--field Contacts.S002=…   Deputies (contact ids or E.164 numbers, comma-separated, required)" in form
    )
    assert (
        "002: conference 50 % within 0:02:00, scheme CONFCALL, only if the previous objective was not reached"
        in form
    )

    contacts = str(cli_setup.contacts_file)
    launching = ["procedure", "launch", "conference-call", "--contacts", contacts, "--field", "body=Drill"]
    launched = await starter_json(dev_env, cli_setup, *launching, "--field", "Contacts.S001=alice",
                                  "--as", "marie.dupont", "--channel", "cmc", "--json")  # fmt: skip
    query = (
        'RallycallLaunchedBy="marie.dupont" AND RallycallChannel="cmc" '
        'AND RallycallProcedure="conference-call"'
    )
    found = await eventually(
        lambda: _ids(cli_setup.client.list_workflows(query)), lambda ids: launched["workflow_id"] in ids
    )
    assert found == [launched["workflow_id"]], "an enterprise console finds its own launches"
    report = await starter_json(dev_env, cli_setup, "end", launched["workflow_id"])
    assert (report["launched_by"], report["channel"], report["procedure"]) == (
        "marie.dupont",
        "cmc",
        "conference-call",
    )

    deputies = ["procedure", "launch", "crisis-with-deputies", "--contacts", contacts, "--field", "body=x"]
    code, output = await starter(dev_env, cli_setup, *deputies, "--field", "Contacts.S001=alice")
    assert code == 2 and "field 'Contacts.S002' (Deputies) is required" in output
    code, output = await starter(dev_env, cli_setup, "procedure", "launch", "nope")
    assert code == 2 and "unknown procedure 'nope' (known: conference-call, crisis-with-deputies)" in output


async def _ids(executions: Any) -> list[str]:
    return [execution.id async for execution in executions]


async def test_a_field_without_a_value_exits_2_and_starts_nothing(
    dev_env: WorkflowEnvironment, cli_setup: Harness
) -> None:
    h = cli_setup
    before = await h.client.count_workflows()
    command = ("procedure", "launch", "conference-call", "--field", "body")
    code, output = await starter(dev_env, h, *command, "--contacts", str(h.contacts_file))
    assert code == 2, output
    assert "--field 'body': write NAME=VALUE" in output
    assert (await h.client.count_workflows()).count == before.count, "nothing launched, no PIN reserved"


@pytest.mark.parametrize(
    ("file", "text", "message"),
    [
        ("procedures/conference-call.yaml", "name: conference-call\nsteps: [unclosed\n", "is not valid YAML"),
        ("schemes.yaml", "schemes: 5\n", "schemes.yaml: schemes: Input should be a valid tuple"),
    ],
)
async def test_unreadable_definitions_are_named_with_the_file_and_the_fault(
    tmp_path: Path, file: str, text: str, message: str
) -> None:
    definitions = tmp_path / "definitions"
    shutil.copytree(ROOT / "examples", definitions)
    (definitions / file).write_text(text)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "starter.py", "procedure", "list", cwd=ROOT,
        env={**os.environ, "RALLYCALL_DEFINITIONS_DIR": str(definitions)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output = (await process.communicate())[0].decode()
    assert process.returncode == 2, output
    assert "error: invalid definitions" in output and message in output and str(definitions / file) in output
