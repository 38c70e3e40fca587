"""Who may see and do what: every page but sign-in, the static files and call-me links needs a
signed-in account, and launching, ending and moderating need a launching role.

The account is looked up in the users file on every request, so an account removed or demoted
loses its rights at once, even with a session cookie still valid; so does a session signed in
before its account was signed out everywhere (its session key changed).
"""

from __future__ import annotations

import functools
import json
from urllib.parse import urlencode

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from console.auth import Account
from console.sessions import session_of
from console.state import console_of

PUBLIC = ("/sign-in", "/static/", "/call-me/", "/healthz")
API = "/api/"
"""The CLI's routes: a personal token in `Authorization: Bearer`, never a session cookie."""
ACCOUNT = web.RequestKey("account", Account)


def account_of(request: web.Request) -> Account | None:
    return request.get(ACCOUNT)


def signed_in(request: web.Request) -> Account:
    account = account_of(request)
    assert account is not None, "the access middleware lets no one in unsigned"
    return account


def access_middleware() -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(API):
            request[ACCOUNT] = token_account(request)
            return await handler(request)
        session = session_of(request)
        account = console_of(request).users.get(session.user) if session.user else None
        if account is not None and session.key != account.session_key:
            session.sign_out()
            session.say("You were signed out everywhere: please sign in again.")
            account = None
        if account is not None:
            request[ACCOUNT] = account
        elif not request.path.startswith(PUBLIC):
            if request.method != "GET":
                raise web.HTTPForbidden(text="sign in first")
            if session.expired:
                session.say("Your session has expired: please sign in again.")
            target = request.path_qs if request.path != "/" else "/red-button"
            raise web.HTTPSeeOther("/sign-in?" + urlencode({"next": target}))
        return await handler(request)

    return middleware


def token_account(request: web.Request) -> Account:
    """The account of the request's bearer token, or 401 (as JSON: the caller is a program)."""
    scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    account = console_of(request).users.by_token(token.strip()) if scheme.lower() == "bearer" else None
    if account is None:
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": "unauthorized", "message": "unknown or revoked token"}),
            content_type="application/json",
            headers={hdrs.WWW_AUTHENTICATE: "Bearer"},
        )
    return account


def launchers_only(handler: Handler) -> Handler:
    """Launch, end and moderate: refused with 403 for a viewer, whatever the page showed."""

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        if not signed_in(request).can_launch:
            raise web.HTTPForbidden(text="your role cannot launch, end or moderate runs")
        return await handler(request)

    return checked


def definition_readers_only(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        if not signed_in(request).can_read_definitions:
            raise web.HTTPForbidden(text="only procedure managers and administrators read definitions")
        return await handler(request)

    return checked
