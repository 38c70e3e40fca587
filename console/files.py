"""Files the console replicas share (the users file and the sign-in failures beside it): one
writer at a time, across processes, so that a change read, made and written by one replica or by
`python -m console users` is never lost to another's."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold `path`'s lock (an advisory `flock` on `.NAME.lock` beside it) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
