"""The threat model's arithmetic over the settings as shipped, and the rule by which a run turns
its own people away (the phone-line tests are in test_dial_in_guard.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from config import Settings
from domain.contacts import Contact
from domain.events import DialInLimits
from domain.pin_check import guessing_chance, turned_away
from domain.plan import RunPlan
from domain.run_view import PinAttempt
from workflows.dial_in_guard import WINDOW

FOUR_HOURS = timedelta(hours=4)
T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def shipped_chance(conferences: int, digits: int | None = None) -> float:
    settings = Settings(_env_file=None)
    return guessing_chance(
        digits=digits or settings.pin_digits,
        per_run=settings.pin_failures_per_run,
        per_line=settings.pin_failures_per_line,
        conferences=conferences,
        over=FOUR_HOURS,
        window=WINDOW,
    )


def test_guessing_into_any_of_a_thousand_conferences_in_four_hours_is_below_one_in_a_thousand() -> None:
    assert shipped_chance(1_000) < 1 / 1_000


@pytest.mark.parametrize(
    ("digits", "conferences", "chance"),
    [(6, 100, 0.12), (6, 1_000, 1.0), (8, 1_000, 0.012), (9, 1_000, 0.0012), (10, 1_000, 0.00012)],
)
def test_the_threat_models_table(digits: int, conferences: int, chance: float) -> None:
    """24 windows of 10 minutes in 4 h; per window 30 guesses on the line against every PIN and
    20 per run against its own: (30 + 20) x 24 x conferences / 10**digits, at most 1."""
    assert shipped_chance(conferences, digits) == pytest.approx(chance)


PEOPLE = (
    Contact(id="alice", name="Alice", voice_pro="+41215550101", mobile="+41795550101"),
    Contact(id="chloe", name="Chloé", voice_pro="+41215550103", mobile="+41795550103"),
)
LIMITS = DialInLimits(per_caller=2, per_run=3)


def wrong(number: str, minutes_ago: float, participant: str | None = "alice") -> PinAttempt:
    return PinAttempt(
        from_number=number, at=T0 - timedelta(minutes=minutes_ago), accepted=False, participant_id=participant
    )


def plan() -> RunPlan:
    return RunPlan(
        procedure="conference-call", title="Conference call", steps=(), people=PEOPLE, schemes={},
        default_scheme="WORK", dial_in_number="+41215550100", pin="1234567890",
    )  # fmt: skip


def test_a_run_turns_away_a_number_of_its_people_then_all_its_people() -> None:
    twice = [wrong("+41795550101", 1), wrong("+41215550101", 2)]
    assert turned_away(plan(), twice, "+41795550101", LIMITS, T0) is None, "one wrong PIN from that number"
    assert turned_away(plan(), [*twice, wrong("+41795550101", 3)], "+41795550101", LIMITS, T0) == "caller"
    third = wrong("+41795550103", 3, "chloe")
    assert turned_away(plan(), [*twice, third], "+41215550103", LIMITS, T0) == "run", "three from its numbers"


def test_what_a_run_does_not_count() -> None:
    old = [wrong("+41795550101", 11), wrong("+41795550101", 12), wrong("+41795550101", 13)]
    assert turned_away(plan(), old, "+41795550101", LIMITS, T0) is None, "older than the window"
    guests = [wrong("+41797770001", 1, None) for _ in range(5)]
    assert turned_away(plan(), guests, "+41795550101", LIMITS, T0) is None, "guests are the line's to count"
    assert turned_away(plan(), [wrong("+41795550101", 1)] * 5, "+41797770001", LIMITS, T0) is None, (
        "a number of none of its people: the line's guard decides"
    )
    assert turned_away(plan(), [wrong("+41795550101", 1)] * 5, "+41795550101", None, T0) is None, (
        "a rejoin without limits (the CLI, the console) is never turned away"
    )
