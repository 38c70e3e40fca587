"""Histories recorded by earlier versions must replay on today's code: a change that would break
running conferences fails here before it reaches a worker. Incompatible workflow changes go
behind `workflow.patched`; a kept history is never re-recorded (see `tests/histories.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.histories import FOLDER, digest, kept, load, replayer

HISTORIES = sorted(FOLDER.glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    await replayer().replay_workflow(load(path))


def test_kept_histories_are_never_re_recorded_or_dropped() -> None:
    recorded = kept()
    assert recorded, "tests/histories/ keeps at least one recorded run"
    assert sorted(recorded) == [p.name for p in HISTORIES], (
        "every kept history is in SHA256SUMS, and only those"
    )
    changed = [name for name, sha in recorded.items() if digest(FOLDER / name) != sha]
    assert changed == [], "a kept history was re-recorded: add a new one instead, behind workflow.patched"
