"""The Conferences API and its Participants: list and end rooms, list, mute, hold and remove
the people in them, and dial someone into a room (the new call rings as the scenario says and
joins when answered)."""

from __future__ import annotations

from aiohttp import web
from twilio.twiml.voice_response import Dial, VoiceResponse

from carrier.simulator.calls import Calls
from carrier.simulator.faults import Faults
from carrier.simulator.journal import Journal
from carrier.simulator.phones import Phones
from carrier.simulator.rest import TWILIO
from carrier.simulator.rooms import KICKED, Participant, Room, Rooms, RoomSettings
from carrier.simulator.shapes import TwilioError, flag, not_found, page, require_number, text, words
from carrier.simulator.switch import Switch
from carrier.simulator.wire import Form, Wire

CONFERENCE = "/Conferences/{sid}"
PARTICIPANT = CONFERENCE + "/Participants/{call}"


def gone() -> TwilioError:
    return TwilioError(404, 16022, "Conference does not exist or is completed")


def conference_twiml(room: Room, participant: Participant) -> str:
    """What a call dialled into a room runs once answered: straight into that room."""
    response = VoiceResponse()
    dial = Dial()
    dial.conference(
        room.name,
        participant_label=participant.label,
        muted=participant.muted,
        start_conference_on_enter=participant.start_conference_on_enter,
        end_conference_on_exit=participant.end_conference_on_exit,
    )
    response.append(dial)
    return str(response)


class ConferencesApi:
    def __init__(
        self,
        rooms: Rooms,
        calls: Calls,
        switch: Switch,
        phones: Phones,
        faults: Faults,
        journal: Journal,
        wire: Wire = TWILIO,
    ) -> None:
        self._wire = wire
        self._rooms = rooms
        self._calls = calls
        self._switch = switch
        self._phones = phones
        self._faults = faults
        self._journal = journal
        self._account = rooms.account_sid

    def routes(self) -> list[web.RouteDef]:
        path = self._wire.path
        return [
            web.get(path("/Conferences"), self.list_conferences),
            web.get(path(CONFERENCE), self.fetch),
            web.post(path(CONFERENCE), self.update),
            web.get(path(CONFERENCE + "/Participants"), self.participants),
            web.post(path(CONFERENCE + "/Participants"), self.add_participant),
            web.get(path(PARTICIPANT), self.participant),
            web.post(path(PARTICIPANT), self.update_participant),
            web.delete(path(PARTICIPANT), self.remove_participant),
        ]

    async def list_conferences(self, request: web.Request) -> web.Response:
        """Filtered by `FriendlyName` and `Status` (init, in-progress, completed)."""
        name, status = request.query.get("FriendlyName"), request.query.get("Status")
        found = [
            room.resource(self._account)
            for room in self._rooms.by_sid.values()
            if name in (None, room.name) and status in (None, room.status)
        ]
        return web.json_response(page("conferences", found, request))

    async def fetch(self, request: web.Request) -> web.Response:
        return web.json_response(self._room(request).resource(self._account))

    async def update(self, request: web.Request) -> web.Response:
        """`Status=completed` ends the room: everyone in it is disconnected."""
        room = self._room(request)
        form = await self._wire.read_form(request)
        if form.get("Status") == "completed":
            if room.status == "completed":
                raise gone()
            self._journal.record("end-conference", {"sid": room.sid, "room": room.name})
            await self._switch.end_conference(room)
        return web.json_response(room.resource(self._account))

    async def participants(self, request: web.Request) -> web.Response:
        """Who is in the room or being dialled into it (nobody, once it has ended); filtered by
        `Muted` and `Hold`."""
        room = self._room(request)
        muted, hold = flag(request.query.get("Muted")), flag(request.query.get("Hold"))
        found = [
            self._participant_resource(room, p)
            for p in room.participants.values()
            if muted in (None, p.muted) and hold in (None, p.hold)
        ]
        return web.json_response(page("participants", found, request))

    async def participant(self, request: web.Request) -> web.Response:
        room, participant = self._participant(request)
        return web.json_response(self._participant_resource(room, participant))

    async def update_participant(self, request: web.Request) -> web.Response:
        """`Muted` and `Hold`, `true` or `false`."""
        room, participant = self._participant(request)
        form = await self._wire.read_form(request)
        await self._rooms.update(
            room, participant, muted=flag(form.get("Muted")), hold=flag(form.get("Hold"))
        )
        return web.json_response(self._participant_resource(room, participant))

    async def remove_participant(self, request: web.Request) -> web.Response:
        """Out of the room; nothing follows `<Dial>` in a room's TwiML, so the call completes."""
        room, participant = self._participant(request)
        call = self._calls.by_sid[participant.call_sid]
        self._journal.record("kick", {"sid": call.sid, "to": call.to, "room": room.name})
        await self._switch.hang_up(call, "completed" if call.status == "in-progress" else "canceled", KICKED)
        return web.Response(status=204)

    async def add_participant(self, request: web.Request) -> web.Response:
        """Dial `To` from `From` into the room (by SID, or by name: a new room then starts as
        `init`, configured by the `Conference*` parameters)."""
        form = await self._wire.read_form(request)
        to = require_number(form.get("To"), "To", 21211)
        sender = require_number(form.get("From"), "From", 21212)
        key = request.match_info["sid"]
        room = self._rooms.find(key)
        if (room is None and key.startswith("CF")) or (room is not None and room.status == "completed"):
            raise gone()
        lost_response = self._faults.strike(to)
        room = room or self._rooms.open(key, _room_settings(form))
        call = self._calls.open(to, sender, "outbound-api", "queued")
        call.status_callback = text(form.get("StatusCallback"))
        call.events = words(form.getall("StatusCallbackEvent", [])) or call.events
        participant = Participant(
            call.sid,
            label=text(form.get("Label")),
            muted=flag(form.get("Muted")) is True,
            start_conference_on_enter=flag(form.get("StartConferenceOnEnter")) is not False,
            end_conference_on_exit=flag(form.get("EndConferenceOnExit")) is True,
        )
        call.twiml = conference_twiml(room, participant)
        self._rooms.expect(room, participant)
        await self._phones.dial(call, text(form.get("Timeout")))
        if lost_response:
            raise TwilioError(500, 20500, "Internal Server Error (the participant was added)")
        return web.json_response(self._participant_resource(room, participant), status=201)

    def _room(self, request: web.Request) -> Room:
        room = self._rooms.find(request.match_info["sid"])
        if room is None:
            raise not_found()
        return room

    def _participant(self, request: web.Request) -> tuple[Room, Participant]:
        """By call SID or by label, among those in the room now."""
        room = self._room(request)
        key = request.match_info["call"]
        found = room.participants.get(key) or next(
            (p for p in room.participants.values() if p.label == key), None
        )
        if found is None:
            raise not_found()
        return room, found

    def _participant_resource(self, room: Room, participant: Participant) -> dict[str, object]:
        call_status = self._calls.by_sid[participant.call_sid].status
        return participant.resource(self._account, room, call_status)


def _room_settings(form: Form) -> RoomSettings:
    return RoomSettings(
        status_callback=text(form.get("ConferenceStatusCallback")),
        events=words(form.getall("ConferenceStatusCallbackEvent", [])),
        record=form.get("ConferenceRecord") in ("true", "record-from-start"),
        recording_callback=text(form.get("ConferenceRecordingStatusCallback")),
    )
