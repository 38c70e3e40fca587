"""A launch is refused, before any PIN is promised, when the workers could not read what it would
seal or could not check its PIN: their secrets' fingerprints are on their build's worker
deployment version, on the dev server as `make stack` starts it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from codec.aes import new_key
from config import DEV_ENCRYPTION_KEYS, Settings
from domain.errors import InvalidLaunch
from key_checks import current_workers, fingerprint
from launching import Launched, launch, red_button
from stack.ports import free_port
from tests.support import DEFINITIONS, ROOT, Harness, eventually, harness, run_starter


async def launch_as(h: Harness, settings: Settings) -> Launched:
    """Alice's red button from a launcher with these settings (its own secrets)."""
    red = DEFINITIONS.procedure("conference-call")
    request = red_button(red, DEFINITIONS.schemes, ["alice"], "", contacts_file=h.contacts_file)
    return await launch(h.client, settings, request)


async def runs_of(h: Harness) -> list[str]:
    query = f'TaskQueue="{h.settings.task_queue}" AND WorkflowType="ProcedureRun"'
    return [execution.id async for execution in h.client.list_workflows(query)]


async def test_a_launch_the_workers_could_not_read_is_refused_before_any_pin(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    async with harness(dev_env.client, tmp_path, contacts_file) as h, h.worker():
        found = await eventually(lambda: current_workers(h.client, h.settings), bool)
        assert found is not None, "the worker published its fingerprints"
        build, published = found
        assert build == h.settings.build_id
        dev_secret = DEV_ENCRYPTION_KEYS.split(":", 1)[1]
        assert list(published.keys) == ["dev"] and dev_secret not in published.model_dump_json()
        assert published.keys["dev"] == fingerprint(h.settings.encryption_key_ring[0].secret)

        other_key = new_key("2027")
        for settings, problem in [
            (h.settings.model_copy(update={"encryption_keys": SecretStr(other_key)}),
             r"do not hold the key this launch would encrypt with \('2027'; they hold 'dev'\)"),
            (h.settings.model_copy(update={"pin_secret": "another-pin-secret"}),
             "RALLYCALL_PIN_SECRET differs from the one of the workers"),
        ]:  # fmt: skip
            with pytest.raises(InvalidLaunch, match=problem):
                await launch_as(h, settings)
        rotating = SecretStr(f"{DEV_ENCRYPTION_KEYS},{other_key}")
        launched = await launch_as(h, h.settings.model_copy(update={"encryption_keys": rotating}))
        assert launched.pin, "sealed with 'dev', which the workers hold: launched"
        h.launched += [launched.workflow_id]
        started = await eventually(lambda: runs_of(h), lambda ids: launched.workflow_id in ids)
        assert started == [launched.workflow_id], "the refused launches started nothing"

        other_pin_secret = {"RALLYCALL_PIN_SECRET": "not-the-workers"}
        code, out, err = await run_starter(dev_env, h, "conference", "--contacts", str(h.contacts_file),
                                           "--to", "bruno", env_vars=other_pin_secret)  # fmt: skip
        assert code == 2 and "RALLYCALL_PIN_SECRET differs from the one of the workers" in out + err

        callbacks = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callbacks", cwd=ROOT, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **other_pin_secret, "RALLYCALL_TASK_QUEUE": h.settings.task_queue,
                 "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
                 "RALLYCALL_CALLBACK_ADDR": f"127.0.0.1:{free_port()}"},
        )  # fmt: skip
        _, refused = await asyncio.wait_for(callbacks.communicate(), 60)
        assert callbacks.returncode == 2, refused.decode()
        assert "refusing to start" in refused.decode() and "RALLYCALL_PIN_SECRET differs" in refused.decode()
