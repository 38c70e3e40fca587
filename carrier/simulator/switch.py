"""What hangs up what: a call that ends leaves its room first; a room ends when its last
participant leaves, or when one with endConferenceOnExit does; and a room that ends (that way
or through the API) disconnects everyone still in it, connected or still being dialled."""

from __future__ import annotations

from carrier.simulator.calls import Call, Calls
from carrier.simulator.rooms import (
    BRIDGE_FAILED,
    CONFERENCE_ENDED,
    HUNG_UP,
    MODERATOR_LEFT,
    Departure,
    Ending,
    Room,
    Rooms,
)


class Switch:
    def __init__(self, calls: Calls, rooms: Rooms) -> None:
        self._calls = calls
        self._rooms = rooms

    async def hang_up(self, call: Call, status: str, departure: Departure = HUNG_UP) -> None:
        """End the call with `status`, telling its room why it left (`departure`); a call
        already ending (two hang-ups crossing) is left alone."""
        if not call.live:
            return
        room = self._rooms.holding(call.sid)
        await self._end(call, status, departure, room)
        if room is not None:
            await self._disconnect_everyone(room)

    async def end_conference(self, room: Room) -> None:
        """The Conferences API's `Status=completed`."""
        if room.ending is None:
            room.ending = Ending("conference-ended-via-api", None, CONFERENCE_ENDED)
        await self._disconnect_everyone(room)

    async def fail(self, room: Room) -> None:
        """The carrier loses the room: every call in it drops, as in an outage."""
        if room.ending is None:
            room.ending = Ending("bridge-failed", None, BRIDGE_FAILED)
        await self._disconnect_everyone(room)

    async def _end(self, call: Call, status: str, departure: Departure, room: Room | None) -> None:
        call.status = status
        self._calls.stop(call)
        if room is not None:
            participant = room.participants[call.sid]
            if room.ending is None and participant.joined and participant.end_conference_on_exit:
                how = "kicked" if departure.kicked else "left"
                room.ending = Ending(
                    f"participant-with-end-conference-on-exit-{how}", call.sid, MODERATOR_LEFT
                )
            await self._rooms.leave(room, call.sid, departure, status)
        await self._calls.report(call, status)

    async def _disconnect_everyone(self, room: Room) -> None:
        """Once a room is ending, its participants leave one by one, in SID order."""
        while room.ending is not None and room.participants:
            call = self._calls.by_sid[min(room.participants)]
            await self._end(call, "completed" if call.status == "in-progress" else "canceled",
                            room.ending.departure, room)  # fmt: skip
