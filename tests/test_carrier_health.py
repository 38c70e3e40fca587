"""When a carrier counts as failing, and when it takes work again: a worker's view (each medium
apart) and a run's choice of carrier for its next call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carrier.health import FAULT_WINDOW, FAULTS_IN_A_ROW, OPEN_FOR, CarrierHealth
from domain.call_queue import CarrierRoute
from domain.carrier_choice import FAILED_FOR, CarrierChoice
from domain.contacts import Contact
from domain.events import BridgeUpdate
from domain.roster import Roster, RosterState
from tests.test_roster import ANN, PLAN, STEP, T0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_short_run_of_faults_stops_a_medium_and_one_probe_restores_it() -> None:
    clock = Clock()
    health = CarrierHealth(clock)
    voice = health.of("twilio", "voice")
    for _ in range(FAULTS_IN_A_ROW - 1):
        voice.fault("503")
    assert voice.allows(), "one or two faults are retried on the same carrier"
    voice.fault("503")
    assert not voice.allows() and voice.is_open
    assert health.of("twilio", "sms").allows(), "its SMS are judged apart from its calls"
    assert health.of("backup", "voice").allows()

    clock.now += OPEN_FOR
    assert voice.allows(), "after OPEN_FOR one request probes it"
    assert not voice.allows(), "one probe at a time"
    voice.fault("503 again")
    assert not voice.allows(), "a failed probe keeps it stopped"
    clock.now += OPEN_FOR
    assert voice.allows()
    voice.success()
    assert voice.allows() and voice.allows() and not voice.is_open


def test_faults_far_apart_are_blips_not_an_outage() -> None:
    clock = Clock()
    voice = CarrierHealth(clock).of("twilio", "voice")
    for _ in range(FAULTS_IN_A_ROW * 2):
        voice.fault("500")
        clock.now += FAULT_WINDOW + 1
    assert voice.allows()
    voice.fault("500")
    voice.success()
    voice.fault("500")
    voice.fault("500")
    assert voice.allows(), "a success between faults starts the count again"


def routes(*names: str) -> list[CarrierRoute]:
    return [CarrierRoute(name=n, account=f"AC-{n}", number="+41215550100", calls_per_second=1) for n in names]


def test_a_run_moves_its_calls_to_the_next_carrier_then_probes_the_first_once() -> None:
    start = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    choice = CarrierChoice(routes("twilio", "telnyx"))
    assert choice.pick(start).name == "twilio"
    assert choice.has_alternative("twilio", start)

    assert choice.failed("twilio", start).name == "telnyx"  # type: ignore[union-attr]
    assert choice.pick(start).name == "telnyx" and choice.down(start) == ["twilio"]

    later = start + FAILED_FOR
    assert choice.pick(later).name == "twilio", "one call probes the first carrier again"
    assert choice.pick(later).name == "telnyx", "the others keep to the next while it probes"
    choice.released("twilio")
    assert choice.pick(later).name == "twilio", "a probe withdrawn before it was placed told nothing"
    assert choice.worked("twilio")
    assert choice.pick(later).name == "twilio" and choice.pick(later).name == "twilio"
    assert not choice.worked("twilio"), "it was not failing"


def test_with_every_carrier_failing_calls_go_to_the_first_and_keep_trying() -> None:
    now = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    choice = CarrierChoice(routes("twilio", "telnyx"))
    choice.failed("twilio", now)
    assert choice.failed("telnyx", now) is None
    assert choice.pick(now).name == "twilio"
    assert not choice.has_alternative("twilio", now), "so its worker retries it until the deadline"
    assert choice.pick(now + timedelta(seconds=1)).name == "twilio"


def two_in_a_bridge() -> tuple[Roster, datetime]:
    """Ann and Bob in the room, on calls CA1 and CA2."""
    bob = Contact(id="bob", name="Bob", voice_pro="+41215550102")
    step = STEP.model_copy(update={"destinations": ("ann", "bob")})
    plan = PLAN.model_copy(update={"steps": (step,), "people": (ANN, bob)})
    book = Roster(plan, "conference-x", RosterState.fresh(plan, T0))
    for alert, sid in zip(plan.alerts(step), ("CA1", "CA2"), strict=True):
        attempt = book.attempt_queued(alert, alert.address or "", T0)
        book.call_placed(attempt.attempt_id, sid, T0)
        book.bridge_event(BridgeUpdate(kind="join", conference_sid="CF1", call_sid=sid), T0)
    return book, T0 + timedelta(seconds=30)


def test_a_room_whose_people_hang_up_ends_as_it_should_and_one_that_drops_them_is_lost() -> None:
    book, later = two_in_a_bridge()
    for sid in ("CA1", "CA2"):
        book.bridge_event(
            BridgeUpdate(kind="leave", conference_sid="CF1", call_sid=sid, reason="participant_hung_up"),
            later,
        )
    assert not book.lost_room(T0), "both hung up: the room ended, nothing to move"

    book, later = two_in_a_bridge()
    for sid in ("CA1", "CA2"):
        book.bridge_event(
            BridgeUpdate(kind="leave", conference_sid="CF1", call_sid=sid, reason="bridge_failed"), later
        )
    assert book.lost_room(T0), "both dropped at once, not by hanging up"
    assert book.bridge_moved("telnyx", later, T0) == ["ann", "bob"], "both called into the new room"
    assert not book.lost_room(T0), "the old room's drops are not the new room's"
