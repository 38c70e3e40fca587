"""The dial-in line's guard against PIN guessing, kept in Temporal so every callback server
replica, and a restarted one, sees the same counts.

Every PIN that is not checked by the caller's own runs is decided here, after the callback
server looked it up and before it answers (`check`, an update: one attempt at a time, so the
attempt is counted in the same step as the verdict and concurrent wrong PINs never overshoot a
limit). Within WINDOW:

    per caller number   `per_caller` wrong PINs and that number is turned away
    whole line          `per_line` wrong PINs from anyone and the line checks no more PINs
                        against every running conference: numbers that belong to no running
                        run are turned away (rotating spoofed caller IDs does not help), and a
                        run's people are checked against their own runs only

A right PIN is not counted: it passes unless a limit is reached, so a burst of right PINs is
never turned away by the limits meant for wrong ones. The line-wide limit tripping is logged
and counted (metric `rallycall_dial_in_line_locked`). The `wrong_pin` signal and `verdict` query
are those of callback servers of 0.1.0 (and the verdict, of the dial-in prompt).
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ApplicationError

WINDOW = timedelta(minutes=10)
CONTINUE_AS_NEW_AT_EVENTS = 5_000
CONTINUE_AS_NEW_AT_UPDATES = 1_500
"""Below Temporal's 2,000 updates per run."""
TURNED_AWAY = "PinCheckTurnedAway"
"""The error type of a `check` refused by a limit; its message is the limit (`caller`, `line`)."""


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


class Attempt(BaseModel):
    """A PIN keyed on the line, looked up and not yet answered."""

    caller_key: str
    runs: list[str] = Field(default_factory=list)
    """Running runs the caller's number belongs to (which have counted it already)."""
    right: bool = False
    """The PIN is a running conference's: not counted, only let through or not."""


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
        self.updates = 0

    @workflow.run
    async def run(self, state: GuardState) -> None:
        """Lives while there are recent wrong PINs to remember."""
        while True:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    self.history_is_long,
                    timeout=WINDOW,
                    timeout_summary="forget wrong PINs older than the window",
                )
            self.forget_old()
            if self.history_is_long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self.state)
            if not self.state.failures:
                await workflow.wait_condition(workflow.all_handlers_finished)
                return

    def history_is_long(self) -> bool:
        return (
            workflow.info().get_current_history_length() >= CONTINUE_AS_NEW_AT_EVENTS
            or self.updates >= CONTINUE_AS_NEW_AT_UPDATES
        )

    @workflow.signal
    def wrong_pin(self, failure: WrongPin) -> None:
        self.forget_old()
        self.record(failure)

    @workflow.update
    def check(self, attempt: Attempt) -> Verdict:
        """Counted first: a wrong PIN is recorded before its verdict, which says whether it
        reached a limit (then the caller is turned away rather than asked again)."""
        self.updates += 1
        if attempt.right:
            return Verdict(allowed=True)
        self.forget_old()
        self.record(WrongPin(caller_key=attempt.caller_key, runs=attempt.runs))
        limit = self.limit_reached(attempt.caller_key)
        return Verdict(allowed=limit is None, reason=limit)

    @check.validator
    def validate_check(self, attempt: Attempt) -> None:
        """Over a limit, refused unrecorded (nothing written to history): PIN right or not."""
        limit = self.limit_reached(attempt.caller_key)
        if limit is not None:
            raise ApplicationError(limit, type=TURNED_AWAY)

    def limit_reached(self, caller_key: str) -> Literal["caller", "line"] | None:
        recent = self.recent()
        if sum(f.caller_key == caller_key for f in recent) >= self.state.limits.per_caller:
            return "caller"
        if len(recent) >= self.state.limits.per_line:
            return "line"
        return None

    def record(self, failure: WrongPin) -> None:
        self.state.failures.append(failure.model_copy(update={"at": workflow.now()}))
        locked = len(self.state.failures) >= self.state.limits.per_line
        if locked and not self.state.line_locked:
            workflow.logger.warning(
                "dial-in line locked: %d wrong PINs in %s; no PIN is checked against every running run",
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
