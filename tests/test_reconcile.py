"""Callbacks get lost (a server restart, a Temporal blip): the run does not depend on every one
arriving. Before each round and each deadline it asks the carrier (Call and Conference
Participant resources) and its roster converges to the carrier's truth."""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from carrier.simulator.client import open_fault_windows
from domain.events import EndRequest
from tests.support import confcall_in_seconds, eventually, harness
from workflows.procedure_run import ProcedureRun

HOME = {"alice": "+41215550111", "bruno": "+41215550112"}
SLOWER = confcall_in_seconds(home_after=3, deadline=10)
"""A call rings 1 s here; its lost final callback is overdue 3 s later: the carrier is asked."""


async def test_lost_callbacks_are_made_good_from_the_carrier(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    async with harness(dev_env.client, tmp_path, contacts_file) as h, h.worker():
        await open_fault_windows(h.simulator_url, webhooks_paused_for_s=1.5)
        launched = await h.launch("alice", "bruno", definitions=SLOWER)
        view = await eventually(lambda: h.roster(launched), lambda r: bool(h.carrier_entries("webhook-lost")))
        assert view.person("alice").attempts[0].outcome == "pending", "alice answered, but nobody told us"

        view = await eventually(
            lambda: h.roster(launched),
            lambda r: any(a.placed_at for a in r.person("bruno").attempts[1:]),
            seconds=15,
        )
        alice, bruno = view.person("alice"), view.person("bruno")
        assert alice.attempts[0].outcome == "answered" and alice.in_conference, "the carrier says she is in"
        assert bruno.attempts[0].outcome == "no-answer", "and that his work phone rang out"
        called = h.called_numbers()
        assert HOME["bruno"] in called and HOME["alice"] not in called, "home call only for who is not in"

        handle = h.handle(launched)
        await handle.execute_update(ProcedureRun.end, EndRequest())
        final = await handle.result()
        assert not final.person("alice").in_conference
