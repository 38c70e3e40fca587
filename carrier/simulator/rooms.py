"""Conference rooms and who is in them, with the conference callbacks Twilio sends.

A room is configured by whoever creates it (the first `<Conference>` to enter it, or a
Participants API request); later settings are ignored, as at Twilio. An ended room is kept as
`completed` for the Conferences API; a new call to the same name opens a new room.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from carrier.simulator.shapes import API_VERSION, rfc2822
from carrier.simulator.webhooks import Webhooks

ROOM_EVENTS = {
    "conference-start": "start",
    "conference-end": "end",
    "participant-join": "join",
    "participant-leave": "leave",
    "participant-mute": "mute",
    "participant-unmute": "mute",
    "participant-hold": "hold",
    "participant-unhold": "hold",
}
"""Each callback event, and the `statusCallbackEvent` word that asks for it."""
MAX_PARTICIPANTS = 250
"""A room's limit at Twilio (error 16020 beyond) and at Telnyx (`maxParticipants` 2-250)."""
PENDING_STATUS = {"queued": "queued", "ringing": "ringing", "in-progress": "connecting"}
"""A participant still being dialled shows its call's progress."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Departure:
    """Why a participant leaves, as the `ReasonParticipantLeft` Twilio documents."""

    reason: str
    kicked: bool = False
    """Removed through the Participants API: a room it empties ends `last-participant-kicked`."""


HUNG_UP = Departure("participant_hung_up")
UPDATED_VIA_API = Departure("participant_updated_via_api")
KICKED = Departure("participant_updated_via_api", kicked=True)
CONFERENCE_ENDED = Departure("conference_ended_via_api")
MODERATOR_LEFT = Departure("moderator_ended_conference")
ADD_FAILED = Departure("participant_add_failed")
BRIDGE_FAILED = Departure("bridge_failed")
"""The carrier lost the room (a drill's `drop-rooms`): its calls drop, and no API asked for it."""


@dataclass(frozen=True)
class Ending:
    """Why a room ended (`ReasonConferenceEnded`), whose call ended it, and why everyone still
    in it is disconnected."""

    reason: str
    call_sid: str | None
    departure: Departure


@dataclass(frozen=True)
class RoomSettings:
    status_callback: str | None = None
    events: frozenset[str] = frozenset()
    record: bool = False
    recording_callback: str | None = None

    @classmethod
    def from_twiml(cls, attributes: Mapping[str, str]) -> RoomSettings:
        return cls(
            status_callback=attributes.get("statusCallback"),
            events=frozenset(attributes.get("statusCallbackEvent", "").split()),
            record=attributes.get("record") == "record-from-start",
            recording_callback=attributes.get("recordingStatusCallback"),
        )


@dataclass
class Participant:
    call_sid: str
    label: str | None = None
    muted: bool = False
    hold: bool = False
    start_conference_on_enter: bool = True
    end_conference_on_exit: bool = False
    joined: bool = False
    """False while a call placed through the Participants API is still being dialled."""
    created: datetime = field(default_factory=_now)
    updated: datetime = field(default_factory=_now)

    @classmethod
    def from_twiml(cls, call_sid: str, attributes: Mapping[str, str]) -> Participant:
        return cls(
            call_sid,
            label=attributes.get("participantLabel"),
            muted=attributes.get("muted") == "true",
            start_conference_on_enter=attributes.get("startConferenceOnEnter") != "false",
            end_conference_on_exit=attributes.get("endConferenceOnExit") == "true",
        )

    def resource(self, account: str, room: Room, call_status: str) -> dict[str, Any]:
        return {
            "account_sid": account,
            "call_sid": self.call_sid,
            "conference_sid": room.sid,
            "label": self.label,
            "muted": self.muted,
            "hold": self.hold,
            "coaching": False,
            "call_sid_to_coach": None,
            "start_conference_on_enter": self.start_conference_on_enter,
            "end_conference_on_exit": self.end_conference_on_exit,
            "status": "connected" if self.joined else PENDING_STATUS.get(call_status, "failed"),
            "date_created": rfc2822(self.created),
            "date_updated": rfc2822(self.updated),
            "uri": f"{room.path(account)}/Participants/{self.call_sid}.json",
        }


@dataclass
class Room:
    name: str
    sid: str
    settings: RoomSettings
    participants: dict[str, Participant] = field(default_factory=dict)
    status: str = "init"
    """`init` until a participant with startConferenceOnEnter joins, then `in-progress`, then
    `completed`."""
    ending: Ending | None = None
    sequence: int = 0
    created: datetime = field(default_factory=_now)
    updated: datetime = field(default_factory=_now)

    def path(self, account: str) -> str:
        return f"/{API_VERSION}/Accounts/{account}/Conferences/{self.sid}"

    def resource(self, account: str) -> dict[str, Any]:
        ended = self.ending if self.status == "completed" else None
        base = self.path(account)
        return {
            "sid": self.sid,
            "account_sid": account,
            "friendly_name": self.name,
            "status": self.status,
            "region": "us1",
            "api_version": API_VERSION,
            "date_created": rfc2822(self.created),
            "date_updated": rfc2822(self.updated),
            "reason_conference_ended": ended.reason if ended else None,
            "call_sid_ending_conference": ended.call_sid if ended else None,
            "uri": f"{base}.json",
            "subresource_uris": {
                "participants": f"{base}/Participants.json",
                "recordings": f"{base}/Recordings.json",
            },
        }


class Rooms:
    def __init__(self, account_sid: str, webhooks: Webhooks, recording_seconds: float = 0.0) -> None:
        self.account_sid = account_sid
        self.recording_seconds = recording_seconds
        self._reporting: set[asyncio.Task[None]] = set()
        """Recordings still being "processed": reported `recording_seconds` after their room ended."""
        self.live: dict[str, Room] = {}
        """Rooms not yet ended, by name."""
        self.by_sid: dict[str, Room] = {}
        """Every room, ended ones too."""
        self._webhooks = webhooks

    def open(self, name: str, settings: RoomSettings) -> Room:
        """The live room with this name, or a new one configured by `settings`."""
        room = self.live.get(name)
        if room is None:
            room = Room(name, "CF" + secrets.token_hex(16), settings)
            self.live[name] = room
            self.by_sid[room.sid] = room
        return room

    def find(self, sid_or_name: str) -> Room | None:
        """By SID (ended rooms too) or, as Twilio also accepts, by the name of a live room."""
        return self.by_sid.get(sid_or_name) or self.live.get(sid_or_name)

    def holding(self, call_sid: str) -> Room | None:
        """The live room this call is in, or is being dialled into."""
        return next((room for room in self.live.values() if call_sid in room.participants), None)

    def expect(self, room: Room, participant: Participant) -> None:
        """A participant being dialled through the API: listed now, joined when answered."""
        room.participants[participant.call_sid] = participant

    async def join(self, room: Room, arriving: Participant) -> bool:
        """In the room, unless it already holds `MAX_PARTICIPANTS`: then not admitted (False),
        neither listed nor told."""
        inside = sum(1 for p in room.participants.values() if p.joined)
        if inside >= MAX_PARTICIPANTS:
            room.participants.pop(arriving.call_sid, None)
            return False
        participant = room.participants.setdefault(arriving.call_sid, arriving)
        participant.joined = True
        participant.updated = _now()
        if room.status == "init" and participant.start_conference_on_enter:
            room.status = "in-progress"
            await self._tell(room, "conference-start")
        await self._tell(room, "participant-join", participant)
        return True

    async def leave(self, room: Room, call_sid: str, departure: Departure, call_status: str) -> None:
        """Out of the room (with `participant-leave`); the room ends when nobody is left."""
        participant = room.participants.pop(call_sid)
        why = {"ReasonParticipantLeft": departure.reason, "ParticipantCallStatus": call_status}
        await self._tell(room, "participant-leave", participant, why)
        if not room.participants:
            await self._close(room, departure, call_sid)

    async def update(
        self, room: Room, participant: Participant, muted: bool | None, hold: bool | None
    ) -> None:
        """Mute or hold through the API; a change is told to a room that asked for it."""
        if muted is not None and muted != participant.muted:
            participant.muted = muted
            participant.updated = _now()
            if participant.joined:
                await self._tell(room, "participant-mute" if muted else "participant-unmute", participant)
        if hold is not None and hold != participant.hold:
            participant.hold = hold
            participant.updated = _now()
            if participant.joined:
                await self._tell(room, "participant-hold" if hold else "participant-unhold", participant)

    async def _close(self, room: Room, departure: Departure, call_sid: str) -> None:
        started = room.status == "in-progress"
        if room.ending is None:
            reason = "last-participant-kicked" if departure.kicked else "last-participant-left"
            room.ending = Ending(reason, call_sid, departure)
        room.status = "completed"
        room.updated = _now()
        del self.live[room.name]
        if not started:
            return
        ended = {"ReasonConferenceEnded": room.ending.reason}
        if room.ending.call_sid:
            ended["CallSidEndingConference"] = room.ending.call_sid
        await self._tell(room, "conference-end", extra=ended)
        if room.settings.record and room.settings.recording_callback:
            report = self._report_recording(room.settings.recording_callback, self._recording_params(room))
            if self.recording_seconds:
                task = asyncio.create_task(report)
                self._reporting.add(task)
                task.add_done_callback(self._reporting.discard)
            else:
                await report

    async def _report_recording(self, url: str, params: dict[str, str]) -> None:
        await asyncio.sleep(self.recording_seconds)
        await self._webhooks.post(url, params, "recording completed")

    async def _tell(
        self,
        room: Room,
        event: str,
        participant: Participant | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        if ROOM_EVENTS[event] not in room.settings.events:
            return
        room.sequence += 1
        params = {
            "AccountSid": self.account_sid,
            "ConferenceSid": room.sid,
            "FriendlyName": room.name,
            "StatusCallbackEvent": event,
            "SequenceNumber": str(room.sequence),
            "Timestamp": rfc2822(_now()),
        }
        if participant is not None:
            params.update(
                CallSid=participant.call_sid,
                Muted=_bool(participant.muted),
                Hold=_bool(participant.hold),
                Coaching="false",
                EndConferenceOnExit=_bool(participant.end_conference_on_exit),
                StartConferenceOnEnter=_bool(participant.start_conference_on_enter),
            )
            if participant.label:
                params["ParticipantLabel"] = participant.label
        await self._webhooks.post(room.settings.status_callback, {**params, **(extra or {})}, event)

    def _recording_params(self, room: Room) -> dict[str, str]:
        recording = "RE" + secrets.token_hex(16)
        duration = int((_now() - room.created).total_seconds())
        return {
            "AccountSid": self.account_sid,
            "ConferenceSid": room.sid,
            "RecordingSid": recording,
            "RecordingUrl": f"https://api.twilio.com/{API_VERSION}/Accounts/{self.account_sid}/Recordings/{recording}",
            "RecordingStatus": "completed",
            "RecordingDuration": str(duration),
            "RecordingChannels": "1",
            "RecordingSource": "StartConference",
        }


def _bool(value: bool) -> str:
    return "true" if value else "false"
