"""The Telnyx adapter through the real `telnyx` SDK against the simulator's Telnyx dialect: calls
answered into a conference, its callbacks signed with ed25519 and verified, moderation, SMS sent
once per idempotency key, forged callbacks refused, and carrier errors sorted as for Twilio."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from callbacks.server import serve
from carrier.port import Bridge, CarrierError, FailureKind, OutboundCall, SignedCallback
from carrier.simulator import CarrierSimulator, Scenario
from carrier.simulator.client import place_inbound_call
from carrier.simulator.faults import Faults
from carrier.simulator.journal import Journal
from carrier.simulator.rooms import MAX_PARTICIPANTS, Participant, Rooms, RoomSettings
from carrier.simulator.webhooks import TelnyxSigner, Webhooks
from carrier.telnyx import TelnyxCarrier
from domain.speech import spoken
from i18n.languages import voice
from stack.loopback import eventually
from stack.ports import free_port

ACCOUNT = "9c1e4b8a-5f2d-4e3a-9b7c-1d2e3f4a5b6c"
API_KEY = "KEY0123456789ABCDEF_test"
APPLICATION = "1293384261075731499"
CALLER_ID = "+41215550100"
ANSWERS = ("+41215550101", "+41215550102", "+41215550103")
ACKNOWLEDGES = "+41215550104"
DIAL_IN = "+41215550199"
ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class KeyPair:
    private: str
    public: str


def key_pair() -> KeyPair:
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes_raw()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return KeyPair(base64.b64encode(seed).decode(), base64.b64encode(public).decode())


KEYS = key_pair()


@dataclasses.dataclass
class Received:
    path: str
    params: dict[str, str]
    authentic: bool


@dataclasses.dataclass
class Sim:
    url: str
    simulator: CarrierSimulator
    carrier: TelnyxCarrier
    receiver: str
    received: list[Received]
    journal: Path
    answers: dict[str, str]
    """What our miniature callback server answers, by path."""

    def entries(self, kind: str) -> list[dict[str, Any]]:
        lines = self.journal.read_text().splitlines() if self.journal.exists() else []
        return [entry for entry in map(json.loads, lines) if entry["kind"] == kind]

    def events(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]


def receiver_app(
    carrier: TelnyxCarrier, received: list[Received], answers: dict[str, str]
) -> web.Application:
    """Our callback server in miniature: every POST is verified with `is_authentic` and kept; the
    TeXML at `answers[path]` (if any) is the answer."""

    async def callback(request: web.Request) -> web.Response:
        body = await request.read()
        params = {k: str(v) for k, v in (await request.post()).items()}
        signed = SignedCallback(url=str(request.url), params=params, headers=dict(request.headers), body=body)
        received.append(Received(request.path, params, carrier.is_authentic(signed)))
        return web.Response(text=answers.get(request.path, ""), content_type="application/xml")

    app = web.Application()
    app.add_routes([web.post("/{tail:.*}", callback)])
    return app


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Sim]:
    received: list[Received] = []
    answers: dict[str, str] = {}
    receiver_port = free_port()
    receiver = f"http://127.0.0.1:{receiver_port}"
    numbers: dict[str, Any] = {
        **dict.fromkeys(ANSWERS, "answer"),
        ACKNOWLEDGES: {"answer": "answer", "press": "1"},
    }
    scenario = Scenario(ring_seconds=0.05, default="no-answer", numbers=numbers)
    simulator = CarrierSimulator(
        ACCOUNT, API_KEY, scenario, tmp_path / "journal",
        dial_in_number=DIAL_IN, voice_url=f"{receiver}/voice", dialect="telnyx", signing_key=KEYS.private,
    )  # fmt: skip
    runner = await serve(simulator.app(), "127.0.0.1", 0)
    url = "http://{}:{}".format(*runner.addresses[0][:2])
    carrier = TelnyxCarrier(API_KEY, ACCOUNT, APPLICATION, KEYS.public, url)
    callbacks = await serve(receiver_app(carrier, received, answers), "127.0.0.1", receiver_port)
    yield Sim(url, simulator, carrier, receiver, received, tmp_path / "journal", answers)
    await carrier.close()
    await runner.cleanup()
    await callbacks.cleanup()


def bridge(sim: Sim, room: str = "room-1") -> Bridge:
    return Bridge(
        room=room,
        welcome=spoken("Welcome to the bridge.", "en"),
        record=False,
        events_callback=f"{sim.receiver}/bridge",
        recording_callback=f"{sim.receiver}/recording",
    )


def call_to(sim: Sim, number: str, room: str = "room-1") -> OutboundCall:
    return OutboundCall(
        to=number,
        caller_id=CALLER_ID,
        bridge=bridge(sim, room),
        message=(),
        acknowledge_url=None,
        ring_timeout=timedelta(seconds=30),
        status_callback=f"{sim.receiver}/status",
        machine_callback=f"{sim.receiver}/amd",
    )


async def joined(sim: Sim, *calls: str, room: str = "room-1") -> str:
    """The room's conference ID, once exactly `calls` are in it."""
    conference, _ = await eventually(
        lambda: sim.carrier.bridge_members(room), lambda m: m[1] == sorted(calls)
    )
    assert conference is not None
    return conference


