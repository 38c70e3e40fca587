"""The callback server's addresses, as the carrier is told them. One place for the paths, so
what activities hand to the carrier and what the server routes cannot drift apart."""

from __future__ import annotations

from urllib.parse import urlencode

from carrier.port import Bridge
from domain.speech import Speech

CALL_STATUS = "/twilio/call-status"
MACHINE_DETECTION = "/twilio/machine-detection"
CONFERENCE_STATUS = "/twilio/conference-status"
RECORDING_STATUS = "/twilio/recording-status"
ACKNOWLEDGE = "/twilio/acknowledge"
VOICE_INBOUND = "/twilio/voice/inbound"
"""Set this as the Voice URL (POST) of the dial-in number."""
VOICE_PIN = "/twilio/voice/pin"
VOICE_LANGUAGE = "/twilio/voice/language"
"""Where the language menu's key is posted."""


def callback_url(public_url: str, path: str, **query: str) -> str:
    """An absolute callback URL; its query is covered by the carrier's signature."""
    base = f"{public_url.rstrip('/')}{path}"
    return f"{base}?{urlencode(query)}" if query else base


def pin_url(
    public_url: str, tries: int, hold: int = 0, token: str = "", language: str = "", carrier: str = ""
) -> str:
    """Where the digits keyed at the `tries`-th PIN prompt are posted; after a hold, where the
    carrier comes back with the encrypted digits. `token`: what the call carries, encrypted;
    `language`: the one the caller is served in; `carrier`: whose line it is (its key signs)."""
    query: dict[str, str | int] = {"try": tries}
    if hold:
        query["hold"] = hold
    if token:
        query["t"] = token
    if language:
        query["lang"] = language
    if carrier:
        query["carrier"] = carrier
    return f"{public_url.rstrip('/')}{VOICE_PIN}?{urlencode(query)}"


def language_url(public_url: str, token: str = "", carrier: str = "") -> str:
    """Where the language menu's key is posted (with what the call carries, if anything)."""
    query = {"t": token} if token else {}
    return callback_url(public_url, VOICE_LANGUAGE, **query, **({"carrier": carrier} if carrier else {}))


def bridge_for(public_url: str, run_id: str, welcome: Speech, record: bool, carrier: str = "") -> Bridge:
    """The conference room of a run (named after its workflow) on one carrier, reporting back
    to it (with the carrier's name, whose key signs those callbacks)."""
    via = {"carrier": carrier} if carrier else {}
    return Bridge(
        room=run_id,
        welcome=welcome,
        record=record,
        events_callback=callback_url(public_url, CONFERENCE_STATUS, run=run_id, **via),
        recording_callback=callback_url(public_url, RECORDING_STATUS, run=run_id, **via),
    )
