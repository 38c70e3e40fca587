"""The Twilio adapter through the real SDK against the simulator: retries never place a second
call or send a second SMS, and carrier errors are sorted into what to do about them."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.calls import DIALLING, NOT_PLACED, CarrierActivities, PlaceCall, earlier_try
from callbacks.server import serve
from callbacks.urls import bridge_for
from carrier.accounts import Carriers
from carrier.port import CarrierError, FailureKind, OutboundCall
from carrier.simulator import CarrierSimulator, Scenario
from carrier.twilio import TwilioCarrier
from config import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN
from stack.ports import free_port


@dataclasses.dataclass
class Sim:
    url: str
    simulator: CarrierSimulator
    carrier: TwilioCarrier


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Sim]:
    simulator = CarrierSimulator(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, Scenario(ring_seconds=60), tmp_path / "log")
    runner = await serve(simulator.app(), "127.0.0.1", 0)
    url = "http://{}:{}".format(*runner.addresses[0][:2])
    carrier = TwilioCarrier(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, url)
    yield Sim(url, simulator, carrier)
    await carrier.close()
    await runner.cleanup()


def call_to(number: str) -> OutboundCall:
    return OutboundCall(
        to=number,
        caller_id="+41215550100",
        bridge=bridge_for("http://127.0.0.1:9", "conference-test", (), record=False),
        message=(),
        acknowledge_url=None,
        ring_timeout=timedelta(seconds=30),
        status_callback="http://127.0.0.1:9/unused",
        machine_callback="http://127.0.0.1:9/unused",
    )


def place_call_request(number: str) -> PlaceCall:
    return PlaceCall(
        attempt_id="001/alice/0",
        to=number,
        caller_id="+41215550100",
        objective="conference",
        message="hello",
        record=False,
        ring_timeout=timedelta(seconds=30),
        queued_at=datetime.now(UTC),
        not_after=datetime.now(UTC) + timedelta(minutes=2),
    )


async def test_calls_to_a_number_since_a_moment_are_what_a_retry_accounts_for(sim: Sim) -> None:
    decided_at = datetime.now(UTC)
    first = await sim.carrier.place_call(call_to("+41215550101"))
    await sim.carrier.place_call(call_to("+41215550102"))
    assert await sim.carrier.calls_to("+41215550101", "+41215550100", decided_at) == [first]
    later = datetime.now(UTC) + timedelta(seconds=5)
    assert await sim.carrier.calls_to("+41215550101", "+41215550100", later) == [], "older calls are not"


async def test_retried_sms_is_not_sent_twice(sim: Sim) -> None:
    decided_at = datetime.now(UTC)
    first = await sim.carrier.send_sms("+41795550101", "+41215550100", "PIN 123456", sent_since=None)
    again = await sim.carrier.send_sms("+41795550101", "+41215550100", "PIN 123456", sent_since=decided_at)
    other = await sim.carrier.send_sms("+41795550101", "+41215550100", "PIN 654321", sent_since=decided_at)
    assert again == first and other != first and len(sim.simulator.messages) == 2


async def test_a_retry_after_a_sure_refusal_dials_and_any_other_retry_never_dials_blind(sim: Sim) -> None:
    activities = CarrierActivities(
        Carriers({"twilio": sim.carrier}), "http://127.0.0.1:8080"
    )  # no client: cannot ask the run
    request = place_call_request("+41215550101")
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=[NOT_PLACED])
    await env.run(activities.place_call, request)
    assert len(sim.simulator.calls) == 1, "the carrier refused the first try for sure: dial"
    env.info = dataclasses.replace(env.info, attempt=3, heartbeat_details=[])
    elsewhere = CarrierActivities(
        Carriers({"twilio": sim.carrier}), "http://127.0.0.1:8080"
    )  # another worker process
    with pytest.raises(ApplicationError) as unknown:
        await env.run(elsewhere.place_call, request)
    assert unknown.value.type == "CallOutcomeUnknown" and unknown.value.non_retryable
    assert len(sim.simulator.calls) == 1, "an earlier try may have placed it: never dial twice"


async def test_invalid_destination_is_a_permanent_failure_of_that_attempt(sim: Sim) -> None:
    with pytest.raises(CarrierError) as failure:
        await sim.carrier.place_call(call_to("+4121"))
    assert failure.value.kind is FailureKind.DESTINATION and failure.value.code == "21211"

    activities = CarrierActivities(Carriers({"twilio": sim.carrier}), "http://127.0.0.1:8080")
    with pytest.raises(ApplicationError) as error:
        await ActivityEnvironment().run(activities.place_call, place_call_request("+4121"))
    assert error.value.type == "DestinationRejected" and error.value.non_retryable
    assert "Twilio error 21211" in error.value.message


async def test_wrong_credentials_are_a_configuration_error(sim: Sim) -> None:
    wrong = TwilioCarrier(DEV_ACCOUNT_SID, "wrong-token", sim.url)
    try:
        with pytest.raises(CarrierError) as failure:
            await wrong.place_call(call_to("+41215550101"))
    finally:
        await wrong.close()
    assert failure.value.kind is FailureKind.CONFIGURATION and failure.value.code == "20003"


async def test_unreachable_carrier_is_transient() -> None:
    carrier = TwilioCarrier(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(CarrierError) as failure:
            await carrier.send_sms("+41795550101", "+41215550100", "x", sent_since=None)
    finally:
        await carrier.close()
    assert failure.value.kind is FailureKind.TRANSIENT


async def test_a_retry_beside_a_try_still_running_in_this_worker_takes_its_call(sim: Sim) -> None:
    """A busy worker's heartbeats came late, and the server started the next try while the first
    still runs in the same process: the second takes the first's call, and dials nothing."""
    activities = CarrierActivities(Carriers({"twilio": sim.carrier}), "http://127.0.0.1:8080")
    request = place_call_request("+41215550101")
    env = ActivityEnvironment()
    first = await env.run(activities.place_call, request)
    env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=[])
    assert await env.run(activities.place_call, request) == first
    assert len(sim.simulator.calls) == 1


def test_a_retry_adopts_a_lone_call_only_since_the_earlier_try_began_dialling() -> None:
    """The earlier try recorded when it began dialling: a lone call since then is its own. It
    recorded nothing (its worker died first): look since the call was queued, adopt nothing."""
    queued = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    began = queued + timedelta(minutes=3)
    assert not earlier_try(1, [], queued).may_exist, "the first try dials"
    assert not earlier_try(2, [NOT_PLACED], queued).may_exist, "after a sure refusal: dial"
    recorded = earlier_try(2, [{DIALLING: began.isoformat()}], queued)
    assert recorded.may_exist and recorded.recorded and began - timedelta(seconds=3) < recorded.since < began
    blind = earlier_try(2, [], queued)
    assert blind.may_exist and not blind.recorded and blind.since == queued