async def test_an_answered_call_joins_the_bridge_and_its_signed_callbacks_tell_so(sim: Sim) -> None:
    decided_at = datetime.now(UTC)
    call = await sim.carrier.place_call(call_to(sim, ANSWERS[0]))
    conference = await joined(sim, call)

    state = await sim.carrier.call_state(call)
    assert (state.status, state.answered_by) == ("in-progress", "human")
    await eventually(lambda: sim.events("/bridge"), lambda events: len(events) >= 2)
    assert sim.received and all(r.authentic for r in sim.received), "every callback verifies"
    statuses = [sim.carrier.parse_call_event(r.params) for r in sim.events("/status")]
    assert [(e.call_sid, e.status) for e in statuses] == [(call, "queued"), (call, "in-progress")]
    machine = [sim.carrier.parse_call_event(r.params) for r in sim.events("/amd")]
    assert [(e.call_sid, e.answered_by) for e in machine] == [(call, "human")]
    room_events = [sim.carrier.parse_bridge_event(r.params) for r in sim.events("/bridge")]
    assert [(e.kind, e.conference_sid, e.call_sid) for e in room_events] == [
        ("start", conference, None),
        ("join", conference, call),
    ]
    said = [(e["sid"], e["language"], e["text"]) for e in sim.entries("said")]
    assert said == [(call, voice("en"), "Welcome to the bridge.")], "the welcome is said in its voice"

    assert await sim.carrier.calls_to(ANSWERS[0], CALLER_ID, decided_at) == [call]
    assert await sim.carrier.calls_to(ANSWERS[1], CALLER_ID, decided_at) == [], (
        "another number's calls are not"
    )
    later = datetime.now(UTC) + timedelta(seconds=5)
    assert await sim.carrier.calls_to(ANSWERS[0], CALLER_ID, later) == [], "older calls are not"
    assert [e["sid"] for e in sim.entries("call")] == [call]


async def test_the_bridge_is_moderated_through_texml_conferences(sim: Sim) -> None:
    first, second, third = [await sim.carrier.place_call(call_to(sim, number)) for number in ANSWERS]
    conference = await joined(sim, first, second, third)
    participants = sim.simulator.rooms["room-1"].participants

    await sim.carrier.mute(conference, first, True)
    assert participants[first].muted and not participants[second].muted
    await sim.carrier.mute(conference, first, False)
    assert not participants[first].muted

    await sim.carrier.remove(conference, first)
    assert (await sim.carrier.call_state(first)).status == "completed"
    assert (await sim.carrier.bridge_members("room-1")) == (conference, sorted([second, third]))
    leaving = [sim.carrier.parse_bridge_event(r.params) for r in sim.events("/bridge")]
    assert [(e.call_sid, e.reason) for e in leaving if e.kind == "leave"] == [
        (first, "participant_updated_via_api")
    ]

    await sim.carrier.hang_up(second)
    assert (await sim.carrier.call_state(second)).status == "completed"
    assert (await sim.carrier.bridge_members("room-1")) == (conference, [third])
    await sim.carrier.hang_up(second)  # already over: done, not an error

    await sim.carrier.end_conference(conference)
    assert (await sim.carrier.bridge_members("room-1")) == (None, [])
    assert (await sim.carrier.call_state(third)).status == "completed"
    await sim.carrier.end_conference(conference)  # an ended room: done, not an error
    assert [e["sid"] for e in sim.entries("kick")] == [first]
    assert [e["sid"] for e in sim.entries("hangup")] == [second]
    assert [e["sid"] for e in sim.entries("end-conference")] == [conference]


