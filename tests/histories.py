"""Keeping workflow histories for replay: a history, once kept, is never re-recorded.

`RALLYCALL_KEEP_HISTORIES=1 .venv/bin/python -m pytest tests/test_end_to_end.py tests/test_procedures.py`
adds the histories those tests record under new names only; `SHA256SUMS` lists every kept file
with its digest, and `tests/test_replay.py` fails if a kept file changes or disappears.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from config import DEV_ENCRYPTION_KEYS, Settings, data_converter
from workflows.call_pacer import CallPacer
from workflows.caller_index import CallerIndex
from workflows.dial_in_guard import DialInGuard
from workflows.pin_lease import PinLease
from workflows.procedure_run import ProcedureRun
from workflows.step_batch import StepBatch

FOLDER = Path(__file__).parent / "histories"
MANIFEST = FOLDER / "SHA256SUMS"
WORKFLOWS = [ProcedureRun, StepBatch, PinLease, CallPacer, CallerIndex, DialInGuard]


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem.split("@", 1)[1], path.read_text())


def replayer() -> Replayer:
    """Kept histories are encrypted with the dev key (or, recorded before encryption, in clear)."""
    converter = data_converter(Settings(_env_file=None, encryption_keys=DEV_ENCRYPTION_KEYS))
    return Replayer(workflows=WORKFLOWS, data_converter=converter)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def kept() -> dict[str, str]:
    """File name -> digest, as recorded when each history was kept."""
    if not MANIFEST.exists():
        return {}
    rows = (line.split("  ", 1) for line in MANIFEST.read_text().splitlines() if line.strip())
    return {name: sha for sha, name in rows}


def keep(name: str, history: WorkflowHistory) -> None:
    """Add a history under a new name, if asked to (RALLYCALL_KEEP_HISTORIES=1); never overwrite.
    The file is `NAME@WORKFLOW_ID.json`: replay needs the workflow ID its commands were made with."""
    if not os.environ.get("RALLYCALL_KEEP_HISTORIES"):
        return
    if any(kept_name.split("@", 1)[0] == name for kept_name in kept()):
        return
    path = FOLDER / f"{name}@{history.workflow_id}.json"
    path.write_text(history.to_json())
    with MANIFEST.open("a") as manifest:
        manifest.write(f"{digest(path)}  {path.name}\n")
