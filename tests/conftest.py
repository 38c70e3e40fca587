"""Fixtures of real parts only: Temporal servers from PyPI, aiosmtpd on loopback, the twilio SDK
against the carrier simulator, and the callback server relaying its signed callbacks."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from stack.dev_server import start_dev_env
from tests.support import CONTACTS, time_skipping_env

os.environ["RALLYCALL_ENVIRONMENT"] = "development"
"""The tests run on the embedded dev secrets, as `make stack` does; the tests of production's
refusals start their processes without it."""


@pytest.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the test's own (it starts in a fraction of a second): virtual
    time is global to a server, so no test's leftovers can hold another's clock."""
    async with time_skipping_env() as env:
        yield env


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_env()
    yield env
    await env.shutdown()


@pytest.fixture
def contacts_file(tmp_path: Path) -> Path:
    path = tmp_path / "contacts.yaml"
    path.write_text(yaml.safe_dump(CONTACTS, allow_unicode=True), encoding="utf-8")
    return path
