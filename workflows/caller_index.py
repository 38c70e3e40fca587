"""Which running runs a caller's number belongs to, without the number in clear: keyed hashes
of numbers, spread over SHARDS workflows so a lookup is one query whatever a run's size.

Each shard holds at most ENTRIES_AT_MOST entries (a number in a run), so its state (carried
through continue-as-new) stays under Temporal's 256 KB payload warning whatever the load. What
a full shard is given goes on to its next link (`<shard>-1`, then `-2`...), a workflow it
starts as it fills: the index grows with the numbers of the conferences running, a link at a
time, and a lookup asks the links one after another only while they say more follow.

A run registers its people's numbers when it starts and unregisters them when it closes;
entries also expire on their own, in case a run never closes. Each link continues as new when
its history grows long, and ends when it holds nothing and no entry it passed on is still due.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

SHARDS = 16
ENTRIES_AT_MOST = 1_500
"""Entries (a number's key and a run) one link holds: about 116 bytes each in its state, so
at most 175 KB."""
IDLE_FOR = timedelta(hours=1)
CONTINUE_AS_NEW_AT_EVENTS = 5_000


def shard_id(task_queue: str, caller_key: str, link: int = 0) -> str:
    """The link of the shard holding this key, one index per deployment (its task queue)."""
    return link_id(task_queue, int(caller_key[:8], 16) % SHARDS, link)


def link_id(task_queue: str, shard: int, link: int = 0) -> str:
    name = f"{task_queue}-caller-index-{shard:02d}"
    return name if link == 0 else f"{name}-{link}"


class Registration(BaseModel):
    run_id: str
    keys: list[str]
    expires_at: datetime


class Passed(BaseModel):
    """A registration, or its undoing, for the next link."""

    kind: Literal["register", "unregister"]
    registration: Registration


class IndexState(BaseModel):
    runs_of: dict[str, dict[str, datetime]] = Field(default_factory=dict)
    """Caller key -> run IDs and when each entry expires."""
    link: int = 0
    """Which link of its shard this is (0: the shard's own workflow)."""
    passed_on_until: datetime | None = None
    """When the last entry this link passed on to the next expires: until then, more follow."""
    outbox: list[Passed] = Field(default_factory=list)
    """For the next link, not sent yet (signals only record; the run sends)."""


class Lookup(BaseModel):
    runs: list[str]
    more: bool
    """The next link may hold this key too: ask it."""


class Held(BaseModel):
    entries: int
    more: bool


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
                    lambda: bool(self.state.outbox) or self.history_long(),
                    timeout=IDLE_FOR,
                    timeout_summary="idle",
                )
            while self.state.outbox:
                await self.pass_on(self.state.outbox[0])
                self.state.outbox.pop(0)
            self.forget_expired()
            if self.history_long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self.state)
            if not self.state.runs_of and not self.more() and not self.state.outbox:
                await workflow.wait_condition(workflow.all_handlers_finished)
                return

    @workflow.signal
    def register(self, registration: Registration) -> None:
        """Keep what fits (an entry already here is only renewed); the rest goes to the next link,
        which lookups ask from now on (they would miss it while it waits to be sent)."""
        if self.entries() >= ENTRIES_AT_MOST:
            self.forget_expired()  # expired entries take no room
        spill, entries = [], self.entries()
        for key in registration.keys:
            runs = self.state.runs_of.get(key, {})
            if registration.run_id not in runs and entries >= ENTRIES_AT_MOST:
                spill.append(key)
                continue
            entries += registration.run_id not in runs
            self.state.runs_of[key] = {**runs, registration.run_id: registration.expires_at}
        if spill:
            self.state.outbox.append(
                Passed(kind="register", registration=registration.model_copy(update={"keys": spill}))
            )
            self.passed_on(registration.expires_at)

    @workflow.signal
    def unregister(self, registration: Registration) -> None:
        for key in registration.keys:
            runs = self.state.runs_of.get(key, {})
            runs.pop(registration.run_id, None)
            if not runs:
                self.state.runs_of.pop(key, None)
        if self.more():
            self.state.outbox.append(Passed(kind="unregister", registration=registration))

    @workflow.query
    def runs_of(self, caller_key: str) -> list[str]:
        now = workflow.now()
        return sorted(run for run, expires in self.state.runs_of.get(caller_key, {}).items() if expires > now)

    @workflow.query
    def lookup(self, caller_key: str) -> Lookup:
        return Lookup(runs=self.runs_of(caller_key), more=self.more())

    @workflow.query
    def held(self) -> Held:
        """How many entries this link holds, and whether more follow."""
        return Held(entries=self.entries(), more=self.more())

    def entries(self) -> int:
        return sum(len(runs) for runs in self.state.runs_of.values())

    def more(self) -> bool:
        until = self.state.passed_on_until
        return until is not None and until > workflow.now()

    def history_long(self) -> bool:
        return workflow.info().get_current_history_length() >= CONTINUE_AS_NEW_AT_EVENTS

    def next_link(self) -> str:
        shard = workflow.info().workflow_id
        if self.state.link:
            shard = shard.removesuffix(f"-{self.state.link}")
        return f"{shard}-{self.state.link + 1}"

    async def pass_on(self, passed: Passed) -> None:
        """To the next link: signalled while it runs, started with the entries if it does not."""
        registration = passed.registration
        link = workflow.get_external_workflow_handle(self.next_link())
        try:
            await link.signal(passed.kind, registration)
        except ApplicationError:  # it does not run: nothing there to forget, or start it with these
            if passed.kind == "unregister":
                return
            try:
                await workflow.start_child_workflow(
                    CallerIndex.run,
                    IndexState(
                        runs_of={
                            key: {registration.run_id: registration.expires_at} for key in registration.keys
                        },
                        link=self.state.link + 1,
                    ),
                    id=self.next_link(),
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    static_summary="Caller index: numbers its previous link had no room for (hashed)",
                )
            except WorkflowAlreadyStartedError:  # started meanwhile (it was ending): it takes them
                await link.signal(passed.kind, registration)
        self.passed_on(registration.expires_at)

    def passed_on(self, expires_at: datetime) -> None:
        until = self.state.passed_on_until
        self.state.passed_on_until = expires_at if until is None else max(until, expires_at)

    def forget_expired(self) -> None:
        now = workflow.now()
        for key in list(self.state.runs_of):
            runs = {run: expires for run, expires in self.state.runs_of[key].items() if expires > now}
            if runs:
                self.state.runs_of[key] = runs
            else:
                del self.state.runs_of[key]
