"""Carrier callbacks in, workflow signals out: verify the signature, translate, forward.

No business rule lives here; the workflow decides what a callback means. A request whose
signature does not match the public URL it claims to be for gets 403 and reaches nothing.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from aiohttp import web
from temporalio.client import Client
from temporalio.service import RPCError

from carrier.port import Carrier
from domain.conference import CallProgress
from workflows.conference import ConferenceCall

log = logging.getLogger("rallycall.callbacks")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

CARRIER_KEY = web.AppKey("carrier", Carrier)
CLIENT_KEY = web.AppKey("client", Client)
PUBLIC_URL_KEY = web.AppKey("public_url", str)


def build_app(carrier: Carrier, client: Client, public_url: str) -> web.Application:
    app = web.Application()
    app[CARRIER_KEY] = carrier
    app[CLIENT_KEY] = client
    app[PUBLIC_URL_KEY] = public_url.rstrip("/")
    app.router.add_post("/twilio/call-status", relay_call_event)
    app.router.add_post("/twilio/machine-detection", relay_call_event)
    app.router.add_get("/healthz", healthz)
    return app


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def is_signed(request: web.Request, form: dict[str, str]) -> bool:
    """Check the signature against the public URL: as received, or with the query encoded the way
    rallycall wrote it (an HTTP client or proxy on the way may have decoded `%2F` and the like)."""
    carrier = request.app[CARRIER_KEY]
    signature = request.headers.get("X-Twilio-Signature", "")
    base = request.app[PUBLIC_URL_KEY]
    as_written = f"{request.path}?{urlencode(list(request.query.items()))}"
    return any(carrier.is_authentic(base + path, form, signature) for path in {request.raw_path, as_written})


async def relay_call_event(request: web.Request) -> web.Response:
    """Status and answering-machine callbacks for one outbound attempt."""
    carrier = request.app[CARRIER_KEY]
    params = await request.post()
    form = {key: str(value) for key, value in params.items()}
    if not is_signed(request, form):
        log.warning("refused unsigned or forged callback for %s", request.path)
        raise web.HTTPForbidden(text="invalid signature")
    conference_id = request.query.get("conference", "")
    attempt_id = request.query.get("attempt", "")
    if not conference_id or not attempt_id:
        raise web.HTTPBadRequest(text="conference and attempt are required")
    event = carrier.parse_call_event(form)
    progress = CallProgress(
        attempt_id=attempt_id,
        call_sid=event.call_sid,
        status=event.status,
        answered_by=event.answered_by,
        error_code=event.error_code,
    )
    handle = request.app[CLIENT_KEY].get_workflow_handle(conference_id)
    try:
        await handle.signal(ConferenceCall.call_progress, progress)
    except RPCError as exc:
        log.info("callback for %s not delivered (%s): conference is over", conference_id, exc.status.name)
    return web.Response(text=EMPTY_TWIML, content_type="application/xml")


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start listening; the caller keeps the runner and calls `cleanup()` to stop."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
