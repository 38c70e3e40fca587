"""Benchmark: one conference at Twilio's bridge limit (250 destinations) through the whole
timeline, with the real worker, simulator, callback server and SMTP on loopback, on the
time-skipping server. Prints wall-clock figures, history size and peak memory.

    make bench            (or: .venv/bin/python -m bench.conference_scale [--people N])
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import yaml

from carrier.simulator import Scenario
from domain.events import EndRequest
from domain.run_view import RunView
from stack.loopback import eventually, harness, time_skipping_env
from workflows.procedure_run import ProcedureRun


def population(people: int) -> tuple[dict[str, object], Scenario]:
    contacts, answers = [], {}
    for n in range(people):
        work, home = f"+4121555{n:04d}", f"+4122555{n:04d}"
        contacts.append({"id": f"p{n}", "name": f"Person {n}", "voice_pro": work, "voice_home": home,
                         "mobile": f"+4179555{n:04d}", "email": f"p{n}@example.com"})  # fmt: skip
        answers[work if n % 3 == 0 else home] = "answer" if n % 3 != 2 else "busy"
    return {"contacts": contacts}, Scenario(ring_seconds=0.2, default="no-answer", numbers=answers)


def settled(report: RunView, medium: str, expected: int) -> bool:
    attempts = [a for p in report.people for a in p.attempts if a.medium == medium]
    return len(attempts) == expected and all(a.outcome != "pending" for a in attempts)


async def run(people: int) -> None:
    contacts, scenario = population(people)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        (tmp / "contacts.yaml").write_text(yaml.safe_dump(contacts))
        async with (
            time_skipping_env() as env,
            harness(env.client, tmp, tmp / "contacts.yaml", scenario) as h,
            h.worker(),
        ):
            ids = [f"p{n}" for n in range(people)]
            began = time.perf_counter()
            launched = await h.launch(*ids)
            launch_s = time.perf_counter() - began
            report = await eventually(
                lambda: h.roster(launched), lambda r: settled(r, "voice_pro", people), 120
            )
            work_s = time.perf_counter() - began
            await env.sleep(report.started_at + timedelta(seconds=61) - await env.get_current_time())
            fallback = people - len(range(0, people, 3))
            began = time.perf_counter()
            await eventually(lambda: h.roster(launched), lambda r: settled(r, "voice_home", fallback), 120)
            home_s = time.perf_counter() - began
            await env.sleep(timedelta(seconds=60))
            began = time.perf_counter()
            await eventually(
                lambda: h.roster(launched),
                lambda r: sum(len(p.notifications) for p in r.people) == 2 * people,
                120,
            )
            notify_s = time.perf_counter() - began
            handle = h.handle(launched)
            await handle.execute_update(ProcedureRun.end, EndRequest())
            final = await handle.result()
            history = await handle.fetch_history()
    events = len(history.events)
    size = sum(event.ByteSize() for event in history.events)  # what Temporal counts
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"destinations                 {people} (calls paced at {h.settings.calls_per_second:g} per second)"
    )
    print(f"launch (validate, PIN, start) {launch_s:8.2f} s")
    print(f"all work calls settled       {work_s:8.2f} s after launch")
    print(f"all home calls settled       {home_s:8.2f} s after the 1-minute timer")
    print(f"all SMS + email sent         {notify_s:8.2f} s after the 2-minute timer ({2 * people} messages)")
    print(f"reached by phone             {sum(p.answered() for p in final.people)}")
    print(f"history                      {events} events, {size / 1024:.0f} KiB "
          f"({events / people:.1f} events per destination; Temporal warns at 10,240 / 10 MiB)")  # fmt: skip
    print(f"peak RSS of this process     {peak_mb:.0f} MiB (worker, simulator, SMTP and callbacks together)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=250)
    asyncio.run(run(parser.parse_args().people))


if __name__ == "__main__":
    main()
