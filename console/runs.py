"""The runs list, from Temporal's visibility store: every run of a procedure, running or ended,
newest first, filtered on the search attributes the launcher and the workflow set."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast

from temporalio.client import Client, WorkflowExecutionStatus

from workflows import search_attributes as sa

StateFilter = Literal["", "running", "ended"]
PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
"""Procedure names and launchers' names: nothing that could change the meaning of a query."""
LIMIT = 200


@dataclass(frozen=True)
class RunFilter:
    state: StateFilter = ""
    procedure: str = ""
    launched_by: str = ""

    @classmethod
    def read(cls, state: str, procedure: str, launched_by: str) -> RunFilter:
        """ValueError names the filter that cannot be used."""
        if state not in ("", "running", "ended"):
            raise ValueError(f"state {state!r}: running or ended")
        for label, value in (("procedure", procedure), ("launched by", launched_by)):
            if value and not PLAIN.match(value):
                raise ValueError(f"{label} {value!r}: letters, digits and . _ @ + - only")
        return cls(cast(StateFilter, state), procedure, launched_by)

    def query(self) -> str:
        """A run stays "running" in visibility when its worker was killed for good: a run is
        ended when it says so or when Temporal no longer runs it."""
        parts = ['WorkflowType="ProcedureRun"']
        if self.state == "running":
            parts.append(f'{sa.STATE.name}="running" AND ExecutionStatus="Running"')
        elif self.state == "ended":
            parts.append(f'({sa.STATE.name}="ended" OR ExecutionStatus!="Running")')
        if self.procedure:
            parts.append(f'{sa.PROCEDURE.name}="{self.procedure}"')
        if self.launched_by:
            parts.append(f'{sa.LAUNCHED_BY.name}="{self.launched_by}"')
        return " AND ".join(parts)


@dataclass(frozen=True)
class RunRow:
    workflow_id: str
    procedure: str
    state: str
    """running, ended, or what Temporal says of a run that stopped without ending (terminated)."""
    started_at: datetime
    closed_at: datetime | None
    launched_by: str
    channel: str
    participants: int | None
    in_conference: int | None


async def list_runs(client: Client, run_filter: RunFilter) -> list[RunRow]:
    rows = []
    async for execution in client.list_workflows(run_filter.query(), limit=LIMIT):
        attributes = execution.typed_search_attributes
        state = attributes.get(sa.STATE) or "running"
        status = execution.status
        if state == "running" and status not in (None, WorkflowExecutionStatus.RUNNING):
            state = status.name.lower() if status else state
        rows.append(
            RunRow(
                workflow_id=execution.id,
                procedure=attributes.get(sa.PROCEDURE) or "",
                state=state,
                started_at=execution.start_time,
                closed_at=execution.close_time,
                launched_by=attributes.get(sa.LAUNCHED_BY) or "",
                channel=attributes.get(sa.CHANNEL) or "",
                participants=attributes.get(sa.PARTICIPANTS),
                in_conference=attributes.get(sa.IN_CONFERENCE),
            )
        )
    return sorted(rows, key=lambda row: row.started_at, reverse=True)
