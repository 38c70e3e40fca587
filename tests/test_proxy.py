"""The load balancer of the prod-like topology, as Twilio's callbacks need it: a replica that
refuses the connection is skipped, but a request a replica received and dropped is never sent to
another one (it may have been handled: a callback must not be told twice)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from stack.ports import free_port
from stack.proxy import proxy_app


async def dropping_upstream(received: list[bytes]) -> asyncio.Server:
    """Reads a request, then closes the connection without an answer (a replica killed mid-request)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(65536))
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.fixture
async def answering() -> AsyncIterator[tuple[str, list[str]]]:
    paths: list[str] = []

    async def ok(request: web.Request) -> web.Response:
        paths.append(request.path)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", ok)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), paths
    await server.close()


async def post_through(upstreams: list[str]) -> aiohttp.ClientResponse:
    server = TestServer(proxy_app(upstreams), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            response = await session.post(server.make_url("/twilio/call-status"), data={"CallSid": "CA1"})
            await response.read()
            return response
    finally:
        await server.close()


async def test_a_replica_refusing_the_connection_is_skipped(answering: tuple[str, list[str]]) -> None:
    url, paths = answering
    response = await post_through([f"http://127.0.0.1:{free_port()}", url])
    assert response.status == 200
    assert paths == ["/twilio/call-status"]


async def test_a_request_a_replica_dropped_is_answered_502_and_not_sent_again(
    answering: tuple[str, list[str]],
) -> None:
    url, paths = answering
    received: list[bytes] = []
    dropping = await dropping_upstream(received)
    host, port = dropping.sockets[0].getsockname()[:2]
    try:
        response = await post_through([f"http://{host}:{port}", url])
    finally:
        dropping.close()
        await dropping.wait_closed()
    assert response.status == 502
    assert len(received) == 1 and b"POST /twilio/call-status" in received[0]
    assert paths == [], "the other replica never got it"
