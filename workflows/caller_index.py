"""Which running runs a caller's number belongs to, without the number in clear: keyed hashes
of numbers, spread over SHARDS workflows so a lookup is one query whatever a run's size.

A run registers its people's numbers when it starts and unregisters them when it closes;
entries also expire on their own, in case a run never closes. Each shard continues as new when
its history grows long, and ends when it holds nothing.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import VersioningBehavior

SHARDS = 16
IDLE_FOR = timedelta(hours=1)
CONTINUE_AS_NEW_AT_EVENTS = 5_000


def shard_id(task_queue: str, caller_key: str) -> str:
    """The shard holding this key, one index per deployment (its task queue)."""
    return f"{task_queue}-caller-index-{int(caller_key[:8], 16) % SHARDS:02d}"


class Registration(BaseModel):
    run_id: str
    keys: list[str]
    expires_at: datetime


class IndexState(BaseModel):
    runs_of: dict[str, dict[str, datetime]] = Field(default_factory=dict)
    """Caller key -> run IDs and when each entry expires."""


@workflow.defn(versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class CallerIndex:
    @workflow.init
    def __init__(self, state: IndexState) -> None:
        self.state = state

    @workflow.run
    async def run(self, state: IndexState) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: workflow.info().get_current_history_length() >= CONTINUE_AS_NEW_AT_EVENTS,
                    timeout=IDLE_FOR,
                    timeout_summary="idle",
                )
            self.forget_expired()
            if workflow.info().get_current_history_length() >= CONTINUE_AS_NEW_AT_EVENTS:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self.state)
            if not self.state.runs_of:
                await workflow.wait_condition(workflow.all_handlers_finished)
                return

    @workflow.signal
    def register(self, registration: Registration) -> None:
        for key in registration.keys:
            self.state.runs_of.setdefault(key, {})[registration.run_id] = registration.expires_at

    @workflow.signal
    def unregister(self, registration: Registration) -> None:
        for key in registration.keys:
            runs = self.state.runs_of.get(key, {})
            runs.pop(registration.run_id, None)
            if not runs:
                self.state.runs_of.pop(key, None)

    @workflow.query
    def runs_of(self, caller_key: str) -> list[str]:
        now = workflow.now()
        return sorted(run for run, expires in self.state.runs_of.get(caller_key, {}).items() if expires > now)

    def forget_expired(self) -> None:
        now = workflow.now()
        for key in list(self.state.runs_of):
            runs = {run: expires for run, expires in self.state.runs_of[key].items() if expires > now}
            if runs:
                self.state.runs_of[key] = runs
            else:
                del self.state.runs_of[key]