async def test_an_sms_tried_twice_with_one_key_is_sent_once(sim: Sim) -> None:
    first = await sim.carrier.send_sms(
        "+41795550101", CALLER_ID, "PIN 123456", sent_since=None, key="run/7/sms"
    )
    again = await sim.carrier.send_sms(
        "+41795550101", CALLER_ID, "PIN 123456", sent_since=datetime.now(UTC), key="run/7/sms"
    )
    other = await sim.carrier.send_sms(
        "+41795550101", CALLER_ID, "PIN 123456", sent_since=None, key="run/8/sms"
    )
    assert again == first and other != first
    assert [m["sid"] for m in sim.simulator.messages] == [first, other]
    assert [e["sid"] for e in sim.entries("sms")] == [first, other]


async def test_a_lost_answer_to_an_sms_is_mended_by_its_key(tmp_path: Path) -> None:
    scenario = Scenario(faults={"+41795550101": ["lost-response"]})
    async with telnyx_simulator(tmp_path, scenario) as (simulator, carrier):
        with pytest.raises(CarrierError) as lost:
            await carrier.send_sms("+41795550101", CALLER_ID, "PIN 1", sent_since=None, key="k")
        assert lost.value.kind is FailureKind.TRANSIENT and lost.value.maybe_done
        sent = await carrier.send_sms(
            "+41795550101", CALLER_ID, "PIN 1", sent_since=datetime.now(UTC), key="k"
        )
        assert [m["sid"] for m in simulator.messages] == [sent], "the retry got the first try's message"


async def test_a_message_call_is_acknowledged_with_a_key(sim: Sim) -> None:
    message = dataclasses.replace(
        call_to(sim, ACKNOWLEDGES),
        bridge=None,
        message=spoken("The site is on fire.", "en"),
        acknowledge_url=f"{sim.receiver}/ack",
        acknowledge_prompt=spoken("Press 1.", "en"),
    )
    call = await sim.carrier.place_call(message)
    acks = await eventually(lambda: sim.events("/ack"), lambda found: len(found) == 1)
    assert acks[0].authentic and sim.carrier.parse_keyed_digits(acks[0].params) == "1"
    assert sim.carrier.parse_call_event(acks[0].params).call_sid == call
    said = [e["text"] for e in sim.entries("said")]
    assert said == ["The site is on fire.", "Press 1."]


def signed(params: dict[str, str], timestamp: int, key: str = KEYS.private) -> SignedCallback:
    """A callback as Telnyx signs it: ed25519 over `"{timestamp}|{body}"`."""
    body = "&".join(f"{k}={v}" for k, v in params.items()).encode()
    private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(key))
    signature = base64.b64encode(private.sign(f"{timestamp}|".encode() + body)).decode()
    headers = {"Telnyx-Signature-Ed25519": signature, "Telnyx-Timestamp": str(timestamp)}
    return SignedCallback(url="https://rallycall.example/status", params=params, headers=headers, body=body)


async def test_forged_stale_or_unsigned_callbacks_are_refused(sim: Sim) -> None:
    params = {"CallSid": "v3:abc", "CallStatus": "completed"}
    now = int(time.time())
    genuine = signed(params, now)
    assert sim.carrier.is_authentic(genuine)
    assert sim.carrier.is_authentic(signed(params, now - 290)), "within 300 s"

    forged = dataclasses.replace(genuine, body=genuine.body.replace(b"completed", b"in-progress"))
    assert not sim.carrier.is_authentic(forged), "a body changed after signing"
    assert not sim.carrier.is_authentic(signed(params, now, key=key_pair().private)), "another key"
    for header in ("Telnyx-Signature-Ed25519", "Telnyx-Timestamp"):
        missing = {k: v for k, v in genuine.headers.items() if k != header}
        assert not sim.carrier.is_authentic(dataclasses.replace(genuine, headers=missing)), header
    assert not sim.carrier.is_authentic(signed(params, now - 301)), "stale"
    assert not sim.carrier.is_authentic(signed(params, now + 301)), "from the future"
    own = TelnyxSigner(KEYS.private).sign("https://rallycall.example/status", params)
    assert sim.carrier.is_authentic(SignedCallback("https://x", params, own.headers, own.body))


