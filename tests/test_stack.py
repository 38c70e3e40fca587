"""The embedded stack as `make stack` runs it: its own dev server (file-backed), worker, callback
server, mailbox, and either the simulator or any Twilio-compatible server given by
RALLYCALL_TWILIO_API_URL."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from callbacks.server import serve
from carrier.simulator import CarrierSimulator
from config import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, Settings
from domain.events import EndRequest
from launching import LaunchRequest, launch, red_button
from stack.embedded import running_stack
from stack.ports import free_port
from tests.support import DEFINITIONS, SCENARIO, eventually
from workflows.procedure_run import ProcedureRun

ROOT = Path(__file__).resolve().parent.parent


def red_button_for(to: list[str], contacts_file: Path) -> LaunchRequest:
    red = DEFINITIONS.procedure("conference-call")
    return red_button(red, DEFINITIONS.schemes, to, "", contacts_file=contacts_file)


def stack_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **overrides: object) -> Settings:
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")
    callback_port = free_port()
    return Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        ui_port=free_port(),
        callback_addr=f"127.0.0.1:{callback_port}",
        public_url=f"http://127.0.0.1:{callback_port}",
        console_addr=f"127.0.0.1:{free_port()}",
        calls_per_second=50,
        **overrides,  # type: ignore[arg-type]
    )


async def test_any_twilio_compatible_server_drives_the_roster(
    tmp_path: Path, contacts_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = CarrierSimulator(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, SCENARIO, tmp_path / "elsewhere.jsonl")
    runner = await serve(elsewhere.app(), "127.0.0.1", 0)
    api_url = "http://{}:{}".format(*runner.addresses[0][:2])
    config = stack_settings(tmp_path, monkeypatch, twilio_api_url=api_url)
    try:
        async with running_stack(config) as stack:
            assert stack.simulator_url is None and stack.twilio_api_url == api_url, "no simulator of its own"
            launched = await launch(stack.client, config, red_button_for(["alice"], contacts_file))
            handle = stack.client.get_workflow_handle_for(ProcedureRun.run, launched.workflow_id)
            await eventually(lambda: handle.query(ProcedureRun.view), lambda r: r.people[0].in_conference)
            assert [c.to for c in elsewhere.calls.values()] == ["+41215550101"]
            await handle.execute_update(ProcedureRun.end, EndRequest())
            await handle.result()
        assert (config.data_dir / "temporal.db").exists(), "Temporal's data is file-backed"
        assert not (config.data_dir / "carrier.jsonl").exists()
    finally:
        await runner.cleanup()


async def test_embedded_simulator_and_the_documented_dial_command(
    tmp_path: Path, contacts_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = stack_settings(tmp_path, monkeypatch, scenario=ROOT / "examples" / "scenario.yaml")
    async with running_stack(config) as stack:
        assert stack.simulator_url and (config.data_dir / "simulator.url").read_text() == stack.simulator_url
        launched = await launch(stack.client, config, red_button_for(["chloe"], contacts_file))
        assert launched.pin
        dial = ["-m", "carrier.simulator", "dial", "--from", "+41795550103", "--digits", launched.pin]
        process = await asyncio.create_subprocess_exec(
            sys.executable, *dial, cwd=ROOT, env={**os.environ, "RALLYCALL_DATA_DIR": str(config.data_dir)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output = (await process.communicate())[0].decode()
        assert process.returncode == 0, output
        assert f"in conference {launched.workflow_id}" in output
        handle = stack.client.get_workflow_handle_for(ProcedureRun.run, launched.workflow_id)
        report = await eventually(
            lambda: handle.query(ProcedureRun.view), lambda r: r.people[0].in_conference
        )
        assert report.pin_attempts[0].accepted
        await handle.execute_update(ProcedureRun.end, EndRequest())
        await handle.result()
    assert (config.data_dir / "carrier.jsonl").exists()
