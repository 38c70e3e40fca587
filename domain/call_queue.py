"""Where a run's calls wait their turn at the carrier account's rate, frozen into its input.

Each call is an activity on the deployment's calls task queue. The Temporal server starts them
no faster than the account's calls per second, for every worker at once: the rate of the
account's fairness key (`Priority.fairness_key`), so two accounts on one queue pace apart. A
call's priority key puts a new emergency ahead of a long information step, and its
schedule-to-start deadline is its step's: a call the rate cannot start in time never starts.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from domain.plan import Objective

PRIORITY: dict[Objective, int] = {"conference": 1, "acknowledgement": 2, "information": 3}
"""Temporal priority keys (1 first): a bridge waits for no one; an information step waits."""
UNKNOWN_ACCOUNT_RATE = 1.0
"""Calls per second of a fairness key no worker has configured: Twilio's default CPS."""


def calls_queue(task_queue: str) -> str:
    """The deployment's calls task queue, beside its runs' queue: its rate is the server's to
    keep, and calls never run eagerly on the run's own worker (which would skip the rate)."""
    return f"{task_queue}-calls"


class CarrierRoute(BaseModel):
    """One carrier a run may call and text through, as it was configured at launch."""

    name: str
    """The carrier's name in RALLYCALL_CARRIERS: its callbacks say it, its worker adapter has it."""
    account: str
    """Its account: the fairness key its calls wait on, at its own rate."""
    number: str
    """Its dial-in number: caller ID of its calls, sender of its SMS."""
    calls_per_second: float = Field(gt=0)


class CallQueue(BaseModel):
    task_queue: str
    account: str
    """The carrier account: the calls' fairness key."""
    calls_per_second: float = Field(gt=0)
    carriers: list[CarrierRoute] = []
    """The carriers in order (0.2.0); empty in runs launched before: then one, unnamed (the
    worker's first carrier), with `account` and the plan's dial-in number."""

    def routes(self, dial_in_number: str) -> list[CarrierRoute]:
        return self.carriers or [
            CarrierRoute(
                name="", account=self.account, number=dial_in_number, calls_per_second=self.calls_per_second
            )
        ]
