"""Kill the worker (SIGKILL, as a crash would) after the first calls; the home round's timer fires
while no worker is alive; a new worker finishes the conference: the home calls (before the
step's deadline), SMS and emails all happen, each exactly once."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import aiohttp
from temporalio.testing import WorkflowEnvironment

from domain.events import EndRequest
from stack.ports import free_port
from tests.support import Harness, confcall_in_seconds, eventually, harness
from workflows.procedure_run import ProcedureRun

ROOT = Path(__file__).resolve().parent.parent
SLOW_ENOUGH_TO_CRASH = confcall_in_seconds(home_after=3, deadline=15)
"""A workflow task the killed worker had started times out after 10 s (Temporal's default):
the home round must still be before the deadline then."""


def start_worker(h: Harness, metrics_port: int = 0) -> subprocess.Popen[bytes]:
    variables = {
        **h.worker_environment(),
        **({"RALLYCALL_METRICS_ADDR": f"127.0.0.1:{metrics_port}"} if metrics_port else {}),
    }
    return subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=variables)


async def test_killed_worker_loses_nothing_and_sends_nothing_twice(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    async with harness(dev_env.client, tmp_path, contacts_file) as h:
        worker = start_worker(h)
        try:
            launched = await h.launch("alice", "bruno", "chloe", "dan", definitions=SLOW_ENOUGH_TO_CRASH)
            await eventually(h.called_numbers, lambda calls: len(calls) == 3, seconds=15)
            await eventually(
                lambda: h.roster(launched),
                lambda r: all(a.call_sid for p in r.people for a in p.attempts),
            )
            worker.send_signal(signal.SIGKILL)
            worker.wait()

            await asyncio.sleep(3)  # the home round's timer fires on the server while no worker is alive
            assert len(h.called_numbers()) == 3 and h.texted_numbers() == []

            metrics_port = free_port()
            worker = start_worker(h, metrics_port)
            report = await eventually(
                lambda: h.roster(launched),
                lambda r: sum(len(p.notifications) for p in r.people) == 7,
                seconds=30,
            )
            work, home = ["+41215550101", "+41215550102", "+41215550103"], ["+41215550112", "+41215550113"]
            assert Counter(h.called_numbers()) == Counter([*work, *home, "+41215550114"]), "each call once"
            assert Counter(h.texted_numbers()) == Counter(
                ["+41795550101", "+41795550102", "+41795550103", "+41795550104"]
            ), "each SMS sent exactly once"
            assert h.mailbox.handler.deliveries == 3, "each email delivered exactly once"
            assert all(len(p.notifications) == (2 if p.id != "dan" else 1) for p in report.people)
            metrics = await eventually(
                lambda: scrape(metrics_port), lambda text: "rallycall_calls_placed" in text
            )
            placed = re.search(r'rallycall_calls_placed\{[^}]*objective="conference"[^}]*\} (\d+)', metrics)
            assert placed and placed[1] == "3", (
                "the restarted worker placed the three home calls, and says so"
            )

            handle = h.handle(launched)
            await handle.execute_update(ProcedureRun.end, EndRequest())
            await handle.result()
        finally:
            worker.kill()
            worker.wait()


async def scrape(port: int) -> str:
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as response,
        ):
            return await response.text()
    except aiohttp.ClientError:
        return ""
