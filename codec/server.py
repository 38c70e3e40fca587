"""The codec server: Temporal's Web UI (and `temporal --codec-endpoint`) posts the payloads it
shows here and gets them back decrypted, so an operator still reads the roster while Temporal
itself holds ciphertext only.

Protocol: `POST …/decode` and `POST …/encode` with `{"payloads": [...]}`, payloads in protobuf's
JSON form; only the last segment of the path counts. It listens on loopback only and answers
browsers of the UI's origins only (CORS): whoever reaches it reads every run in clear.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence

from aiohttp import hdrs, web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from codec.aes import AesGcmCodec, UndecryptablePayload

log = logging.getLogger("rallycall.codec")

LOOPBACK = "127.0.0.1"
MAX_BODY = 8 * 1024 * 1024
"""A history page's payloads in one request; Temporal refuses payloads over 2 MB anyway."""
ALLOWED_HEADERS = "Content-Type, X-Namespace"
"""What the Web UI sends (X-Namespace names the run's namespace; one key ring serves them all)."""


def ui_origins(ui_port: int) -> list[str]:
    """How a browser on this machine names the dev server's Web UI."""
    return [f"http://localhost:{ui_port}", f"http://{LOOPBACK}:{ui_port}"]


def build_app(codec: AesGcmCodec, origins: Collection[str]) -> web.Application:
    """`origins`: the Web UI's origins; a browser page of any other origin gets 403."""
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_route("*", "/{path:.*}", CodecEndpoint(codec, frozenset(origins)).handle)
    return app


async def serve(codec: AesGcmCodec, origins: Collection[str], port: int = 0) -> tuple[web.AppRunner, str]:
    """Listen on loopback (`port` 0: any free one); gives the runner to clean up and the URL."""
    runner = web.AppRunner(build_app(codec, origins), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, LOOPBACK, port).start()
    host, bound = runner.addresses[0][:2]
    return runner, f"http://{host}:{bound}"


class CodecEndpoint:
    def __init__(self, codec: AesGcmCodec, origins: frozenset[str]) -> None:
        self._codec = codec
        self._origins = origins
        self._actions: dict[str, Callable[[Sequence[Payload]], Awaitable[list[Payload]]]] = {
            "encode": codec.encode,
            "decode": self._decode_each,
        }

    async def handle(self, request: web.Request) -> web.Response:
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is not None and origin not in self._origins:
            return web.Response(status=403, text=f"origin {origin} is not a Web UI of this codec server")
        action = self._actions.get(request.path.rstrip("/").rsplit("/", 1)[-1])
        if action is None:
            return web.Response(status=404, text="POST …/encode or …/decode")
        if request.method == hdrs.METH_OPTIONS:
            return self._with_cors(web.Response(status=204), origin, preflight=request)
        if request.method != hdrs.METH_POST:
            return web.Response(status=405, headers={hdrs.ALLOW: "POST, OPTIONS"})
        try:
            payloads = json_format.ParseDict(await request.json(), Payloads()).payloads
        except (ValueError, json_format.ParseError) as exc:
            return web.Response(status=400, text=f"expected {{'payloads': [...]}} in protobuf JSON: {exc}")
        answer = json_format.MessageToDict(Payloads(payloads=await action(payloads)))
        return self._with_cors(web.Response(text=json.dumps(answer), content_type="application/json"), origin)

    async def _decode_each(self, payloads: Sequence[Payload]) -> list[Payload]:
        """One payload under a key we no longer hold (or one we never sealed) must not hide the
        rest of a page: it is returned as it came (the UI shows it as it is), and logged."""
        decoded = []
        for payload in payloads:
            try:
                decoded.append(self._codec.decrypt(payload))
            except UndecryptablePayload as exc:
                log.warning("left encoded: %s", exc)
                decoded.append(payload)
        return decoded

    def _with_cors(
        self, response: web.Response, origin: str | None, preflight: web.Request | None = None
    ) -> web.Response:
        if origin is None:  # not a browser: the CLI, curl
            return response
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
        response.headers[hdrs.VARY] = hdrs.ORIGIN
        if preflight is not None:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = "POST"
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = ALLOWED_HEADERS
            response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = "600"
            if preflight.headers.get("Access-Control-Request-Private-Network") == "true":
                # Chrome asks before a public page (Temporal Cloud's UI) may reach loopback
                response.headers["Access-Control-Allow-Private-Network"] = "true"
        return response
