"""Sessions in a signed cookie, and the CSRF token every form carries.

Every visitor gets a session, signed in or not, so the sign-in form and a call-me link's
button are protected by a CSRF token like every other form. A session lasts SESSION_LIFETIME
from sign-in, however busy it is: a forgotten browser in a crisis room does not stay signed in
for days. The cookie is signed (itsdangerous), not encrypted: it holds no secret but its own
CSRF token.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

COOKIE = "rallycall_session"
SESSION_LIFETIME = timedelta(hours=12)
CSRF_FIELD = "csrf"
SALT = "rallycall-console-session"


@dataclass
class Session:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    user: str | None = None
    since: float = 0.0
    """When the user signed in (epoch seconds)."""
    key: str = ""
    """The account's session key at sign-in: once it changes (signed out everywhere, revoked, a
    new password), this session is over."""
    flash: str | None = None
    """One message for the next page: what an action did, or why it was refused."""
    expired: bool = False
    """It was a signed-in session whose time ran out (not stored)."""
    changed: bool = False

    def sign_in(self, user: str, now: float, key: str = "") -> None:
        """A fresh CSRF token too: nothing learnt before signing in is worth anything after."""
        self.csrf = secrets.token_urlsafe(24)
        self.user, self.since, self.key, self.changed = user, now, key, True

    def sign_out(self) -> None:
        self.csrf = secrets.token_urlsafe(24)
        self.user, self.since, self.key, self.changed = None, 0.0, "", True

    def say(self, message: str) -> None:
        self.flash, self.changed = message, True

    def pop_flash(self) -> str | None:
        message, self.flash = self.flash, None
        self.changed = self.changed or message is not None
        return message


class SessionCodec:
    def __init__(
        self, secret: str, lifetime: timedelta = SESSION_LIFETIME, clock: Callable[[], float] = time.time
    ) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt=SALT)
        self.lifetime = lifetime
        self.clock = clock

    def dumps(self, session: Session) -> str:
        data = {
            "c": session.csrf,
            "u": session.user,
            "s": session.since,
            "k": session.key,
            "f": session.flash,
        }
        return str(self.serializer.dumps(data))

    def loads(self, cookie: str | None) -> Session:
        """The session the cookie holds, or a new anonymous one (missing, forged, expired)."""
        if not cookie:
            return Session(changed=True)
        try:
            data: dict[str, Any] = self.serializer.loads(cookie, max_age=int(self.lifetime.total_seconds()))
        except SignatureExpired as exc:
            payload = self.serializer.load_payload(exc.payload) if exc.payload is not None else {}
            return Session(changed=True, expired=bool(payload.get("u")))
        except BadSignature:
            return Session(changed=True)
        session = Session(
            csrf=str(data["c"]),
            user=data["u"],
            since=float(data["s"]),
            key=str(data.get("k", "")),
            flash=data["f"],
        )
        if session.user and self.clock() - session.since > self.lifetime.total_seconds():
            return Session(changed=True, expired=True)
        return session

    def now(self) -> float:
        return self.clock()


SESSION = web.RequestKey("session", Session)


def session_of(request: web.Request) -> Session:
    return request[SESSION]


def session_middleware(codec: SessionCodec, secure: bool) -> Middleware:
    """Load the session before the handler, and store it after if it changed."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        session = codec.loads(request.cookies.get(COOKIE))
        request[SESSION] = session
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            _store(exc, session, codec, secure)
            raise
        _store(response, session, codec, secure)
        return response

    return middleware


def _store(response: web.StreamResponse, session: Session, codec: SessionCodec, secure: bool) -> None:
    if session.changed and not response.prepared:
        response.set_cookie(
            COOKIE,
            codec.dumps(session),
            max_age=int(codec.lifetime.total_seconds()),
            httponly=True,
            samesite="Lax",
            secure=secure,
            path="/",
        )


def csrf_middleware(refused: Callable[[web.Request], web.StreamResponse]) -> Middleware:
    """Every POST carries the session's CSRF token in its form, or is refused with 403."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "POST" and not request.path.startswith("/api/"):  # API: bearer tokens, no cookie
            form = await request.post()
            token = form.get(CSRF_FIELD)
            expected = session_of(request).csrf
            if not isinstance(token, str) or not hmac.compare_digest(token, expected):
                return refused(request)
        return await handler(request)

    return middleware
