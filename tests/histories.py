"""Keeping workflow histories for replay, one folder per release: `tests/histories/<release>/`.

When a release is cut, `RALLYCALL_KEEP_HISTORIES=1 .venv/bin/python -m pytest tests/test_end_to_end.py
tests/test_procedures.py` records the histories those tests keep into the folder of the version in
pyproject.toml; `SHA256SUMS` there lists each file with its digest. A released folder is never
re-recorded: `tests/test_replay.py` fails if a kept file changes or disappears, and replays every
kept history on today's code (the rule for retiring a release's histories is written there).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from config import DEV_ENCRYPTION_KEYS, Settings, data_converter, release
from workflows.caller_index import CallerIndex
from workflows.dial_in_guard import DialInGuard
from workflows.pin_lease import PinLease
from workflows.procedure_run import ProcedureRun
from workflows.step_batch import StepBatch

FOLDER = Path(__file__).parent / "histories"
WORKFLOWS = [ProcedureRun, StepBatch, PinLease, CallerIndex, DialInGuard]


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem.split("@", 1)[1], path.read_text())


def replayer() -> Replayer:
    """Kept histories are encrypted with the dev key."""
    converter = data_converter(Settings(_env_file=None, encryption_keys=DEV_ENCRYPTION_KEYS))
    return Replayer(workflows=WORKFLOWS, data_converter=converter)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def releases() -> list[Path]:
    return sorted(folder for folder in FOLDER.iterdir() if folder.is_dir()) if FOLDER.exists() else []


def kept(folder: Path) -> dict[str, str]:
    """File name -> digest, as recorded when each history of this release was kept."""
    manifest = folder / "SHA256SUMS"
    if not manifest.exists():
        return {}
    rows = (line.split("  ", 1) for line in manifest.read_text().splitlines() if line.strip())
    return {name: sha for sha, name in rows}


def keep(name: str, history: WorkflowHistory) -> None:
    """Add a history to this release's folder, if asked to (RALLYCALL_KEEP_HISTORIES=1); never
    overwrite. The file is `NAME@WORKFLOW_ID.json`: replay needs the workflow ID its commands
    were made with."""
    if not os.environ.get("RALLYCALL_KEEP_HISTORIES"):
        return
    folder = FOLDER / release()
    if any(kept_name.split("@", 1)[0] == name for kept_name in kept(folder)):
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}@{history.workflow_id}.json"
    path.write_text(history.to_json())
    with (folder / "SHA256SUMS").open("a") as manifest:
        manifest.write(f"{digest(path)}  {path.name}\n")
