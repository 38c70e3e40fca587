"""The benchmark's scenarios at a few people each, on the dev server, so `make bench` cannot rot:
each runs to the end and measures what it says; only the correctness figures must pass here
(the timing goals are for `make bench` on an unshared machine)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from bench import scale
from bench.conference_scale import table

CORRECTNESS = ("PINs unique", "calls in any 1 s", "status accounts for", "largest history", "most pending",
               "callers admitted", "sent twice")  # fmt: skip


def assert_correct(result: scale.Result) -> None:
    lines = "\n".join(table([result]))
    for figure in result.figures:
        if figure.name.startswith(CORRECTNESS):
            assert figure.passed, f"{figure.name}: {figure.measured}\n{lines}"
    assert all(figure.measured for figure in result.figures), lines


async def test_conference_timeline_and_the_plain_loop(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    result = await scale.conference_timeline(
        dev_env.client, tmp_path, people=12, home_after=timedelta(seconds=4), deadline=timedelta(seconds=8),
        ring_seconds=1,
    )  # fmt: skip
    assert_correct(result)
    assert "(b) rallycall / plain loop" in [f.name for f in result.figures]


async def test_many_conferences_on_one_worker(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    result = await scale.many_conferences(
        dev_env.client, tmp_path, conferences=3, size=3, home_after=timedelta(seconds=5),
        deadline=timedelta(seconds=10),
    )  # fmt: skip
    assert_correct(result)


async def test_dial_in_latency(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    assert_correct(await scale.dial_in(dev_env.client, tmp_path, conferences=2, callers=4))
