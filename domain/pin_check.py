"""The PIN decision for someone who dialled in: is the PIN right, and who is calling?

Kept apart from the bookkeeping so the rule is in one small place: the PIN is compared in
constant time; a caller whose number belongs to one of the run's people comes back as that
person, anyone else with the right PIN joins as a guest.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from domain.contacts import Contact
from domain.plan import RunPlan


@dataclass(frozen=True)
class PinDecision:
    accepted: bool
    person: Contact | None
    """The run's person calling from one of their numbers, if any (right PIN or not)."""

    @property
    def guest(self) -> bool:
        return self.accepted and self.person is None


def decide(plan: RunPlan, keyed: str, caller: str) -> PinDecision:
    expected = plan.pin or ""
    accepted = bool(expected) and hmac.compare_digest(keyed.encode(), expected.encode())
    person = next((c for c in plan.people if caller in c.numbers()), None)
    return PinDecision(accepted=accepted, person=person)
