"""Histories recorded by earlier versions must replay on today's code: a change that would break
running conferences fails here before it reaches a worker. Re-record with
`RALLYCALL_SAVE_HISTORY=1 .venv/bin/python -m pytest tests/test_end_to_end.py` only when the
change is guarded by `workflow.patched` or no old conference can still be running."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.pin_lease import PinLease
from workflows.procedure_run import ProcedureRun

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[ProcedureRun, PinLease], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)
