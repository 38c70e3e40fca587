"""What `--wait` and `make run` print: one line per change of the roster, in timeline order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.run_view import CallAttempt, Notification, PersonView, RunView, StepView
from rendering.terminal import changes

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def report(*people: PersonView, state: str = "running") -> RunView:
    return RunView(
        workflow_id="conference-x",
        state=state,
        started_at=T0,
        ended_at=T0 + timedelta(minutes=5) if state == "ended" else None,
        end_reason="drill over" if state == "ended" else None,
        dial_in_number="+41215550100",
        procedure="conference-call",
        title="Conference call",
        people=list(people),
        steps=[StepView(number="001", objective="conference", percent=100, needed=1)],
    )


def attempt(medium: str, outcome: str, at: int) -> CallAttempt:
    return CallAttempt(
        attempt_id=f"a/{medium}",
        medium=medium,
        number="+41215550101",
        queued_at=T0 + timedelta(seconds=at),
        placed_at=T0 + timedelta(seconds=at),
        outcome=outcome,
        outcome_at=None if outcome == "pending" else T0 + timedelta(seconds=at + 3),
    )


def test_each_change_is_one_line_and_nothing_is_repeated() -> None:
    calling = PersonView(id="a", name="Ann", attempts=[attempt("voice_pro", "pending", 0)])
    first = report(calling)
    assert [text for _, text in changes(None, first)] == ["calling Ann on work phone"]

    machine = PersonView(
        id="a",
        name="Ann",
        attempts=[attempt("voice_pro", "machine", 0), attempt("voice_home", "answered", 60)],
        in_conference=True,
        notifications=[Notification(channel="sms", to="+41795550101", sent_at=T0 + timedelta(seconds=120))],
    )
    second = report(machine)
    lines = changes(first, second)
    assert [text for _, text in lines] == [
        "Ann's work phone answered by a machine: hung up, not reached",
        "calling Ann on home phone",
        "Ann answered on home phone",
        "PIN invitation sent to Ann by SMS",
        "Ann is in the conference",
    ]
    assert [at - T0 for at, _ in lines[:4] if at] == [timedelta(seconds=s) for s in (3, 60, 63, 120)]
    assert changes(second, second) == []

    back = machine.model_copy(update={"in_conference": False, "left_at": T0 + timedelta(minutes=4)})
    ended = report(back, state="ended").model_copy(
        update={"recording_url": "https://rec/RE1", "problems": ["the carrier refused our configuration"]}
    )
    assert [text for _, text in changes(second, ended)] == [
        "Ann left the conference",
        "conference ended: drill over",
        "PROBLEM: the carrier refused our configuration",
        "recording: https://rec/RE1",
    ]


def test_steps_are_told_as_they_start_end_or_are_skipped() -> None:
    first = report()
    first.steps = [
        StepView(number="001", objective="conference", percent=100, needed=2, started_at=T0),
        StepView(number="002", objective="conference", percent=50, needed=1),
    ]
    second = first.model_copy(deep=True)
    second.steps[0] = second.steps[0].model_copy(
        update={"ended_at": T0 + timedelta(minutes=2), "reached": True, "counted": 2}
    )
    second.steps[1] = second.steps[1].model_copy(update={"skipped": True})
    assert [text for _, text in changes(None, first)] == ["step 001 (conference 100 %) started"]
    assert [text for _, text in changes(first, second)] == [
        "step 001 (conference 100 %): objective reached (2/2)",
        "step 002 (conference 50 %) skipped: the previous objective was reached",
    ]


def test_a_drop_and_the_way_back_are_told_as_such() -> None:
    joined = PersonView(
        id="a", name="Ann", in_conference=True, attempts=[attempt("voice_pro", "answered", 0)]
    )
    dropped = joined.model_copy(
        update={
            "in_conference": False,
            "left_at": T0 + timedelta(seconds=28),
            "drops": 1,
            "notifications": [
                Notification(
                    channel="sms", to="+41795550101", sent_at=T0 + timedelta(seconds=29), purpose="rejoin"
                )
            ],
        }
    )
    assert [text for _, text in changes(report(joined), report(dropped))] == [
        "Ann dropped out of the conference",
        "the way back (number and PIN) sent to Ann by SMS",
    ]
