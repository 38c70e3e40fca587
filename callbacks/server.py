"""Carrier callbacks in, workflow signals and updates out: verify the signature, translate,
forward, and answer the dial-in line with TwiML.

No conference rule lives here: the workflow decides what a callback means and whether a PIN is
right. A request whose signature does not match the public URL it claims gets 403 and reaches
nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from callbacks import urls
from callbacks.pin_guard import PinGuard
from carrier.port import Carrier, InboundCall
from config import Settings
from directory import conference_with_pin, conferences_of_caller
from domain.events import (
    Acknowledgement,
    BridgeUpdate,
    CallProgress,
    RecordingReady,
    RejoinRequest,
    RejoinResult,
)
from workflows.procedure_run import ProcedureRun

log = logging.getLogger("rallycall.callbacks")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
MAX_TRIES = 3
UPDATE_TIMEOUT = 5.0
PROMPT = "Welcome to the conference line. Please enter your {digits} digit conference PIN."
RETRY = "That PIN is not valid. Please enter it again."
WRONG_PIN_GOODBYE = "That PIN is not valid. Please check the PIN you received by SMS or email. Goodbye."
TOO_MANY_GOODBYE = "Too many wrong PINs from this number. Please try again later. Goodbye."


@dataclass(frozen=True)
class Relay:
    carrier: Carrier
    client: Client
    public_url: str
    pin_secret: str
    pin_digits: int
    task_queue: str
    guard: PinGuard


RELAY = web.AppKey("relay", Relay)


def build_app(carrier: Carrier, client: Client, config: Settings) -> web.Application:
    app = web.Application()
    guard = PinGuard(config.pin_failures_per_caller)
    app[RELAY] = Relay(
        carrier,
        client,
        config.public_url.rstrip("/"),
        config.pin_secret,
        config.pin_digits,
        config.task_queue,
        guard,
    )
    app.router.add_post(urls.CALL_STATUS, relay_call_event)
    app.router.add_post(urls.MACHINE_DETECTION, relay_call_event)
    app.router.add_post(urls.CONFERENCE_STATUS, relay_bridge_event)
    app.router.add_post(urls.RECORDING_STATUS, relay_recording)
    app.router.add_post(urls.ACKNOWLEDGE, relay_acknowledgement)
    app.router.add_post(urls.VOICE_INBOUND, answer_dial_in)
    app.router.add_post(urls.VOICE_PIN, check_pin)
    app.router.add_get("/healthz", healthz)
    return app


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def signed_form(request: web.Request) -> dict[str, str]:
    """The posted form, if the carrier signed it for our public URL; 403 otherwise. The URL is
    checked as received and with the query encoded the way rallycall wrote it (a client or
    proxy on the way may have decoded `%2F` and the like)."""
    relay = request.app[RELAY]
    form = {key: str(value) for key, value in (await request.post()).items()}
    signature = request.headers.get("X-Twilio-Signature", "")
    paths = {request.raw_path}
    if request.query:
        paths.add(f"{request.path}?{urlencode(list(request.query.items()))}")
    if not any(relay.carrier.is_authentic(relay.public_url + path, form, signature) for path in paths):
        log.warning("refused unsigned or forged request to %s", request.path)
        raise web.HTTPForbidden(text="invalid signature")
    return form


def twiml(document: str) -> web.Response:
    return web.Response(text=document, content_type="application/xml")


async def signal(request: web.Request, signal_name: str, payload: object) -> web.Response:
    run_id = request.query.get("run", "")
    if not run_id:
        raise web.HTTPBadRequest(text="run is required")
    handle = request.app[RELAY].client.get_workflow_handle(run_id)
    try:
        await handle.signal(signal_name, payload)
    except RPCError as exc:
        log.info("%s for %s not delivered (%s): run is over", signal_name, run_id, exc.status.name)
    return twiml(EMPTY_TWIML)


async def relay_call_event(request: web.Request) -> web.Response:
    """Status and answering-machine callbacks for one outbound attempt."""
    form = await signed_form(request)
    attempt_id = request.query.get("attempt", "")
    if not attempt_id:
        raise web.HTTPBadRequest(text="attempt is required")
    event = request.app[RELAY].carrier.parse_call_event(form)
    progress = CallProgress(
        attempt_id=attempt_id,
        call_sid=event.call_sid,
        status=event.status,
        answered_by=event.answered_by,
        error_code=event.error_code,
    )
    return await signal(request, ProcedureRun.call_progress.__name__, progress)


async def relay_bridge_event(request: web.Request) -> web.Response:
    event = request.app[RELAY].carrier.parse_bridge_event(await signed_form(request))
    update = BridgeUpdate(kind=event.kind, conference_sid=event.conference_sid, call_sid=event.call_sid)
    return await signal(request, ProcedureRun.bridge_event.__name__, update)


async def relay_recording(request: web.Request) -> web.Response:
    event = request.app[RELAY].carrier.parse_recording_event(await signed_form(request))
    if event.status != "completed":
        return twiml(EMPTY_TWIML)
    ready = RecordingReady(recording_sid=event.recording_sid, url=event.url)
    return await signal(request, ProcedureRun.recording_ready.__name__, ready)


async def relay_acknowledgement(request: web.Request) -> web.Response:
    """The key pressed on an acknowledgement call: 1 acknowledges."""
    carrier = request.app[RELAY].carrier
    form = await signed_form(request)
    acknowledged = carrier.parse_keyed_digits(form) == "1"
    if acknowledged:
        event = carrier.parse_call_event(form)
        attempt_id = request.query.get("attempt", "")
        await signal(
            request,
            ProcedureRun.acknowledged.__name__,
            Acknowledgement(attempt_id=attempt_id, call_sid=event.call_sid),
        )
    return twiml(carrier.thank_for_acknowledgement(acknowledged))


async def answer_dial_in(request: web.Request) -> web.Response:
    """The dial-in number's Voice URL: ask for the PIN."""
    relay = request.app[RELAY]
    call = relay.carrier.parse_inbound_call(await signed_form(request))
    if relay.guard.refuses(call.caller):
        return twiml(relay.carrier.say_goodbye(TOO_MANY_GOODBYE))
    prompt = PROMPT.format(digits=relay.pin_digits)
    return twiml(relay.carrier.ask_for_pin(urls.pin_url(relay.public_url, 1), prompt, relay.pin_digits))