async def test_texml_gathers_keys_and_posts_an_empty_result(sim: Sim) -> None:
    """The dial-in line through the simulator: the PIN prompt's keys reach the action URL; no key
    at all still posts there (the `<Redirect>` after `<Gather>`), without `Digits`."""
    answers = sim.answers
    answers["/voice"] = sim.carrier.ask_for_pin(f"{sim.receiver}/pin", spoken("Your PIN?", "fr"), 6)
    answers["/pin"] = sim.carrier.connect_to_bridge(bridge(sim, "room-pin"))
    keyed = await place_inbound_call(sim.url, "+41795550103", ["123456"])
    assert keyed["joined"] == "room-pin"
    assert [sim.carrier.parse_keyed_digits(r.params) for r in sim.events("/pin")] == ["123456"]

    answers["/pin"] = sim.carrier.say_goodbye(spoken("Goodbye.", "en"))
    silent = await place_inbound_call(sim.url, "+41795550104", [])
    assert silent["joined"] is None and f"heard [{voice('en')}]: Goodbye." in silent["transcript"]
    assert [sim.carrier.parse_keyed_digits(r.params) for r in sim.events("/pin")] == ["123456", ""]
    inbound = sim.carrier.parse_inbound_call(sim.events("/voice")[0].params)
    assert inbound.caller == "+41795550103" and all(r.authentic for r in sim.received)


@contextlib.asynccontextmanager
async def telnyx_simulator(
    tmp_path: Path, scenario: Scenario, api_key: str = API_KEY
) -> AsyncIterator[tuple[CarrierSimulator, TelnyxCarrier]]:
    simulator = CarrierSimulator(
        ACCOUNT, API_KEY, scenario, tmp_path / "journal", dialect="telnyx", signing_key=KEYS.private
    )
    runner = await serve(simulator.app(), "127.0.0.1", 0)
    url = "http://{}:{}".format(*runner.addresses[0][:2])
    carrier = TelnyxCarrier(api_key, ACCOUNT, APPLICATION, KEYS.public, url)
    try:
        yield simulator, carrier
    finally:
        await carrier.close()
        await runner.cleanup()


async def test_wrong_api_key_is_a_configuration_error(tmp_path: Path) -> None:
    async with telnyx_simulator(tmp_path, Scenario(), api_key="KEY_wrong") as (simulator, carrier):
        with pytest.raises(CarrierError) as failure:
            await carrier.place_call(call_to_nowhere(ANSWERS[0]))
        assert not simulator.calls
    assert failure.value.kind is FailureKind.CONFIGURATION and failure.value.code == "10009"


async def test_an_invalid_number_is_the_destination_and_an_invalid_caller_id_the_configuration(
    tmp_path: Path,
) -> None:
    async with telnyx_simulator(tmp_path, Scenario()) as (simulator, carrier):
        with pytest.raises(CarrierError) as destination:
            await carrier.place_call(call_to_nowhere("+999123456789"))
        with pytest.raises(CarrierError) as sms_destination:
            await carrier.send_sms("+999123456789", CALLER_ID, "x", sent_since=None, key="k")
        with pytest.raises(CarrierError) as caller_id:
            await carrier.place_call(dataclasses.replace(call_to_nowhere(ANSWERS[0]), caller_id="+4121"))
        assert not simulator.calls and not simulator.messages
    assert destination.value.kind is FailureKind.DESTINATION and destination.value.code == "10002"
    assert sms_destination.value.kind is FailureKind.DESTINATION
    assert "+999123456789" not in str(destination.value), "numbers are masked in messages"
    assert caller_id.value.kind is FailureKind.CONFIGURATION


async def test_server_errors_may_have_done_it_and_rate_limits_did_not(tmp_path: Path) -> None:
    scenario = Scenario(
        ring_seconds=60, faults={ANSWERS[0]: ["server-error", "rate-limited", "lost-response"]}
    )
    async with telnyx_simulator(tmp_path, scenario) as (simulator, carrier):
        decided_at = datetime.now(UTC)
        failures = []
        for _ in range(3):
            with pytest.raises(CarrierError) as failure:
                await carrier.place_call(call_to_nowhere(ANSWERS[0]))
            failures.append(failure.value)
        placed = await carrier.calls_to(ANSWERS[0], CALLER_ID, decided_at)
        assert list(simulator.calls) == placed and len(placed) == 1, "only the lost answer's call exists"
    assert [(f.kind, f.code, f.maybe_done) for f in failures] == [
        (FailureKind.TRANSIENT, "10007", True),
        (FailureKind.TRANSIENT, "10011", False),
        (FailureKind.TRANSIENT, "10007", True),
    ]


