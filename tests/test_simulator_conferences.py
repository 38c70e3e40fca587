"""The simulator's Conferences API through the real `twilio` SDK: rooms listed while live and
kept once ended, participants muted, held, removed and dialled in, and the conference callbacks
telling why each participant left and why the room ended."""

from __future__ import annotations

from pathlib import Path

import pytest
from twilio.base.exceptions import TwilioRestException

from carrier.simulator import Scenario
from carrier.simulator.scenario import NumberPlan
from tests.test_simulator_support import CALLER_ID, Bench, bench, until

ALICE, BRUNO, CHLOE, DAN = "+41215550101", "+41215550102", "+41215550103", "+41215550104"
SCENARIO = Scenario(
    ring_seconds=0.05,
    numbers={
        ALICE: "answer",
        BRUNO: "answer",
        CHLOE: "no-answer",
        DAN: NumberPlan(answer="answer", hangup_after_s=0.1),
    },
)


async def in_room(b: Bench, room: str, *numbers: str) -> list[str]:
    sids = [await b.call_into_room(number, room) for number in numbers]
    await until(lambda: len(b.room_events("participant-join")) == len(numbers))
    return sids


def departures(b: Bench) -> list[tuple[str, str, str]]:
    return [
        (p["CallSid"], p["ReasonParticipantLeft"], p["ParticipantCallStatus"])
        for p in b.room_events("participant-leave")
    ]


async def test_a_room_is_listed_while_live_and_kept_as_completed_once_ended(tmp_path: Path) -> None:
    async with bench(tmp_path, SCENARIO) as b:
        alice, bruno = await in_room(b, "drill-a", ALICE, BRUNO)
        [live] = await b.client.conferences.list_async(friendly_name="drill-a", status="in-progress")
        assert live.reason_conference_ended is None
        people = await b.client.conferences(live.sid).participants.list_async()
        assert sorted(p.call_sid for p in people) == sorted([alice, bruno])
        assert all(p.conference_sid == live.sid and p.status == "connected" for p in people)
        assert not any(p.muted or p.hold for p in people)

        ended = await b.client.conferences(live.sid).update_async(status="completed")

        assert ended.status == "completed" and ended.reason_conference_ended == "conference-ended-via-api"
        assert await b.client.conferences.list_async(status="in-progress") == []
        [kept] = await b.client.conferences.list_async(friendly_name="drill-a", status="completed")
        assert kept.sid == live.sid
        assert await b.client.conferences(live.sid).participants.list_async() == []
        assert {(await b.client.calls(sid).fetch_async()).status for sid in (alice, bruno)} == {"completed"}
        assert sorted(departures(b)) == sorted(
            (sid, "conference_ended_via_api", "completed") for sid in (alice, bruno)
        )
        [end] = b.room_events("conference-end")
        assert end["ReasonConferenceEnded"] == "conference-ended-via-api"
        assert "CallSidEndingConference" not in end


async def test_muting_and_holding_through_the_api_is_told_to_the_room(tmp_path: Path) -> None:
    async with bench(tmp_path, SCENARIO) as b:
        alice, _ = await in_room(b, "drill-m", ALICE, BRUNO)
        [room] = await b.client.conferences.list_async(friendly_name="drill-m")
        participant = b.client.conferences(room.sid).participants(alice)

        assert (await participant.update_async(muted=True)).muted
        muted = await b.client.conferences(room.sid).participants.list_async(muted=True)
        assert [p.call_sid for p in muted] == [alice]
        await participant.update_async(muted=False)
        await participant.update_async(hold=True)

        assert (await participant.fetch_async()).hold
        told = [
            (p["StatusCallbackEvent"], p["CallSid"], p["Muted"], p["Hold"])
            for p in b.hooks.at("/room")
            if p["StatusCallbackEvent"] in ("participant-mute", "participant-unmute", "participant-hold")
        ]
        assert told == [
            ("participant-mute", alice, "true", "false"),
            ("participant-unmute", alice, "false", "false"),
            ("participant-hold", alice, "false", "true"),
        ]