async def check_pin(request: web.Request) -> web.Response:
    """Digits keyed at the prompt: into the bridge, another try, or goodbye after three."""
    relay = request.app[RELAY]
    call = relay.carrier.parse_inbound_call(await signed_form(request))
    tries = int(request.query.get("try", "1"))
    if relay.guard.refuses(call.caller):
        return twiml(relay.carrier.say_goodbye(TOO_MANY_GOODBYE))
    admitted = await offer_pin(relay, call)
    if admitted is not None:
        conference_id, result = admitted
        bridge = urls.bridge_for(relay.public_url, conference_id, result.welcome, result.record)
        return twiml(relay.carrier.connect_to_bridge(bridge))
    if call.digits:
        relay.guard.failed(call.caller)
    if relay.guard.refuses(call.caller):
        return twiml(relay.carrier.say_goodbye(TOO_MANY_GOODBYE))
    if tries >= MAX_TRIES:
        return twiml(relay.carrier.say_goodbye(WRONG_PIN_GOODBYE))
    return twiml(
        relay.carrier.ask_for_pin(urls.pin_url(relay.public_url, tries + 1), RETRY, relay.pin_digits)
    )


async def offer_pin(relay: Relay, call: InboundCall) -> tuple[str, RejoinResult] | None:
    """Hand the PIN to the conference that holds it; a wrong PIN goes to the conferences the
    caller belongs to, which record the attempt. Returns the conference that let them in."""
    holder = await conference_with_pin(relay.client, relay.pin_secret, call.digits) if call.digits else None
    candidates = (
        [holder]
        if holder
        else await conferences_of_caller(relay.client, relay.pin_secret, relay.task_queue, call.caller)
    )
    request = RejoinRequest(pin=call.digits, from_number=call.caller, call_sid=call.call_sid)
    answers = await asyncio.gather(*(offer(relay, conference_id, request) for conference_id in candidates))
    return next(((cid, result) for cid, result in zip(candidates, answers, strict=True) if result), None)


async def offer(relay: Relay, conference_id: str, request: RejoinRequest) -> RejoinResult | None:
    """The conference's answer to a PIN, or None if it refused or could not answer in time (the
    caller is on the line: no one conference may hold the others up)."""
    handle = relay.client.get_workflow_handle_for(ProcedureRun.run, conference_id)
    try:
        result = await asyncio.wait_for(handle.execute_update(ProcedureRun.rejoin, request), UPDATE_TIMEOUT)
    except (WorkflowUpdateFailedError, RPCError, TimeoutError) as exc:
        log.info("dial-in not offered to %s: %r", conference_id, exc)
        return None
    return result if result.accepted else None


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start listening; the caller keeps the runner and calls `cleanup()` to stop."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
