"""Carrier callbacks in, workflow signals and updates out: check the request, verify the
signature, translate, forward, and answer the dial-in line with TwiML.

No rule of a run lives here: the workflow decides what a callback means and whether a PIN is
right. Whatever arrives is checked before anything reaches a workflow: a wrong method is 405, a
body over MAX_BODY is 413, anything but a form is 415, a missing or malformed parameter is 400,
a signature that does not match the public URL it claims is 403, an unknown run is 404. Nothing
a caller sends can make it answer 500.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from aiohttp import web
from temporalio.client import Client

from callbacks import urls
from callbacks.dial_in import MAX_HOLDS, MAX_TRIES, DialIn
from callbacks.relay import deliver, twiml
from carrier.accounts import Carriers
from carrier.port import Carrier, SignedCallback
from config import Settings
from domain.events import Acknowledgement, BridgeUpdate, CallProgress, RecordingReady
from i18n.catalogues import N_, said
from i18n.languages import served
from workflows.dial_in_guard import GuardLimits
from workflows.procedure_run import ProcedureRun

log = logging.getLogger("rallycall.callbacks")
MAX_BODY = 32 * 1024
"""Twilio's callbacks are a few hundred bytes; nothing legitimate comes near this."""
FORM = "application/x-www-form-urlencoded"
RUN_ID = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
ATTEMPT_ID = re.compile(r"^[^/\x00-\x1f]{1,20}/[^\x00-\x1f]{1,300}$")
"""`step/contact/index`: contact ids are the contacts file's, so only control characters are out."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ACKNOWLEDGED = N_("Thank you, your acknowledgement is recorded. Goodbye.")
NOT_ONE = N_("That was not 1: your acknowledgement is not recorded. Goodbye.")

CLIENT = web.AppKey("client", Client)
CARRIERS = web.AppKey("carriers", Carriers)
PUBLIC_URL = web.AppKey("public_url", str)
DIAL_INS = web.AppKey("dial_ins", dict[str, DialIn])


def build_app(carriers: Carrier | Carriers, client: Client, config: Settings) -> web.Application:
    """Callbacks of every configured carrier (each names itself with `carrier=`; none: the first,
    as before 0.2.0). The dial-in line answers on each carrier's number."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[refuse_what_is_not_a_callback])
    app[CLIENT] = client
    app[CARRIERS] = Carriers.given(carriers, config.carrier_accounts())
    app[PUBLIC_URL] = config.public_url.rstrip("/")
    line = DialIn(
        carrier=app[CARRIERS][""],
        client=client,
        public_url=config.public_url.rstrip("/"),
        secret=config.pin_secret,
        task_queue=config.task_queue,
        pin_digits=config.pin_digits,
        limits=GuardLimits(
            per_caller=config.pin_failures_per_caller,
            per_run=config.pin_failures_per_run,
            per_line=config.pin_failures_per_line,
        ),
        patience=config.dial_in_patience_s,
        language=config.language,
        name=app[CARRIERS].first,
    )
    app[DIAL_INS] = {"": line} | {
        name: dataclasses.replace(line, carrier=app[CARRIERS][name], via=name, name=name)
        for name in app[CARRIERS]
    }
    app.router.add_post(urls.CALL_STATUS, relay_call_event)
    app.router.add_post(urls.MACHINE_DETECTION, relay_call_event)
    app.router.add_post(urls.CONFERENCE_STATUS, relay_bridge_event)
    app.router.add_post(urls.RECORDING_STATUS, relay_recording)
    app.router.add_post(urls.ACKNOWLEDGE, relay_acknowledgement)
    app.router.add_post(urls.VOICE_INBOUND, answer_dial_in)
    app.router.add_post(urls.VOICE_PIN, check_pin)
    app.router.add_post(urls.VOICE_LANGUAGE, choose_language)
    app.router.add_get("/healthz", healthz)
    return app