async def test_a_drills_server_error_window_refuses_the_telnyx_api_too(tmp_path: Path) -> None:
    async with telnyx_simulator(tmp_path, Scenario()) as (simulator, carrier):
        simulator.faults.open_windows(server_errors_for_s=5, webhooks_paused_for_s=None)
        with pytest.raises(CarrierError) as sms:
            await carrier.send_sms("+41795550101", CALLER_ID, "x", sent_since=None, key="w")
        with pytest.raises(CarrierError) as call:
            await carrier.place_call(call_to_nowhere(ANSWERS[0]))
        assert not simulator.messages and not simulator.calls
    assert {(e.value.kind, e.value.code, e.value.maybe_done) for e in (sms, call)} == {
        (FailureKind.TRANSIENT, "10007", True)
    }
    faults = [e["request"] for e in map(json.loads, (tmp_path / "journal").read_text().splitlines())
              if e["kind"] == "fault"]  # fmt: skip
    assert faults == ["POST /v2/messages", f"POST /v2/texml/Accounts/{ACCOUNT}/Calls"]


@contextlib.asynccontextmanager
async def stub(status: int | None) -> AsyncIterator[str]:
    """A Telnyx that answers `status` with an error body, or (None) never answers."""

    async def answer(request: web.Request) -> web.Response:
        if status is None:
            await asyncio.sleep(2)  # the client gives up after 0.5 s
        body = {"errors": [{"code": "10007", "title": "Unexpected error"}]}
        return web.json_response(body, status=status or 200)

    app = web.Application()
    app.add_routes([web.route("*", "/{tail:.*}", answer)])
    runner = await serve(app, "127.0.0.1", 0)
    try:
        yield "http://{}:{}".format(*runner.addresses[0][:2])
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("status", "maybe_done"), [(500, True), (503, False), (429, False), (None, True)], ids=str
)
async def test_transient_failures_say_whether_it_may_have_been_done(
    status: int | None, maybe_done: bool
) -> None:
    async with stub(status) as url:
        carrier = TelnyxCarrier(API_KEY, ACCOUNT, APPLICATION, KEYS.public, url, request_timeout=0.5)
        try:
            with pytest.raises(CarrierError) as failure:
                await carrier.place_call(call_to_nowhere(ANSWERS[0]))
        finally:
            await carrier.close()
    assert (failure.value.kind, failure.value.maybe_done) == (FailureKind.TRANSIENT, maybe_done)


async def test_a_refused_connection_reached_nothing() -> None:
    carrier = TelnyxCarrier(API_KEY, ACCOUNT, APPLICATION, KEYS.public, f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(CarrierError) as failure:
            await carrier.send_sms("+41795550101", CALLER_ID, "x", sent_since=None, key="k")
    finally:
        await carrier.close()
    assert (failure.value.kind, failure.value.maybe_done) == (FailureKind.TRANSIENT, False)


def call_to_nowhere(number: str) -> OutboundCall:
    return OutboundCall(
        to=number,
        caller_id=CALLER_ID,
        bridge=None,
        message=spoken("Test.", "en"),
        acknowledge_url=None,
        ring_timeout=timedelta(seconds=30),
        status_callback="http://127.0.0.1:9/unused",
        machine_callback="http://127.0.0.1:9/unused",
    )


async def test_a_room_holds_at_most_250_participants() -> None:
    quiet = Journal(None)
    rooms = Rooms(ACCOUNT, Webhooks(TelnyxSigner(KEYS.private), quiet, Faults({}, quiet)))
    room = rooms.open("full", RoomSettings())
    admitted = [await rooms.join(room, Participant(f"CA{n:032d}")) for n in range(MAX_PARTICIPANTS + 1)]
    assert admitted == [True] * MAX_PARTICIPANTS + [False]
    assert len(room.participants) == MAX_PARTICIPANTS == 250


async def test_the_simulator_process_serves_the_telnyx_dialect(tmp_path: Path) -> None:
    journal = tmp_path / "carrier.jsonl"
    command = [sys.executable, "-m", "carrier.simulator", "serve", "--port", "0", "--log", str(journal),
               "--dialect", "telnyx", "--account-sid", ACCOUNT, "--auth-token", API_KEY]  # fmt: skip
    unsigned = await asyncio.create_subprocess_exec(*command, cwd=ROOT, stderr=asyncio.subprocess.PIPE)
    assert await asyncio.wait_for(unsigned.wait(), 10) == 2, "Telnyx webhooks need a signing key"
    process = await asyncio.create_subprocess_exec(
        *command, "--signing-key", KEYS.private, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        url = (await asyncio.wait_for(process.stdout.readline(), 10)).decode().strip()
        carrier = TelnyxCarrier(API_KEY, ACCOUNT, APPLICATION, KEYS.public, url)
        try:
            sent = await carrier.send_sms("+41795550101", CALLER_ID, "PIN 1", sent_since=None, key="k")
        finally:
            await carrier.close()
        assert json.loads(journal.read_text().splitlines()[0])["sid"] == sent
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
