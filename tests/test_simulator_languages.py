"""Which language each call spoke, through the real `twilio` SDK: every `<Say>` the carrier
plays, alone or as a `<Gather>`'s prompt, is journalled (`said`) with its `language`, or
Twilio's default en-US when it has none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twilio.twiml.voice_response import Gather, VoiceResponse

from carrier.simulator import Scenario
from carrier.simulator.scenario import NumberPlan
from tests.test_simulator_support import CALLER_ID, Bench, bench, until

ALICE = "+41215550101"
SCENARIO = Scenario(ring_seconds=0.05, numbers={ALICE: NumberPlan(answer="answer", press="1")})


async def place_call(b: Bench, response: VoiceResponse) -> str:
    call = await b.client.calls.create_async(
        to=ALICE, from_=CALLER_ID, twiml=str(response), status_callback=b.hook("/call")
    )
    return str(call.sid)


def said(b: Bench) -> list[dict[str, Any]]:
    return [{key: value for key, value in entry.items() if key != "at"} for entry in b.entries("said")]


def spoken(sid: str, language: str, text: str) -> dict[str, Any]:
    return {
        "kind": "said",
        "sid": sid,
        "to": ALICE,
        "from": CALLER_ID,
        "direction": "outbound-api",
        "language": language,
        "text": text,
    }


async def test_each_say_is_journalled_in_its_language_a_gathers_prompt_too(tmp_path: Path) -> None:
    async with bench(tmp_path, SCENARIO) as b:
        response = VoiceResponse()
        response.say("Incendie au dépôt", language="fr-FR")
        gather = Gather(action=b.hook("/ack"), num_digits=1)
        gather.say("Drücken Sie 1", language="de-DE")
        response.append(gather)
        sid = await place_call(b, response)

        await until(lambda: len(b.hooks.at("/call")) == 1)

        assert [p["Digits"] for p in b.hooks.at("/ack")] == ["1"], "the callee keyed 1 at the prompt"
        assert said(b) == [
            spoken(sid, "fr-FR", "Incendie au dépôt"),
            spoken(sid, "de-DE", "Drücken Sie 1"),
        ]


async def test_a_say_without_language_is_spoken_in_twilios_default_en_us(tmp_path: Path) -> None:
    async with bench(tmp_path, SCENARIO) as b:
        response = VoiceResponse()
        response.say("Fire at the depot")
        sid = await place_call(b, response)

        await until(lambda: len(b.hooks.at("/call")) == 1)

        assert said(b) == [spoken(sid, "en-US", "Fire at the depot")]


async def test_a_twiml_url_that_fails_plays_the_application_error_in_en_us(tmp_path: Path) -> None:
    async with bench(tmp_path, SCENARIO) as b:
        response = VoiceResponse()
        response.append(Gather(action=b.url + "/nowhere", num_digits=1))
        sid = await place_call(b, response)

        await until(lambda: len(b.hooks.at("/call")) == 1)

        assert said(b) == [spoken(sid, "en-US", "An application error has occurred.")]
