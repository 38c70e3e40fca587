"""Running TwiML as Twilio does, for the verbs rallycall answers with: Say, Gather (keyed by
the caller), Redirect, Dial/Conference and Hangup. A document that runs out hangs up, and a
TwiML URL that fails plays Twilio's application error. Every Say is journalled (`said`) with
the language it was spoken in."""

from __future__ import annotations

from urllib.parse import urljoin

from carrier.simulator import twiml
from carrier.simulator.calls import Call, Calls
from carrier.simulator.journal import Journal
from carrier.simulator.rooms import Participant, Rooms, RoomSettings
from carrier.simulator.switch import Switch
from carrier.simulator.webhooks import Webhooks

APPLICATION_ERROR = "<Response><Say>An application error has occurred.</Say><Hangup/></Response>"


class Runtime:
    def __init__(
        self, calls: Calls, rooms: Rooms, switch: Switch, webhooks: Webhooks, journal: Journal
    ) -> None:
        self._calls = calls
        self._rooms = rooms
        self._switch = switch
        self._webhooks = webhooks
        self._journal = journal

    async def run(self, call: Call, document: str, url: str, keys: list[str], transcript: list[str]) -> None:
        """Execute `document` (fetched from `url`), keying `keys` in order at each Gather and
        writing what the caller heard and did to `transcript`."""
        for verb in twiml.parse(document):
            if isinstance(verb, twiml.Say):
                self._say(call, verb, transcript)
            elif isinstance(verb, twiml.Gather):
                for prompt in verb.prompts:
                    self._say(call, prompt, transcript)
                if not keys:
                    transcript.append("keyed nothing")
                    continue
                keyed = keys.pop(0)
                transcript.append(f"keyed: {keyed}")
                action = urljoin(url, verb.action)
                await self.run(call, await self.fetch(action, call, Digits=keyed), action, keys, transcript)
                return
            elif isinstance(verb, twiml.Redirect):
                target = urljoin(url, verb.url)
                await self.run(call, await self.fetch(target, call), target, keys, transcript)
                return
            elif isinstance(verb, twiml.JoinConference):
                transcript.append(f"joined conference {verb.room}")
                room = self._rooms.open(verb.room, RoomSettings.from_twiml(verb.attributes))
                call.room = room.name
                await self._rooms.join(room, Participant.from_twiml(call.sid, verb.attributes))
                return
            elif isinstance(verb, twiml.Hangup):
                transcript.append("hung up by the application")
                await self._switch.hang_up(call, "completed")
                return
        await self._switch.hang_up(call, "completed")

    def _say(self, call: Call, say: twiml.Say, transcript: list[str]) -> None:
        transcript.append(f"heard [{say.spoken_in}]: {say.text}")
        self._journal.record(
            "said",
            {
                "sid": call.sid,
                "to": call.to,
                "from": call.sender,
                "direction": call.direction,
                "language": say.spoken_in,
                "text": say.text,
            },
        )

    async def fetch(self, url: str, call: Call, **extra: str) -> str:
        """The TwiML at `url`; an inbound call is answered (in-progress) by its first fetch."""
        if call.status == "ringing" and call.direction == "inbound":
            call.status = "in-progress"
        params = self._calls.params(call, CallStatus=call.status, **extra)
        answer = await self._webhooks.post(url, params, "twiml")
        return answer.body if answer.ok else APPLICATION_ERROR
