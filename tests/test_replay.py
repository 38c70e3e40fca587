"""Histories recorded by released versions must replay on today's code: a change that would break
a run still open on a released build fails here before it reaches a worker.

The rule for versions (deploy/README.md says the same, for operators):
- Before a release, a change needs no patch: nothing runs that code anywhere.
- A release records its histories into `tests/histories/<release>/` (`tests/histories.py`), once.
- After a release, a change that would not replay one of them goes behind `workflow.patched(ID)`.
  Runs are pinned to the build they started on (Worker Versioning), so a patch matters for the
  long-lived helpers that move to new builds (PIN leases, caller index, dial-in guard) and for a
  run an operator moves to a fixed build; it is required for all, so that move stays possible.
- A release is retired once no run of its build can be open: its deployment version is drained
  (`temporal worker deployment describe-version` says DRAINED) and a run's longest life has passed
  since (the maximum duration, 4 h by default, plus 10 minutes of late answers). Then, in one
  release: its folder here is deleted and each patch it needed becomes
  `workflow.deprecate_patch(ID)`; in the release after that, the deprecated calls are removed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.histories import digest, kept, load, releases, replayer

HISTORIES = sorted(path for folder in releases() for path in folder.glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[f"{p.parent.name}/{p.stem}" for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    await replayer().replay_workflow(load(path))


@pytest.mark.parametrize("folder", releases(), ids=[f.name for f in releases()])
def test_kept_histories_are_never_re_recorded_or_dropped(folder: Path) -> None:
    recorded = kept(folder)
    assert recorded, f"{folder.name} keeps at least one recorded run"
    assert sorted(recorded) == sorted(p.name for p in folder.glob("*.json")), (
        "every kept history is in SHA256SUMS, and only those"
    )
    changed = [name for name, sha in recorded.items() if digest(folder / name) != sha]
    assert changed == [], "a released history was re-recorded: put the change behind workflow.patched"


def test_a_release_keeps_its_histories() -> None:
    assert releases(), "tests/histories/ keeps the histories of at least one release"
