"""No dev secret in production: against the real Twilio (no RALLYCALL_TWILIO_API_URL), the
worker, the callback server and the console refuse to start with the embedded stack's dev
auth token, PIN secret or console secret, naming each variable to set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINTS = [["worker.py"], ["-m", "callbacks"], ["-m", "console"]]


def start(command: list[str], **variables: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("RALLYCALL_", "TWILIO_"))}
    environment |= {"RALLYCALL_DATA_DIR": "/nonexistent", "TEMPORAL_ADDRESS": "127.0.0.1:9", **variables}
    return subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("command", ENTRY_POINTS, ids=["worker", "callbacks", "console"])
def test_dev_secrets_are_refused_against_the_real_twilio(command: list[str]) -> None:
    refused = start(command)
    assert refused.returncode == 2
    for variable in ("TWILIO_AUTH_TOKEN", "RALLYCALL_PIN_SECRET", "RALLYCALL_CONSOLE_SECRET"):
        assert f"{variable} is the embedded dev value" in refused.stderr, refused.stderr
    partly = start(command, TWILIO_AUTH_TOKEN="a-real-token", RALLYCALL_PIN_SECRET="s3cret-enough-for-a-test")
    assert partly.returncode == 2 and "RALLYCALL_CONSOLE_SECRET" in partly.stderr
    assert "TWILIO_AUTH_TOKEN" not in partly.stderr and "RALLYCALL_PIN_SECRET" not in partly.stderr


def test_the_embedded_defaults_are_fine_against_a_simulator() -> None:
    against_simulator = start(["worker.py"], RALLYCALL_TWILIO_API_URL="http://127.0.0.1:9")
    assert "refusing to start" not in against_simulator.stderr, "it goes on (and fails to reach Temporal)"
