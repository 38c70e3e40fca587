"""A round-robin HTTP reverse proxy on loopback, standing in for the load balancer in front of
the callback servers: the carrier posts to one public URL and any replica answers.

A replica that refuses the connection (down, restarting) is skipped for the next one, as a load
balancer's health checks would do; a request that reached a replica is never sent to a second
one, so no callback is told twice. The path and query go through byte for byte: the replica
checks the carrier's signature against them.

    python -m stack.proxy [--host 127.0.0.1] [--port 0] --upstream URL [--upstream URL ...]

Prints its URL on its first line; SIGTERM or Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import signal
from collections.abc import AsyncIterator, Sequence

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

log = logging.getLogger("rallycall.proxy")
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade", "host", "content-length"}
)  # fmt: skip


class RoundRobin:
    def __init__(self, upstreams: Sequence[str]) -> None:
        self._upstreams = [upstream.rstrip("/") for upstream in upstreams]
        self._turns = itertools.cycle(range(len(self._upstreams)))

    def order(self) -> list[str]:
        """Every upstream, starting with the one whose turn it is."""
        first = next(self._turns)
        return self._upstreams[first:] + self._upstreams[:first]


BALANCER = web.AppKey("balancer", RoundRobin)
SESSION = web.AppKey("session", aiohttp.ClientSession)


def proxy_app(upstreams: Sequence[str]) -> web.Application:
    app = web.Application()
    app[BALANCER] = RoundRobin(upstreams)
    app.cleanup_ctx.append(_session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


async def _session(app: web.Application) -> AsyncIterator[None]:
    # auto_decompress off: bodies pass through as the upstream encoded them
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        app[SESSION] = session
        yield


async def forward(request: web.Request) -> web.Response:
    body = await request.read()
    headers = _end_to_end(request.headers)
    headers["X-Forwarded-For"] = request.remote or ""
    headers["X-Forwarded-Proto"] = request.scheme
    headers["X-Forwarded-Host"] = request.host
    for upstream in request.app[BALANCER].order():
        target = URL(upstream + request.raw_path, encoded=True)
        try:
            async with request.app[SESSION].request(
                request.method, target, headers=headers, data=body, allow_redirects=False
            ) as response:
                return web.Response(
                    status=response.status, body=await response.read(), headers=_end_to_end(response.headers)
                )
        except aiohttp.ClientConnectorError:
            log.warning("%s refused the connection; trying the next one", upstream)
        except aiohttp.ClientError as exc:
            # it had the request: it may have handled it, so no other replica gets it again
            log.warning("%s dropped a request it had received (%s); not retried", upstream, exc)
            raise web.HTTPBadGateway(text="the upstream dropped the request") from exc
    raise web.HTTPBadGateway(text="no upstream answers")


def _end_to_end(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP)


async def serve(host: str, port: int, upstreams: Sequence[str]) -> None:
    runner = web.AppRunner(proxy_app(upstreams), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_host, bound_port = runner.addresses[0][:2]
        print(f"http://{bound_host}:{bound_port}", flush=True)
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m stack.proxy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (the default): any free port")
    parser.add_argument("--upstream", action="append", required=True, metavar="URL")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args.host, args.port, args.upstream))


if __name__ == "__main__":
    main()
