"""What the tests share: the people and phones of the test scenario, fast definitions, and the
loopback setup of real parts from `stack.loopback`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from carrier.simulator import Scenario
from config import EXAMPLES
from procedures.definitions import Definitions, SchemeDefinition, SchemeMedium, load_definitions
from stack import loopback
from stack.loopback import Bridged, Harness, eventually, time_skipping_env

__all__ = ["CONTACTS", "DEFINITIONS", "FAST", "SCENARIO", "Bridged", "Harness", "eventually", "harness",
           "time_skipping_env"]  # fmt: skip


CONTACTS = {
    "contacts": [
        {
            "id": "alice",
            "name": "Alice Martin",
            "voice_pro": "+41215550101",
            "voice_home": "+41215550111",
            "mobile": "+41795550101",
            "email": "alice@example.com",
        },
        {
            "id": "bruno",
            "name": "Bruno Keller",
            "voice_pro": "+41215550102",
            "voice_home": "+41215550112",
            "mobile": "+41795550102",
            "email": "bruno@example.com",
        },
        {
            "id": "chloe",
            "name": "Chloé Rochat",
            "voice_pro": "+41215550103",
            "voice_home": "+41215550113",
            "mobile": "+41795550103",
            "email": "chloe@example.com",
        },
        {"id": "dan", "name": "Dan Home-Only", "voice_home": "+41215550114", "mobile": "+41795550104"},
    ]
}
SCENARIO = Scenario(
    ring_seconds=0.05,
    default="no-answer",
    numbers={
        "+41215550101": "answer",
        "+41215550102": "no-answer",
        "+41215550112": "answer",
        "+41215550103": "busy",
        "+41215550113": "machine",
        "+41215550114": "answer",
    },
)


DEFINITIONS = load_definitions(EXAMPLES)
"""The shipped definitions: the red button is `conference-call` with the CONFCALL scheme."""


def confcall_in_seconds(home_after: float, deadline: float) -> Definitions:
    """The red button on a real-time clock, for end-to-end runs on the dev server."""
    media = (
        SchemeMedium(medium="voice_pro"),
        SchemeMedium(medium="voice_home", after=timedelta(seconds=home_after)),
    )
    fast = SchemeDefinition(name="CONFCALL", media=media, ring_timeout=timedelta(seconds=1))
    schemes = DEFINITIONS.schemes.model_copy(
        update={"schemes": tuple(fast if s.name == "CONFCALL" else s for s in DEFINITIONS.schemes.schemes)}
    )
    red = DEFINITIONS.procedure("conference-call")
    step = red.steps[0].model_copy(update={"deadline": timedelta(seconds=deadline)})
    return Definitions(schemes=schemes, procedures={red.name: red.model_copy(update={"steps": (step,)})})


FAST = confcall_in_seconds(home_after=2, deadline=4)


def harness(
    client: Client,
    tmp_path: Path,
    contacts_file: Path,
    scenario: Scenario = SCENARIO,
    calls_per_second: float = 100,
    **settings: Any,
) -> contextlib.AbstractAsyncContextManager[Harness]:
    """The loopback setup with the test scenario's phones."""
    return loopback.harness(client, tmp_path, contacts_file, scenario, calls_per_second, **settings)


ROOT = Path(__file__).resolve().parent.parent


async def run_starter(
    env: WorkflowEnvironment, h: Harness, *args: str, env_vars: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """`starter.py` against the dev server at the harness's task queue and call rate: exit code,
    stdout, stderr."""
    variables = {
        **os.environ,
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "RALLYCALL_TASK_QUEUE": h.settings.task_queue,
        "RALLYCALL_CALLS_PER_SECOND": str(h.settings.calls_per_second),
        **(env_vars or {}),
    }
    return await starter_in(variables, *args)


async def starter_in(variables: dict[str, str], *args: str) -> tuple[int, str, str]:
    """`starter.py` with exactly this environment: exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "starter.py", *args, cwd=ROOT, env=variables,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
