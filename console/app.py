"""The console's web application: pages, static files and middlewares, put together.

Middlewares, outermost first: the session (loaded before, stored after), security headers,
readable error pages, the CSRF check on every POST, and sign-in. Everything the pages use is
served from `static/`: the console works in a crisis room with no internet.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from temporalio.client import Client

from config import Settings
from console.access import access_middleware
from console.auth import Users
from console.lockout import SignInFailures
from console.pages import errors_middleware, refused_form, security_headers
from console.routes import api, call_me, definitions, launch, report, runs, signin
from console.sessions import SessionCodec, csrf_middleware, session_middleware
from console.state import CONSOLE, ConsoleState

STATIC = Path(__file__).parent / "static"
SHUTDOWN_SECONDS = 2.0
"""Live pages stop streaming when the console stops; no request is worth a longer wait."""


def build_app(client: Client, settings: Settings, users: Users | None = None) -> web.Application:
    codec = SessionCodec(settings.console_secret)
    secure = settings.console_url.startswith("https://")
    app = web.Application(
        middlewares=[
            session_middleware(codec, secure),
            security_headers(),
            errors_middleware(),
            csrf_middleware(refused_form),
            access_middleware(),
        ]
    )
    users = users or Users(settings.users_path)
    state = ConsoleState(
        client=client, settings=settings, users=users, codec=codec, failures=SignInFailures(users.path)
    )
    app[CONSOLE] = state
    for module in (signin, launch, runs, report, call_me, definitions, api):
        app.router.add_routes(module.routes)
    app.router.add_static("/static", STATIC)
    app.on_shutdown.append(stop_streams)
    return app


async def stop_streams(app: web.Application) -> None:
    app[CONSOLE].closing.set()


def listen_address(settings: Settings) -> tuple[str, int]:
    host, port = settings.console_addr.rsplit(":", 1)
    return host, int(port)


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start listening; the caller keeps the runner and calls `cleanup()` to stop."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
