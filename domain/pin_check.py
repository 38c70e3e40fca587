"""The PIN decision for someone who dialled in: is the PIN right, who is calling, and may they
still try?

Kept apart from the bookkeeping so the rule is in one small place: the PIN is compared in
constant time; a caller whose number belongs to one of the run's people comes back as that
person, anyone else with the right PIN joins as a guest. A run's own people are counted by the
run itself: their wrong PINs within the window, per number and for the whole run, turn them
away before any PIN of theirs is compared (`turned_away`).

`guessing_chance` is the arithmetic of the README's threat model: what every guess the limits
allow is worth to an attacker.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from domain.contacts import Contact
from domain.events import DialInLimits
from domain.plan import RunPlan
from domain.run_view import PinAttempt

LIMIT_REACHED: dict[Literal["caller", "run"], str] = {
    "caller": "TooManyWrongPinsFromNumber",
    "run": "TooManyWrongPinsFromRun",
}
"""The error type of a `rejoin` its validator refused for a limit."""


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
    return PinDecision(accepted=accepted, person=person_calling(plan, caller))


def person_calling(plan: RunPlan, caller: str) -> Contact | None:
    return next((c for c in plan.people if caller in c.numbers()), None)


def turned_away(
    plan: RunPlan, attempts: Iterable[PinAttempt], caller: str, limits: DialInLimits | None, now: datetime
) -> Literal["caller", "run"] | None:
    """Which limit turns this caller away now, if they are one of the run's people: their
    number's wrong PINs within the window, or those of all the run's people's numbers. Guests
    are the line's guard's to count (None here)."""
    if limits is None or person_calling(plan, caller) is None:
        return None
    since = now - limits.window
    recent = [a for a in attempts if not a.accepted and a.participant_id is not None and a.at > since]
    if sum(a.from_number == caller for a in recent) >= limits.per_caller:
        return "caller"
    if len(recent) >= limits.per_run:
        return "run"
    return None


def guessing_chance(
    digits: int, per_run: int, per_line: int, conferences: int, over: timedelta, window: timedelta
) -> float:
    """At most the chance that an attacker gets into any of `conferences` running conferences
    with every guess the limits let them make in `over`, from any caller ID.

    A guess from a number of no running run (or a run's person's PIN that is not one of their
    runs') is checked against every running PIN, and the line answers at most `per_line` of
    them per window; a guess from a spoofed number of a run's person is checked against that
    person's runs' PINs only, and each run answers at most `per_run` per window. Each window
    thus leaves `per_line` guesses worth `conferences` PINs and, spoofing every run's people,
    `per_run` per run worth one PIN: a union bound over 10**digits PINs."""
    windows = math.ceil(over / window)
    compared = windows * (per_line * conferences + per_run * conferences)
    return min(1.0, compared / 10.0**digits)
