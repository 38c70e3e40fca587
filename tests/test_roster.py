"""The roster's bookkeeping when carrier callbacks arrive in awkward orders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.conference import BridgeUpdate, CallProgress, ConferenceInput, RejoinRequest
from domain.contacts import Contact
from domain.plan import Alert, StepPlan
from domain.roster import Roster

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ANN = Contact(id="ann", name="Ann", voice_pro="+41215550101", mobile="+41795550101")
STEP = StepPlan(
    number="001",
    objective="conference",
    percent=100,
    destinations=("ann",),
    alerts=(Alert(contact_id="ann", medium="voice_pro", after=timedelta(0)),),
    deadline=timedelta(minutes=2),
)


def roster() -> Roster:
    conference = ConferenceInput(
        procedure="conference-call",
        title="Conference call",
        steps=(STEP,),
        participants=(ANN,),
        dial_in_number="+41215550100",
        pin="123456",
        pin_lease_id="pin-lease-x",
    )
    return Roster(conference, "conference-x", T0)


def test_a_join_reported_before_the_call_is_known_still_counts() -> None:
    book = roster()
    attempt = book.attempt_placed(STEP, ANN, "voice_pro", "+41215550101", T0)
    book.bridge_event(
        BridgeUpdate(kind="join", conference_sid="CF1", call_sid="CA1"), T0 + timedelta(seconds=3)
    )
    assert not book.participants["ann"].in_conference, "whose call is CA1? not known yet"
    book.call_created(attempt, "CA1", T0 + timedelta(seconds=4))
    assert book.participants["ann"].in_conference
    assert book.participants["ann"].joined_at == T0 + timedelta(seconds=4)


def test_answered_calls_not_yet_in_the_room_are_still_hung_up_at_the_end() -> None:
    book = roster()
    attempt = book.attempt_placed(STEP, ANN, "voice_pro", "+41215550101", T0)
    book.call_created(attempt, "CA1", T0)
    book.call_progress(CallProgress(attempt_id=attempt.attempt_id, call_sid="CA1", status="in-progress"), T0)
    assert book.connected_calls() == ["CA1"] and book.conference_sid is None
    book.call_progress(CallProgress(attempt_id=attempt.attempt_id, call_sid="CA1", status="completed"), T0)
    assert book.connected_calls() == []


def test_a_dial_in_over_the_phone_counts_when_the_room_says_so() -> None:
    book = roster()
    result = book.rejoin(RejoinRequest(pin="123456", from_number="+41795550101", call_sid="CA9"), T0)
    assert result.accepted and result.participant_id == "ann"
    assert not book.participants["ann"].in_conference, "PIN accepted; not in the room yet"
    book.bridge_event(BridgeUpdate(kind="join", conference_sid="CF1", call_sid="CA9"), T0)
    assert book.participants["ann"].in_conference
    book.bridge_event(
        BridgeUpdate(kind="leave", conference_sid="CF1", call_sid="CA9"), T0 + timedelta(minutes=1)
    )
    assert not book.participants["ann"].in_conference
    assert book.participants["ann"].left_at == T0 + timedelta(minutes=1)


def test_a_machine_leg_never_counts_as_in_the_bridge() -> None:
    book = roster()
    attempt = book.attempt_placed(STEP, ANN, "voice_pro", "+41215550101", T0)
    book.call_created(attempt, "CA1", T0)
    progress = CallProgress(
        attempt_id=attempt.attempt_id, call_sid="CA1", status="", answered_by="machine_start"
    )
    assert book.call_progress(progress, T0) == "CA1", "hang it up"
    book.bridge_event(BridgeUpdate(kind="join", conference_sid="CF1", call_sid="CA1"), T0)
    assert not book.participants["ann"].in_conference and attempt.outcome == "machine"
    assert not book.objective_met(STEP)


def test_joining_after_the_deadline_is_too_late_and_does_not_count() -> None:
    book = roster()
    book.step_started(STEP, T0)
    assert book.step_ended(STEP, T0 + timedelta(minutes=2)) is False
    book.rejoin(RejoinRequest(pin="123456", from_number="+41795550101"), T0 + timedelta(minutes=3))
    assert book.participants["ann"].in_conference and book.participants["ann"].too_late == ["001"]
    result = book.steps["001"]
    assert (result.reached, result.counted, result.needed) == (False, 0, 1), "the result stays as it was"
