"""Answers written while they are read, so a download of 50,000 people never holds them all: the
CSV report, and a run's view with its people streamed into it (`rendering.json_stream`).

The first chunk is read before anything is sent: a batch whose worker cannot answer then gets
the ordinary 503 page. A batch failing later can only cut the answer short (no last chunk), so
the browser or the CLI sees an unfinished download, never a complete-looking partial one.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from temporalio.service import RPCError

from console.pages import SECURITY_HEADERS
from console.reading import batches_answering
from watch import NoWorker

CHUNK = 64 * 1024
"""Characters gathered before each write."""
log = logging.getLogger("rallycall.console")


async def chunks(parts: AsyncIterator[str]) -> AsyncIterator[bytes]:
    held: list[str] = []
    size = 0
    async for part in parts:
        held.append(part)
        size += len(part)
        if size >= CHUNK:
            yield "".join(held).encode()
            held, size = [], 0
    if held:
        yield "".join(held).encode()


async def stream_out(
    request: web.Request, parts: AsyncIterator[str], content_type: str, headers: dict[str, str] | None = None
) -> web.StreamResponse:
    pieces = chunks(parts)
    with batches_answering():
        first = await anext(pieces, b"")
    response = web.StreamResponse(headers={**SECURITY_HEADERS, **(headers or {})})
    response.content_type = content_type
    response.charset = "utf-8"
    await response.prepare(request)
    await response.write(first)
    try:
        async for piece in pieces:
            await response.write(piece)
    except (NoWorker, RPCError) as exc:
        log.warning("%s %s cut short: %s", request.method, request.path, exc)
        if request.transport is not None:
            request.transport.close()  # no last chunk: the download shows as unfinished
        return response
    except ConnectionResetError:  # the browser went away
        return response
    await response.write_eof()
    return response
