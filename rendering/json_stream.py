"""A run's view as one JSON document whose people are written as they are read: `status
--json`, the console's API and its JSON report, at any size."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from domain.run_view import PersonView, RunView


async def view_json(
    summary: RunView,
    people: AsyncIterator[PersonView],
    *,
    indent: int | None = None,
    extra: dict[str, Any] | None = None,
) -> AsyncIterator[str]:
    """The run's view as JSON with `people` filled from `people` as they come (with `extra`
    fields, a page's place); `indent` 2 writes it as `status --json` prints it (a person a line)."""
    fields = summary.model_dump(mode="json", exclude={"people"}) | (extra or {})
    head = json.dumps(fields, indent=indent, default=str, separators=None if indent else (",", ":"))
    if indent:
        yield head[: -len("\n}")] + ',\n  "people": ['
        separator, end = "\n    ", "\n  ]\n}\n"
    else:
        yield head[: -len("}")] + ',"people":['
        separator, end = "", "]}"
    async for person in people:
        yield separator + person.model_dump_json()
        separator = ",\n    " if indent else ","
    yield end
