"""The dial-in line's guard against PIN guessing, kept in Temporal so every callback server
replica, and a restarted one, sees the same counts.

Each wrong PIN is signalled here with the caller's keyed hash and the runs that number belongs
to; a callback server asks (a query, no history) before checking a PIN. Within WINDOW:

    per caller number   `per_caller` wrong PINs and that number is turned away
    per run             `per_run` wrong PINs from its people's numbers and they are turned away
    whole line          `per_line` wrong PINs from anyone and numbers that belong to no running
                        run are turned away: rotating spoofed caller IDs does not help

The line-wide limit tripping is logged and counted (metric `rallycall_dial_in_line_locked`).
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import VersioningBehavior

WINDOW = timedelta(minutes=10)
CONTINUE_AS_NEW_AT_EVENTS = 5_000


def guard_id(task_queue: str) -> str:
    return f"{task_queue}-dial-in-guard"


class GuardLimits(BaseModel):
    per_caller: int = Field(5, ge=1)
    per_run: int = Field(20, ge=1)
    per_line: int = Field(30, ge=1)


class WrongPin(BaseModel):
    caller_key: str
    runs: list[str] = Field(default_factory=list)
    """Running runs the caller's number belongs to."""
    at: datetime | None = None
    """Set by the guard when it records it."""


class Question(BaseModel):
    caller_key: str
    runs: list[str] = Field(default_factory=list)


class Verdict(BaseModel):
    allowed: bool
    reason: str | None = None
    """`caller`, `run` or `line`: which limit turned the caller away."""


class GuardState(BaseModel):
    limits: GuardLimits = Field(default_factory=GuardLimits)
    failures: list[WrongPin] = Field(default_factory=list)
    line_locked: bool = False


@workflow.defn(versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class DialInGuard:
    @workflow.init
    def __init__(self, state: GuardState) -> None:
        self.state = state

    @workflow.run
    async def run(self, state: GuardState) -> None:
        """Lives while there are recent wrong PINs to remember."""
        while True:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: workflow.info().get_current_history_length() >= CONTINUE_AS_NEW_AT_EVENTS,
                    timeout=WINDOW,
                    timeout_summary="forget wrong PINs older than the window",
                )
            self.forget_old()
            if workflow.info().get_current_history_length() >= CONTINUE_AS_NEW_AT_EVENTS:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self.state)
            if not self.state.failures:
                await workflow.wait_condition(workflow.all_handlers_finished)
                return

    @workflow.signal
    def wrong_pin(self, failure: WrongPin) -> None:
        self.forget_old()
        self.state.failures.append(failure.model_copy(update={"at": workflow.now()}))
        locked = len(self.state.failures) >= self.state.limits.per_line
        if locked and not self.state.line_locked:
            workflow.logger.warning(
                "dial-in line locked: %d wrong PINs in %s; numbers of no running run are turned away",
                len(self.state.failures),
                WINDOW,
            )
            workflow.metric_meter().create_counter(
                "rallycall_dial_in_line_locked", "Times the line-wide wrong-PIN limit tripped"
            ).add(1)
        self.state.line_locked = locked

    @workflow.query
    def verdict(self, question: Question) -> Verdict:
        limits, recent = self.state.limits, self.recent()
        if sum(f.caller_key == question.caller_key for f in recent) >= limits.per_caller:
            return Verdict(allowed=False, reason="caller")
        for run in question.runs:
            if sum(run in f.runs for f in recent) >= limits.per_run:
                return Verdict(allowed=False, reason="run")
        if not question.runs and len(recent) >= limits.per_line:
            return Verdict(allowed=False, reason="line")
        return Verdict(allowed=True)

    def recent(self) -> list[WrongPin]:
        horizon = workflow.now() - WINDOW
        return [f for f in self.state.failures if f.at is not None and f.at > horizon]

    def forget_old(self) -> None:
        self.state.failures = self.recent()
        self.state.line_locked = len(self.state.failures) >= self.state.limits.per_line
