"""What the parts of a run's workflow share (the step's timeline, calls, messages, checks with
the carrier, moderation): its frozen plan, its roster, its background work, and whether the
carrier has refused our account."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.carrier_choice import CarrierChoice
    from domain.plan import RunPlan
    from domain.roster import Roster


@dataclass
class RunContext:
    plan: RunPlan
    roster: Roster
    publish: Callable[[], None]
    """Shows a change of the roster (Web UI details, search attributes, the way back)."""
    carriers: CarrierChoice = field(default_factory=lambda: CarrierChoice([]))
    """Which carrier its next call goes through."""
    carrier_refused: bool = False
    """Our credentials or caller ID were refused: no call or SMS can work until someone fixes
    them, so none is tried (email still goes out)."""
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    """Rounds, calls and messages run as tasks, so the timeline never waits for a slow carrier
    or mail server; kept so a run can wait for them before continuing as new."""

    def background(self, work: Coroutine[Any, Any, None]) -> None:
        self.tasks.append(asyncio.create_task(work))

    def idle(self) -> bool:
        return all(task.done() for task in self.tasks)

    def carrier_failed(self, carrier: str, why: str, now_through: str, at: datetime) -> None:
        """Said on the run once per outage: status, the console and the report show it."""
        moved = f"calls go through {now_through}" if now_through != carrier else "no other carrier works"
        self.roster.problem(f"{at:%H:%M:%S} {carrier or 'the carrier'} failing ({why}): {moved}")

    def carrier_back(self, carrier: str, at: datetime) -> None:
        self.roster.problem(f"{at:%H:%M:%S} {carrier or 'the carrier'} works again: calls go through it")

    def refused_by_carrier(self, message: str) -> None:
        """Said loudly, once, on the run: every screen shows its problems."""
        self.carrier_refused = True
        self.roster.problem(f"the carrier refused our configuration: {message}")
