"""No dev secret in production. Production is declared (RALLYCALL_ENVIRONMENT unset or
`production`), not guessed: every entry point (the worker, the callback server, the console, the
CLI, the codec server and the embedded stack itself) refuses to start with the embedded stack's
dev auth token, PIN secret or console secret, naming each variable to set, before connecting to
anything, whatever else is set."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINTS = [["worker.py"], ["-m", "callbacks"], ["-m", "console"],
                ["starter.py", "status", "conference-x"], ["-m", "codec", "serve", "--port", "0"],
                ["-m", "stack"]]  # fmt: skip
NAMES = ["worker", "callbacks", "console", "cli", "codec", "stack"]


def start(command: list[str], **variables: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("RALLYCALL_", "TWILIO_"))}
    environment |= {"RALLYCALL_DATA_DIR": "/nonexistent", "TEMPORAL_ADDRESS": "127.0.0.1:9", **variables}
    return subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("command", ENTRY_POINTS, ids=NAMES)
async def test_dev_secrets_are_refused_in_production_whatever_else_is_set(command: list[str]) -> None:
    refused, with_a_stand_in, declared, partly = await asyncio.gather(
        asyncio.to_thread(start, command),
        asyncio.to_thread(start, command, RALLYCALL_TWILIO_API_URL="http://127.0.0.1:9"),
        asyncio.to_thread(start, command, RALLYCALL_ENVIRONMENT="production"),
        asyncio.to_thread(start, command, TWILIO_AUTH_TOKEN="a-token", RALLYCALL_PIN_SECRET="s3cret-enough"),
    )  # four processes at once: each spends its second or two importing
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "refusing to start in production" in refused.stderr
    assert "cannot reach Temporal" not in refused.stdout + refused.stderr, "refused before connecting"
    assert with_a_stand_in.returncode == 2, "a Twilio stand-in's URL does not make it development"
    assert declared.returncode == 2
    for variable in ("TWILIO_AUTH_TOKEN", "RALLYCALL_PIN_SECRET", "RALLYCALL_CONSOLE_SECRET"):
        assert f"{variable} is the embedded dev value" in refused.stderr, refused.stderr
    assert partly.returncode == 2 and "RALLYCALL_CONSOLE_SECRET" in partly.stderr
    assert "TWILIO_AUTH_TOKEN" not in partly.stderr and "RALLYCALL_PIN_SECRET" not in partly.stderr


def test_the_embedded_defaults_are_fine_in_development() -> None:
    development = start(["worker.py"], RALLYCALL_ENVIRONMENT="development")
    assert "refusing to start" not in development.stderr, "it goes on (and fails to reach Temporal)"
    cli = start(["starter.py", "status", "conference-x"], RALLYCALL_ENVIRONMENT="development")
    assert cli.returncode == 1 and "cannot reach Temporal" in cli.stdout + cli.stderr


def test_an_environment_that_is_neither_is_refused_by_name() -> None:
    refused = start(["worker.py"], RALLYCALL_ENVIRONMENT="prod")
    assert refused.returncode == 2
    assert "worker: invalid settings:" in refused.stderr
    assert "RALLYCALL_ENVIRONMENT: Input should be 'production' or 'development'" in refused.stderr
