"""The roster's bookkeeping when carrier callbacks arrive in awkward orders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.call_queue import CallQueue
from domain.contacts import Contact
from domain.events import BridgeUpdate, CallProgress, CallTruth, CarrierTruth, RejoinRequest
from domain.plan import RunPlan, SchemeMedium, SchemePlan, StepPlan
from domain.roster import Roster, RosterState
from workflows.step_batch import hand_to_batches

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ANN = Contact(id="ann", name="Ann", voice_pro="+41215550101", mobile="+41795550101")
STEP = StepPlan(
    number="001",
    objective="conference",
    percent=100,
    destinations=("ann",),
    scheme="WORK",
    deadline=timedelta(minutes=2),
)
PLAN = RunPlan(
    procedure="conference-call",
    title="Conference call",
    steps=(STEP,),
    people=(ANN,),
    schemes={"WORK": SchemePlan(name="WORK", media=(SchemeMedium(medium="voice_pro"),))},
    default_scheme="WORK",
    dial_in_number="+41215550100",
    pin="123456",
    pin_lease_id="pin-lease-x",
)
WORK_CALL = next(PLAN.alerts(STEP))


def roster() -> Roster:
    return Roster(PLAN, "conference-x", RosterState.fresh(PLAN, T0))


def test_a_join_reported_before_the_call_is_known_still_counts() -> None:
    book = roster()
    attempt = book.attempt_queued(WORK_CALL, "+41215550101", T0)
    book.bridge_event(
        BridgeUpdate(kind="join", conference_sid="CF1", call_sid="CA1"), T0 + timedelta(seconds=3)
    )
    assert not book.person("ann").in_conference, "whose call is CA1? not known yet"
    book.call_placed(attempt.attempt_id, "CA1", T0 + timedelta(seconds=4))
    assert book.person("ann").in_conference
    assert book.person("ann").joined_at == T0 + timedelta(seconds=4)


def test_answered_calls_not_yet_in_the_room_are_still_hung_up_at_the_end() -> None:
    book = roster()
    attempt = book.attempt_queued(WORK_CALL, "+41215550101", T0)
    book.call_placed(attempt.attempt_id, "CA1", T0)
    book.call_progress(CallProgress(attempt_id=attempt.attempt_id, call_sid="CA1", status="in-progress"), T0)
    assert book.connected_calls() == ["CA1"] and book.state.conference_sid is None
    book.call_progress(CallProgress(attempt_id=attempt.attempt_id, call_sid="CA1", status="completed"), T0)
    assert book.connected_calls() == []


def test_a_dial_in_over_the_phone_counts_when_the_room_says_so() -> None:
    book = roster()
    result = book.rejoin(RejoinRequest(pin="123456", from_number="+41795550101", call_sid="CA9"), T0)
    assert result.accepted and result.participant_id == "ann"
    assert not book.person("ann").in_conference, "PIN accepted; not in the room yet"
    book.bridge_event(BridgeUpdate(kind="join", conference_sid="CF1", call_sid="CA9"), T0)
    assert book.person("ann").in_conference
    book.bridge_event(
        BridgeUpdate(kind="leave", conference_sid="CF1", call_sid="CA9"), T0 + timedelta(minutes=1)
    )
    assert not book.person("ann").in_conference
    assert book.person("ann").left_at == T0 + timedelta(minutes=1)


def test_a_machine_leg_never_counts_as_in_the_bridge() -> None:
    book = roster()
    attempt = book.attempt_queued(WORK_CALL, "+41215550101", T0)
    book.call_placed(attempt.attempt_id, "CA1", T0)
    progress = CallProgress(
        attempt_id=attempt.attempt_id, call_sid="CA1", status="", answered_by="machine_start"
    )
    assert book.call_progress(progress, T0) == "CA1", "hang it up"
    book.bridge_event(BridgeUpdate(kind="join", conference_sid="CF1", call_sid="CA1"), T0)
    assert not book.person("ann").in_conference and attempt.outcome == "machine"
    assert not book.objective_met(STEP)


def test_joining_after_the_deadline_is_too_late_and_does_not_count() -> None:
    book = roster()
    book.step_started(STEP, T0)
    assert book.step_ended(STEP, T0 + timedelta(minutes=2)) is False
    book.rejoin(RejoinRequest(pin="123456", from_number="+41795550101"), T0 + timedelta(minutes=3))
    assert book.person("ann").in_conference and book.person("ann").too_late == ["001"]
    result = book.state.steps["001"]
    assert (result.reached, result.counted, result.needed) == (False, 0, 1), "the result stays as it was"


def test_attempt_ids_stay_unique_when_a_scheme_lists_a_medium_twice() -> None:
    twice = SchemePlan(
        name="TWICE",
        media=(
            SchemeMedium(medium="voice_pro"),
            SchemeMedium(medium="voice_pro", after=timedelta(minutes=1)),
        ),
    )
    plan = PLAN.model_copy(update={"schemes": {"TWICE": twice}, "default_scheme": "TWICE"})
    step = STEP.model_copy(update={"scheme": "TWICE"})
    ids = [alert.attempt_id for alert in plan.alerts(step)]
    assert ids == ["001/ann/0", "001/ann/1"]
    book = Roster(plan, "conference-x", RosterState.fresh(plan, T0))
    first, second = (book.attempt_queued(alert, "+41215550101", T0) for alert in plan.alerts(step))
    book.call_placed(first.attempt_id, "CA1", T0)
    book.call_progress(CallProgress(attempt_id=first.attempt_id, call_sid="CA1", status="no-answer"), T0)
    assert (first.outcome, second.outcome) == ("no-answer", "pending"), "each callback moves its own attempt"


def test_the_roster_state_survives_a_continue_as_new() -> None:
    book = roster()
    attempt = book.attempt_queued(WORK_CALL, "+41215550101", T0)
    book.call_placed(attempt.attempt_id, "CA1", T0)
    book.bridge_event(BridgeUpdate(kind="join", conference_sid="CF1", call_sid="CA1"), T0)
    carried = RosterState.model_validate_json(book.state.model_dump_json())
    again = Roster(PLAN, "conference-x", carried)
    assert again.person("ann").in_conference
    again.bridge_event(BridgeUpdate(kind="leave", conference_sid="CF1", call_sid="CA1"), T0)
    assert not again.person("ann").in_conference, "the leg CA1 is still known as ann's"


def test_a_call_answered_and_ended_while_every_callback_was_lost_is_a_drop() -> None:
    """The carrier says the call was answered by a person and is over; we heard nothing of it.
    Whether it had reached the bridge nobody can say: the person gets the way back."""
    book = roster()
    attempt = book.attempt_queued(WORK_CALL, "+41215550101", T0)
    book.call_placed(attempt.attempt_id, "CA1", T0)
    truth = CarrierTruth(calls=[CallTruth(call_sid="CA1", status="completed", answered_by="human")])
    asked = T0 + timedelta(seconds=40)
    book.carrier_truth(truth, asked, asked)
    assert attempt.outcome == "answered" and not book.person("ann").in_conference
    assert book.person("ann").drops == 1 and book.take_drops() == ["ann"]
    book.carrier_truth(truth, asked, asked)
    assert book.take_drops() == [], "asked again: still one drop"


def test_an_unheard_call_a_machine_answered_or_one_we_heard_of_is_no_drop() -> None:
    book = roster()
    machine, heard = (book.attempt_queued(WORK_CALL, "+41215550101", T0) for _ in range(2))
    book.call_placed(machine.attempt_id, "CA1", T0)
    book.call_placed(heard.attempt_id, "CA2", T0)
    book.call_progress(CallProgress(attempt_id=heard.attempt_id, call_sid="CA2", status="in-progress"), T0)
    truth = CarrierTruth(
        calls=[
            CallTruth(call_sid="CA1", status="completed", answered_by="machine_start"),
            CallTruth(call_sid="CA2", status="completed", answered_by="human"),
        ]
    )
    book.carrier_truth(truth, T0, T0)
    assert book.take_drops() == [], "a machine is nobody; an answer we heard without a join is no drop"


def test_a_call_recorded_not_placed_that_the_carrier_reports_counts_after_all() -> None:
    """A try's answer was lost, its retries stopped (withdrawn, or the deadline), and the call
    rang all the same: its callbacks make the row tell what happened, not "not called"."""
    book = roster()
    attempt = book.attempt_queued(WORK_CALL, "+41215550101", T0)
    book.not_placed(attempt.attempt_id, "the run ended before its turn", T0)
    book.call_progress(CallProgress(attempt_id=attempt.attempt_id, call_sid="CA1", status="in-progress"), T0)
    assert (attempt.outcome, attempt.call_sid, attempt.error) == ("answered", "CA1", None)


CALLS = CallQueue(task_queue="q-calls", account="AC1", calls_per_second=1)


def mixed_plan(people: int) -> RunPlan:
    """A conference step for Ann, then an information step for `people` others."""
    others = tuple(Contact(id=f"p{n}", name=f"P {n}", mobile=f"+417955{n:05d}") for n in range(people))
    inform = StepPlan(number="002", objective="information", percent=100, scheme="TEXT",
                      destinations=tuple(c.id for c in others), deadline=timedelta(minutes=5))  # fmt: skip
    schemes = {**PLAN.schemes, "TEXT": SchemePlan(name="TEXT", media=(SchemeMedium(medium="sms"),))}
    fields = dict(PLAN) | {"steps": (STEP, inform), "people": (ANN, *others), "schemes": schemes}
    return RunPlan.model_validate(fields)  # not model_copy: it would keep PLAN's cached index of people


def test_a_run_launched_now_lists_its_bridge_people_and_its_batches_theirs() -> None:
    run_plan, batches = hand_to_batches(mixed_plan(450), "run-x", "a1", CALLS,
                                        timedelta(minutes=10))  # fmt: skip
    view = Roster(run_plan, "run-x", RosterState.fresh(run_plan, T0)).view()
    assert [p.id for p in view.people] == ["ann"] and view.batches_list_their_people
    assert [(b.workflow_id, b.size) for b in view.batches] == [
        (f"run-x-a1-step002-batch00{n}", size) for n, size in ((1, 200), (2, 200), (3, 50))
    ]
    assert [len(b.plan.people) for _, b in batches] == [200, 200, 50] and run_plan.participants == 451
    _, other_attempt = hand_to_batches(mixed_plan(450), "run-x", "b2", CALLS,
                                       timedelta(minutes=10))  # fmt: skip
    assert {i for i, _ in batches}.isdisjoint(i for i, _ in other_attempt), "no attempt adopts another's"


def test_a_run_launched_by_0_1_0_still_lists_everyone_it_holds() -> None:
    """Its plan holds every destination: its roster keeps them all, as 0.1.0 did (a dial-in or a
    "call again" for one of them finds their row), and says the batches' rows merge into it."""
    old = mixed_plan(450)
    view = Roster(old, "run-x", RosterState.fresh(old, T0)).view()
    assert len(view.people) == 451 and not view.batches_list_their_people
