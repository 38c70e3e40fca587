"""Nobody the scheme wanted is left out silently. With every calls worker stopped until the
deadline, no call is placed, and each person's work and home phone says why: in `status --json`,
the terminal timeline, the console's report and the `rallycall_calls_not_placed` metric. The
PIN messages still go out at the deadline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from console.report import report_csv
from domain.events import EndRequest
from stack.ports import free_port
from tests.support import FAST, ROOT, eventually, harness, run_starter
from tests.test_worker_crash import scrape
from workflows.calling import BEFORE_ITS_TURN, NO_TURN
from workflows.procedure_run import ProcedureRun

EXPECTED = {
    ("alice", "voice_pro"): NO_TURN,
    ("bruno", "voice_pro"): NO_TURN,
    ("alice", "voice_home"): BEFORE_ITS_TURN,  # their work call never got its turn, nor rang out
    ("bruno", "voice_home"): BEFORE_ITS_TURN,
    ("dan", "voice_home"): NO_TURN,  # no work phone: his home call waited from +2 s
}


async def test_with_no_calls_worker_every_call_the_scheme_wanted_says_why(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    async with harness(dev_env.client, tmp_path, contacts_file) as h:
        metrics = free_port()
        worker = subprocess.Popen(  # noqa: ASYNC220 (ended in `finally`)
            [sys.executable, "worker.py", "--serve", "runs"],
            cwd=ROOT,
            env={**h.worker_environment(), "RALLYCALL_METRICS_ADDR": f"127.0.0.1:{metrics}"},
        )
        try:
            launched = await h.launch("alice", "bruno", "dan", definitions=FAST)
            view = await eventually(
                lambda: h.roster(launched),
                lambda r: len([a for p in r.people for a in p.attempts if a.outcome != "pending"]) == 5,
                seconds=30,
            )
            assert h.called_numbers() == [], "no calls worker: nothing reached the carrier"
            shown = {(p.id, a.medium): (a.outcome, a.error) for p in view.people for a in p.attempts}
            assert shown == {key: ("not-placed", why) for key, why in EXPECTED.items()}
            await eventually(h.texted_numbers, lambda texted: len(texted) == 3)

            code, out, _ = await run_starter(dev_env, h, "status", launched.workflow_id, "--json")
            status = json.loads(out)
            assert code == 0 and sorted(
                (p["id"], a["medium"], a["error"]) for p in status["people"] for a in p["attempts"]
            ) == sorted((pid, medium, why) for (pid, medium), why in EXPECTED.items())
            _, timeline, _ = await run_starter(dev_env, h, "status", launched.workflow_id)
            assert f"home phone: not called ({NO_TURN})" in timeline, timeline
            report = report_csv(view)
            assert report.count(NO_TURN) == 3 and report.count(BEFORE_ITS_TURN) == 2, report

            text = await eventually(lambda: scrape(metrics), lambda t: "rallycall_calls_not_placed" in t)
            counted = re.findall(r'rallycall_calls_not_placed\{[^}]*reason="deadline"[^}]*\} (\d+)', text)
            assert counted == ["5"], text
            await h.handle(launched).execute_update(ProcedureRun.end, EndRequest())
        finally:
            worker.kill()
            worker.wait()