@web.middleware
async def refuse_what_is_not_a_callback(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bad input gets a 4xx here, and an unexpected fault a 503 (the carrier may retry), never
    a 500 that leaks a stack trace."""
    if request.method == "POST" and request.content_type != FORM:
        raise web.HTTPUnsupportedMediaType(text=f"expected {FORM}")
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("callback %s failed", request.path)
        raise web.HTTPServiceUnavailable(text="try again", headers={"Retry-After": "5"}) from None


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def signed_form(request: web.Request) -> dict[str, str]:
    """The posted form, if the carrier signed it for our public URL; 403 otherwise. The URL is
    checked as received and with the query encoded the way rallycall wrote it (a client or
    proxy on the way may have decoded `%2F` and the like)."""
    try:
        form = {key: str(value) for key, value in (await request.post()).items()}
    except ValueError as exc:
        raise web.HTTPBadRequest(text="unreadable form") from exc
    body = await request.read()
    public = request.app[PUBLIC_URL]
    paths = {request.raw_path}
    if request.query:
        paths.add(f"{request.path}?{urlencode(list(request.query.items()))}")
    carrier = carrier_of(request)
    if not any(
        carrier.is_authentic(SignedCallback(public + path, form, request.headers, body)) for path in paths
    ):
        log.warning("refused unsigned or forged request to %s", request.path)
        raise web.HTTPForbidden(text="invalid signature")
    return form


def carrier_of(request: web.Request) -> Carrier:
    """The carrier the callback says it comes from: its key checks the signature. A name no
    carrier here has is refused: nothing could check it."""
    name = request.query.get("carrier", "")
    carriers = request.app[CARRIERS]
    if name and name not in carriers:
        raise web.HTTPForbidden(text="unknown carrier")
    return carriers[name]


def dial_in(request: web.Request) -> DialIn:
    """The line of the carrier the call came through (checked by `signed_form` first)."""
    return request.app[DIAL_INS][request.query.get("carrier", "")]


def query_value(request: web.Request, name: str, pattern: re.Pattern[str]) -> str:
    value = request.query.get(name, "")
    if not pattern.match(value):
        raise web.HTTPBadRequest(text=f"{name} is missing or malformed")
    return value


def required(form: dict[str, str], *names: str) -> None:
    missing = [name for name in names if not form.get(name)]
    if missing:
        raise web.HTTPBadRequest(text=f"missing {', '.join(missing)}")


async def relay_call_event(request: web.Request) -> web.Response:
    """Status and answering-machine callbacks for one outbound attempt."""
    run_id = query_value(request, "run", RUN_ID)
    attempt_id = query_value(request, "attempt", ATTEMPT_ID)
    form = await signed_form(request)
    required(form, "CallSid")
    event = carrier_of(request).parse_call_event(form)
    progress = CallProgress(
        attempt_id=attempt_id,
        call_sid=event.call_sid,
        status=event.status,
        answered_by=event.answered_by,
        error_code=event.error_code,
    )
    return await deliver(request.app[CLIENT], run_id, ProcedureRun.call_progress.__name__, progress)


async def relay_bridge_event(request: web.Request) -> web.Response:
    run_id = query_value(request, "run", RUN_ID)
    form = await signed_form(request)
    required(form, "ConferenceSid", "StatusCallbackEvent")
    event = carrier_of(request).parse_bridge_event(form)
    update = BridgeUpdate(
        kind=event.kind,
        conference_sid=event.conference_sid,
        call_sid=event.call_sid,
        reason=event.reason,
        carrier=request.app[CARRIERS].name_of(request.query.get("carrier", "")),  # none named: the first
    )
    return await deliver(request.app[CLIENT], run_id, ProcedureRun.bridge_event.__name__, update)


async def relay_recording(request: web.Request) -> web.Response:
    run_id = query_value(request, "run", RUN_ID)
    event = carrier_of(request).parse_recording_event(await signed_form(request))
    if event.status != "completed":
        return twiml()
    ready = RecordingReady(recording_sid=event.recording_sid, url=event.url)
    return await deliver(request.app[CLIENT], run_id, ProcedureRun.recording_ready.__name__, ready)


async def relay_acknowledgement(request: web.Request) -> web.Response:
    """The key pressed on an acknowledgement call: 1 acknowledges."""
    run_id = query_value(request, "run", RUN_ID)
    attempt_id = query_value(request, "attempt", ATTEMPT_ID)
    carrier = carrier_of(request)
    form = await signed_form(request)
    required(form, "CallSid")
    acknowledged = carrier.parse_keyed_digits(form) == "1"
    if acknowledged:
        event = carrier.parse_call_event(form)
        acknowledgement = Acknowledgement(attempt_id=attempt_id, call_sid=event.call_sid)
        await deliver(request.app[CLIENT], run_id, ProcedureRun.acknowledged.__name__, acknowledgement)
    language = served(request.query.get("lang"), "")
    return twiml(carrier.say_goodbye(said(ACKNOWLEDGED if acknowledged else NOT_ONE, language)))


async def answer_dial_in(request: web.Request) -> web.Response:
    """The dial-in number's Voice URL: ask for the PIN."""
    form = await signed_form(request)
    required(form, "CallSid", "From")
    call = carrier_of(request).parse_inbound_call(form)
    return twiml(await dial_in(request).answer(call))


async def check_pin(request: web.Request) -> web.Response:
    """Digits keyed at the prompt, or a caller back from holding: into the bridge, another
    try, hold again, or goodbye."""
    tries = bounded(request, "try", 1, MAX_TRIES)
    holds = bounded(request, "hold", 0, MAX_HOLDS)
    form = await signed_form(request)
    required(form, "CallSid", "From")
    line = dial_in(request)
    call = carrier_of(request).parse_inbound_call(form)
    token = request.query.get("t", "")
    if holds:
        digits = line.held_digits(token, call.call_sid)
        if digits is None:
            raise web.HTTPBadRequest(text="hold token is not valid for this call")
        call = call.with_digits(digits)
    elif len(call.digits) > 32:
        raise web.HTTPBadRequest(text="Digits is too long")
    return twiml(await line.check(call, tries, holds, token, served(request.query.get("lang"), "")))


async def choose_language(request: web.Request) -> web.Response:
    """The key pressed at the language menu: the PIN prompt in that language."""
    form = await signed_form(request)
    required(form, "CallSid", "From")
    call = carrier_of(request).parse_inbound_call(form)
    if len(call.digits) > 32:
        raise web.HTTPBadRequest(text="Digits is too long")
    return twiml(dial_in(request).chosen(call, request.query.get("t", "")))


def bounded(request: web.Request, name: str, default: int, most: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not default <= int(raw) <= most:
        raise web.HTTPBadRequest(text=f"{name} must be a number from {default} to {most}")
    return int(raw)


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start listening; the caller keeps the runner and calls `cleanup()` to stop."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
