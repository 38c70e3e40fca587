"""TwiML, and Telnyx's TeXML, which is TwiML under another name: what a call says and does
once answered, and the form callbacks both carriers post (Twilio's field names). Both adapters
answer and parse through `TwimlDialect`; TeXML's `<Gather>` differs in one way, which
`TelnyxCarrier.gather` overrides."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from carrier.port import Bridge, BridgeEvent, CallEvent, InboundCall, OutboundCall, RecordingEvent
from domain.speech import Speech
from i18n.languages import voice


def say(verb: VoiceResponse | Gather, speech: Speech) -> None:
    """Each part in a voice of its language (no `language` for a part of unknown language: the
    carrier's default voice, as before 0.2.0)."""
    for part in speech:
        if part.text.strip():
            verb.say(part.text.strip(), language=voice(part.language) if part.language else None)


def bridge_twiml(bridge: Bridge) -> VoiceResponse:
    """What a caller hears on joining: the welcome message first, then the conference room."""
    response = VoiceResponse()
    say(response, bridge.welcome)
    dial = Dial()
    dial.conference(
        bridge.room,
        start_conference_on_enter=True,
        end_conference_on_exit=False,
        status_callback=bridge.events_callback,
        status_callback_event="start end join leave",
        status_callback_method="POST",
        record="record-from-start" if bridge.record else "do-not-record",
        recording_status_callback=bridge.recording_callback if bridge.record else None,
        recording_status_callback_event="completed" if bridge.record else None,
    )
    response.append(dial)
    return response


def call_twiml(call: OutboundCall) -> str:
    """What an outbound call does once answered, by the step's objective."""
    if call.bridge is not None:
        return str(bridge_twiml(call.bridge))
    response = VoiceResponse()
    if call.acknowledge_url is None:
        say(response, call.message)
        response.hangup()
        return str(response)
    gather = Gather(input="dtmf", num_digits=1, action=call.acknowledge_url, method="POST", timeout=10)
    say(gather, call.message + call.acknowledge_prompt)
    response.append(gather)
    say(response, call.not_acknowledged)
    return str(response)


def gather_keys(action_url: str, prompt: Speech, **keys: object) -> str:
    """Say `prompt` and post the keys pressed to `action_url` (posting nothing keyed, too)."""
    gather = Gather(input="dtmf", action=action_url, method="POST", action_on_empty_result=True, **keys)
    say(gather, prompt)
    response = VoiceResponse()
    response.append(gather)
    return str(response)


class TwimlDialect:
    """The answers and callback parsing of `carrier.port.Carrier` that TwiML and TeXML share."""

    def gather(self, action_url: str, prompt: Speech, **keys: object) -> str:
        """Say `prompt` and post the keys pressed (or nothing keyed) to `action_url`."""
        return gather_keys(action_url, prompt, **keys)

    def parse_call_event(self, params: Mapping[str, str]) -> CallEvent:
        return CallEvent(
            call_sid=params.get("CallSid", ""),
            status=params.get("CallStatus", ""),
            answered_by=params.get("AnsweredBy") or None,
            error_code=params.get("ErrorCode") or None,
        )

    def parse_bridge_event(self, params: Mapping[str, str]) -> BridgeEvent:
        event = params.get("StatusCallbackEvent", "")
        return BridgeEvent(
            kind=event.removeprefix("participant-").removeprefix("conference-"),
            conference_sid=params.get("ConferenceSid", ""),
            call_sid=params.get("CallSid") or None,
            reason=params.get("ReasonParticipantLeft") or None,
        )

    def parse_recording_event(self, params: Mapping[str, str]) -> RecordingEvent:
        return RecordingEvent(
            recording_sid=params.get("RecordingSid", ""),
            url=params.get("RecordingUrl", ""),
            status=params.get("RecordingStatus", ""),
        )

    def parse_inbound_call(self, params: Mapping[str, str]) -> InboundCall:
        return InboundCall(
            call_sid=params.get("CallSid", ""), caller=params.get("From", ""), digits=params.get("Digits", "")
        )

    def parse_keyed_digits(self, params: Mapping[str, str]) -> str:
        return params.get("Digits", "")

    def ask_for_pin(self, action_url: str, prompt: Speech, digits: int) -> str:
        return self.gather(action_url, prompt, num_digits=digits, finish_on_key="#", timeout=10)

    def ask_for_key(self, action_url: str, prompt: Speech, timeout_s: int) -> str:
        return self.gather(action_url, prompt, num_digits=1, timeout=timeout_s)

    def connect_to_bridge(self, bridge: Bridge) -> str:
        return str(bridge_twiml(bridge))

    def hold(self, message: Speech, redirect_url: str) -> str:
        response = VoiceResponse()
        say(response, message)
        response.pause(length=1)
        response.redirect(redirect_url, method="POST")
        return str(response)

    def say_goodbye(self, message: Speech) -> str:
        response = VoiceResponse()
        say(response, message)
        response.hangup()
        return str(response)
