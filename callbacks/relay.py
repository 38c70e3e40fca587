"""Delivering a carrier callback to its run as a signal, without dropping it on a blip.

A transient Temporal error (unavailable, overloaded, timed out) is retried for a few seconds;
if Temporal is still not there the answer is 503, so a carrier that retries (Twilio with
connection overrides) tries again, and the run reconciles with the carrier anyway. A run that
is over answers 200 (a late callback is normal); a run that never existed answers 404.
"""

from __future__ import annotations

import asyncio
import logging
import random

from aiohttp import web
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

log = logging.getLogger("rallycall.callbacks")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
TRANSIENT = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.INTERNAL,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.ABORTED,
    }
)
PATIENCE = 8.0
"""Seconds to keep retrying a signal: well inside the carrier's 15 s webhook timeout."""


def twiml(document: str = EMPTY_TWIML, status: int = 200) -> web.Response:
    return web.Response(text=document, status=status, content_type="application/xml")


async def deliver(client: Client, run_id: str, signal_name: str, payload: object) -> web.Response:
    """Signal the run; the HTTP answer says to the carrier whether to try again."""
    handle = client.get_workflow_handle(run_id)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + PATIENCE
    delay = 0.1
    while True:
        try:
            await handle.signal(signal_name, payload)
            return twiml()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return await _gone(client, run_id, signal_name)
            if exc.status not in TRANSIENT:
                log.warning("%s for %s refused by Temporal: %s", signal_name, run_id, exc.status.name)
                raise web.HTTPBadRequest(text="refused") from exc
            if loop.time() + delay > give_up:
                log.warning("%s for %s not delivered: Temporal %s; asking the carrier to retry",
                            signal_name, run_id, exc.status.name)  # fmt: skip
                raise web.HTTPServiceUnavailable(text="try again", headers={"Retry-After": "5"}) from exc
        await asyncio.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 2.0)


async def _gone(client: Client, run_id: str, signal_name: str) -> web.Response:
    """A run that ended takes no more signals (fine: late callbacks happen); one that never
    existed is a wrong address."""
    try:
        await client.get_workflow_handle(run_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            log.info("%s for unknown run %s", signal_name, run_id)
            raise web.HTTPNotFound(text="no such run") from exc
        raise web.HTTPServiceUnavailable(text="try again", headers={"Retry-After": "5"}) from exc
    log.info("%s for %s ignored: the run is over", signal_name, run_id)
    return twiml()
