"""The carrier's own log: one JSON line per thing that happened (a call placed, an SMS sent, a
webhook told, a fault injected), so tests and drills can read what the outside world saw."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path


class Journal:
    def __init__(self, path: Path | None) -> None:
        self.path = path

    def record(self, kind: str, fields: Mapping[str, object]) -> None:
        """Append `{"at": ..., "kind": kind, **fields}`; without a path, nothing is kept."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"at": datetime.now(UTC).isoformat(), "kind": kind, **fields}
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")