async def test_removing_participants_completes_their_calls_and_the_last_one_ends_the_room(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path, SCENARIO) as b:
        alice, bruno = await in_room(b, "drill-k", ALICE, BRUNO)
        [room] = await b.client.conferences.list_async(friendly_name="drill-k")

        await b.client.conferences(room.sid).participants(alice).delete_async()

        assert (await b.client.calls(alice).fetch_async()).status == "completed"
        assert [p.call_sid for p in await b.client.conferences(room.sid).participants.list_async()] == [bruno]
        await b.client.conferences(room.sid).participants(bruno).delete_async()
        assert departures(b) == [
            (alice, "participant_updated_via_api", "completed"),
            (bruno, "participant_updated_via_api", "completed"),
        ]
        ended = await b.client.conferences(room.sid).fetch_async()
        assert ended.reason_conference_ended == "last-participant-kicked"
        assert ended.call_sid_ending_conference == bruno
        [end] = b.room_events("conference-end")
        assert (end["ReasonConferenceEnded"], end["CallSidEndingConference"]) == (
            "last-participant-kicked",
            bruno,
        )


async def test_a_callee_hanging_up_is_told_apart_from_a_hang_up_through_the_calls_api(tmp_path: Path) -> None:
    async with bench(tmp_path, SCENARIO) as b:
        alice, dan = await in_room(b, "drill-h", ALICE, DAN)
        await until(lambda: len(departures(b)) == 1)

        await b.client.calls(alice).update_async(status="completed")

        assert departures(b) == [
            (dan, "participant_hung_up", "completed"),
            (alice, "participant_updated_via_api", "completed"),
        ]
        [end] = b.room_events("conference-end")
        assert (end["ReasonConferenceEnded"], end["CallSidEndingConference"]) == (
            "last-participant-left",
            alice,
        )


async def test_a_moderator_leaving_ends_the_room_for_everyone(tmp_path: Path) -> None:
    async with bench(tmp_path, SCENARIO) as b:
        moderator = await b.call_into_room(ALICE, "drill-e", end_conference_on_exit=True)
        other = await b.call_into_room(BRUNO, "drill-e")
        await until(lambda: len(b.room_events("participant-join")) == 2)

        await b.client.calls(moderator).update_async(status="completed")

        assert departures(b) == [
            (moderator, "participant_updated_via_api", "completed"),
            (other, "moderator_ended_conference", "completed"),
        ]
        [end] = b.room_events("conference-end")
        assert end["ReasonConferenceEnded"] == "participant-with-end-conference-on-exit-left"
        assert end["CallSidEndingConference"] == moderator
        assert (await b.client.calls(other).fetch_async()).status == "completed"


async def test_a_participant_dialled_into_a_room_joins_when_answered_or_is_reported_not_added(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path, SCENARIO) as b:
        added = await b.client.conferences("drill-d").participants.create_async(
            from_=CALLER_ID,
            to=ALICE,
            label="alice",
            status_callback=b.hook("/call"),
            status_callback_event=["ringing", "answered", "completed"],
            conference_status_callback=b.hook("/room"),
            conference_status_callback_event=["start", "end", "join", "leave"],
        )
        assert (added.status, added.label) == ("queued", "alice")
        [room] = await b.client.conferences.list_async(friendly_name="drill-d")
        assert room.status == "init" and room.sid == added.conference_sid

        await until(lambda: bool(b.room_events("participant-join")))

        joined = await b.client.conferences(room.sid).participants("alice").fetch_async()
        assert joined.status == "connected" and joined.call_sid == added.call_sid
        assert (await b.client.conferences(room.sid).fetch_async()).status == "in-progress"
        assert [p["CallStatus"] for p in b.hooks.at("/call")] == ["ringing", "in-progress"]

        missed = await b.client.conferences(room.sid).participants.create_async(from_=CALLER_ID, to=CHLOE)
        await until(lambda: bool(departures(b)))

        assert departures(b) == [(missed.call_sid, "participant_add_failed", "no-answer")]
        assert [p.call_sid for p in await b.client.conferences(room.sid).participants.list_async()] == [
            added.call_sid
        ]


async def test_unknown_and_ended_rooms_are_refused(tmp_path: Path) -> None:
    async with bench(tmp_path, SCENARIO) as b:
        with pytest.raises(TwilioRestException) as unknown:
            await b.client.conferences("CF" + "0" * 32).fetch_async()
        assert (unknown.value.status, unknown.value.code) == (404, 20404)

        await in_room(b, "drill-x", ALICE)
        [room] = await b.client.conferences.list_async(friendly_name="drill-x")
        await b.client.conferences(room.sid).update_async(status="completed")

        with pytest.raises(TwilioRestException) as again:
            await b.client.conferences(room.sid).update_async(status="completed")
        with pytest.raises(TwilioRestException) as adding:
            await b.client.conferences(room.sid).participants.create_async(from_=CALLER_ID, to=BRUNO)
        assert again.value.code == adding.value.code == 16022
        assert len(b.simulator.calls) == 1, "no call placed into an ended room"
