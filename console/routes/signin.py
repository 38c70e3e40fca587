"""Sign in (limited per account and per client address: `console/lockout.py`), sign out here or
everywhere, and the front door."""

from __future__ import annotations

import asyncio

from aiohttp import web

from console.access import account_of, signed_in
from console.lockout import client_address
from console.pages import render
from console.sessions import session_of
from console.state import console_of

routes = web.RouteTableDef()
HOME = "/red-button"


def safe_next(target: object) -> str:
    """Only a page of this console: a sign-in link must not send anyone elsewhere."""
    if isinstance(target, str) and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return HOME


@routes.get("/")
async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(HOME)


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok")


@routes.get("/sign-in")
async def sign_in_page(request: web.Request) -> web.StreamResponse:
    target = safe_next(request.query.get("next"))
    if account_of(request) is not None:
        raise web.HTTPSeeOther(target)
    return render(request, "sign_in.html", next=target, name="", error=None)


@routes.post("/sign-in")
async def sign_in(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    form = await request.post()
    name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
    target = safe_next(form.get("next"))
    settings = console.settings
    address = client_address(request, settings.console_proxies)
    limits = (settings.sign_in_failures_per_account, settings.sign_in_failures_per_address)
    lockout = await asyncio.to_thread(console.failures.attempt, name, address, *limits)
    if lockout is not None:
        page = render(request, "sign_in.html", status=429, next=target, name=name, error=lockout.message())
        page.headers["Retry-After"] = str(lockout.retry_after)
        return page
    account = await asyncio.to_thread(console.users.verify, name, password)
    if account is None:
        error = "Wrong name or password."
        return render(request, "sign_in.html", status=401, next=target, name=name, error=error)
    await asyncio.to_thread(console.failures.succeeded, name, address)
    session_of(request).sign_in(account.name, console.codec.now(), account.session_key)
    raise web.HTTPSeeOther(target)


@routes.post("/sign-out")
async def sign_out(request: web.Request) -> web.StreamResponse:
    session = session_of(request)
    session.sign_out()
    session.say("You are signed out.")
    raise web.HTTPSeeOther("/sign-in")


@routes.post("/sign-out-everywhere")
async def sign_out_everywhere(request: web.Request) -> web.StreamResponse:
    """Every session of this account ends, in every browser, on every replica."""
    name = signed_in(request).name
    await asyncio.to_thread(console_of(request).users.revoke_sessions, name)
    session = session_of(request)
    session.sign_out()
    session.say(f"You are signed out everywhere: every browser signed in as {name} must sign in again.")
    raise web.HTTPSeeOther("/sign-in")
