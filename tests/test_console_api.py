"""The CLI on a launcher's laptop, holding a personal token and no other secret: it launches,
reads and ends a conference through the console's API, as the token's account, in production
mode (RALLYCALL_ENVIRONMENT unset) and with no route to Temporal. On the dev server, a real
console and worker, the carrier simulator."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from temporalio.testing import WorkflowEnvironment

from console.app import build_app, serve
from console.auth import Users
from launching import new_run_id
from stack.ports import free_port
from tests.support import DEFINITIONS, Harness, eventually, harness, starter_in
from workflows import search_attributes as sa


@dataclass
class Console:
    url: str
    users: Users
    h: Harness


@pytest.fixture
async def console(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> AsyncIterator[Console]:
    async with harness(dev_env.client, tmp_path, contacts_file) as h, h.worker():
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        settings = h.settings.model_copy(update={"contacts_file": contacts_file, "console_url": url})
        users = Users(tmp_path / "users.json", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        users.add("lea", "launcher", "a long enough password")
        users.add("vic", "viewer", "a long enough password")
        runner = await serve(build_app(dev_env.client, settings, users), "127.0.0.1", port)
        try:
            yield Console(url, users, h)
        finally:
            await runner.cleanup()


async def laptop(console: Console, token: str, *args: str, url: str | None = None) -> tuple[int, str]:
    """`starter.py` with the token and the console's URL only: no key, no PIN secret, no
    environment declared (production), and a Temporal address where nothing listens."""
    variables = {
        k: v for k, v in os.environ.items() if not k.startswith(("RALLYCALL_", "TWILIO_", "TEMPORAL_"))
    }
    variables |= {"RALLYCALL_CONSOLE_URL": url or console.url, "RALLYCALL_CONSOLE_TOKEN": token,
                  "TEMPORAL_ADDRESS": "127.0.0.1:9", "RALLYCALL_DATA_DIR": "/nonexistent"}  # fmt: skip
    code, out, err = await starter_in(variables, *args)
    return code, out + err


async def test_a_laptop_with_only_a_token_launches_reads_and_ends_through_the_console(
    console: Console,
) -> None:
    _, token = console.users.new_token("lea", "laptop")
    code, output = await laptop(console, token, "conference", "--to", "alice", "--welcome", "Flood", "--json",
                                "--idempotency-key", "INC-1")  # fmt: skip
    assert code == 0, output
    launched = json.loads(output)
    assert launched["pin"].isdigit() and launched["already_launched"] is False
    run_id = launched["workflow_id"]
    described = await console.h.client.get_workflow_handle(run_id).describe()
    attributes = described.typed_search_attributes
    assert (attributes.get(sa.LAUNCHED_BY), attributes.get(sa.CHANNEL)) == ("lea", "cli"), "audited as lea"
    await eventually(lambda: console.h.called_numbers(), lambda numbers: "+41215550101" in numbers)

    code, output = await laptop(
        console, token, "conference", "--to", "alice", "--json", "--idempotency-key", "INC-1"
    )
    assert code == 0 and json.loads(output)["workflow_id"] == run_id, (
        "the key launches once through the API too"
    )

    code, output = await laptop(console, token, "status", run_id, "--json")
    assert code == 0 and json.loads(output)["people"][0]["id"] == "alice"
    code, output = await laptop(console, token, "status", run_id, "--jsonl")
    assert code == 0 and [json.loads(line).get("id") for line in output.splitlines()] == [None, "alice"]
    code, output = await laptop(console, token, "status", run_id, "--json", "--offset", "1", "--limit", "5")
    page = json.loads(output)
    assert code == 0 and (page["people"], page["people_offset"], page["people_total"]) == ([], 1, 1), "a page"
    code, output = await laptop(console, token, "end", run_id, "--reason", "drill over")
    ended = json.loads(output)
    assert code == 0 and ended["state"] == "ended" and ended["ended_by"] == "lea"
    code, output = await laptop(console, token, "end", run_id)
    assert code == 3, output

    key = "INC-2"  # its run's ID follows from the key, so it can be ended while --wait follows it
    following = asyncio.create_task(laptop(console, token, "conference", "--to", "bruno", "--wait",
                                           "--idempotency-key", key))  # fmt: skip
    waited_for = new_run_id(DEFINITIONS.procedure("conference-call"), datetime.now(UTC), key)
    await eventually(lambda: console.h.called_numbers(), lambda numbers: "+41215550102" in numbers)
    code, _ = await laptop(console, token, "end", waited_for)
    assert code == 0
    code, output = await asyncio.wait_for(following, 30)
    assert code == 0 and "calling Bruno Keller on work phone" in output, output


async def test_the_console_api_refuses_what_the_browser_would(console: Console) -> None:
    _, viewer = console.users.new_token("vic")
    code, output = await laptop(console, viewer, "conference", "--to", "alice")
    assert code == 1 and "the console refused: your role cannot launch" in output

    record, token = console.users.new_token("lea")
    code, output = await laptop(console, token, "conference", "--to", "zoe")
    assert code == 2 and "unknown contact 'zoe'" in output, "a refused launch exits 2, as it does locally"
    code, output = await laptop(console, token, "list")
    assert code == 2 and "list: needs Temporal" in output
    code, output = await laptop(
        console, token, "conference", "--to", "alice", url="http://console.example.org"
    )
    assert code == 2 and "the token would cross the network in clear" in output

    assert console.users.revoke_tokens("lea", record.id) == 1
    code, output = await laptop(console, token, "status", "conference-x")
    assert code == 1 and "unknown or revoked token" in output
    code, output = await laptop(console, "rc_0000_forged", "status", "conference-x")
    assert code == 1 and "unknown or revoked token" in output
