"""Pages from Jinja2 templates: the console's words and layout live in `templates/`, the data
in the run's view; a template lays it out and never recomputes it.

Times are written as `<time datetime="…">` in UTC with a UTC fallback text, which the page's
script rewrites in the browser's time zone.

The console's pages are in English; a page for someone called (the call-me page) is in their
language, its texts marked `_()` in the templates and translated by the catalogues (`i18n`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import phonenumbers
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from babel import Locale
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from console.access import account_of
from console.sessions import CSRF_FIELD, session_of
from domain.run_view import MEDIUM_LABELS
from i18n.catalogues import SOURCE_LANGUAGE, words
from i18n.languages import SHIPPED
from rendering.words import OBJECTIVE_WORDS, OUTCOME_WORDS, person_state, step_line

TEMPLATES = Path(__file__).parent / "templates"
log = logging.getLogger("rallycall.console")


def when(moment: datetime | None, style: str = "time") -> Markup:
    """A time the browser shows in its own time zone; UTC until the script has run."""
    if moment is None:
        return Markup("\N{EN DASH}")
    fallback = f"{moment:%H:%M:%S} UTC" if style == "time" else f"{moment:%Y-%m-%d %H:%M:%S} UTC"
    return Markup('<time datetime="{}" data-style="{}">{}</time>').format(moment.isoformat(), style, fallback)


def countdown(moment: datetime) -> Markup:
    """`in 1:23`, counted down in the browser; the time itself until the script has run."""
    return Markup('<span class="countdown" data-countdown="{}">at {}</span>').format(
        moment.isoformat(), when(moment)
    )


def duration(span: timedelta) -> str:
    """`2 min`, `1 min 30 s`, `45 s`, `4 h`."""
    seconds = int(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [
        f"{hours} h" if hours else "",
        f"{minutes} min" if minutes else "",
        f"{seconds} s" if seconds else "",
    ]
    return " ".join(p for p in parts if p) or "0 s"


def phone(e164: str) -> str:
    """`+41 21 555 01 00`: easier to read out over a phone than `+41215550100`."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def language_name(language: str) -> str:
    """`fr` -> `French`: a language as the console's own (English) pages name it."""
    return Locale.parse(language, sep="-").get_display_name(SOURCE_LANGUAGE) or language


def in_language(language: str) -> dict[str, Any]:
    """What renders a page in `language` (a shipped one): its `<html lang>` and its texts,
    each written `{{ _("...", field=...) }}` in the template and found there by
    `python -m i18n.extract`. Other pages are rendered in English, the source language."""
    return {"page_language": language, "_": partial(words, language=language)}


def browser_language(request: web.Request, default: str) -> str:
    """The shipped language the browser prefers (`Accept-Language`, matched by Babel), else
    `default`: for a page shown before anyone is known (a call-me link that is not valid)."""
    found = Locale.negotiate(preferred_tags(request.headers.get("Accept-Language", "")), SHIPPED, sep="-")
    return found.language if found else default


def preferred_tags(accept_language: str) -> list[str]:
    """`de-CH,de;q=0.9,en;q=0.5` -> `["de-CH", "de", "en"]`: by weight, then as listed."""
    weighed = []
    for position, item in enumerate(accept_language.split(",")):
        tag, *parameters = (part.strip() for part in item.split(";"))
        weights = [p.removeprefix("q=") for p in parameters if p.startswith("q=")]
        try:
            weight = float(weights[0]) if weights else 1.0
        except ValueError:
            continue
        if tag and tag != "*" and weight > 0:
            weighed.append((-weight, position, tag))
    return [tag for _, _, tag in sorted(weighed)]


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        when=when,
        countdown=countdown,
        duration=duration,
        phone=phone,
        person_state=person_state,
        step_line=step_line,
        medium_label=MEDIUM_LABELS,
        outcome_words=OUTCOME_WORDS,
        objective_words=OBJECTIVE_WORDS,
        csrf_field=CSRF_FIELD,
        language_name=language_name,
        **in_language(SOURCE_LANGUAGE),
    )
    return env


PAGES = environment()


def fragment(name: str, **context: Any) -> str:
    return PAGES.get_template(name).render(**context)


def page_context(request: web.Request) -> dict[str, Any]:
    session = session_of(request)
    return {
        "account": account_of(request),
        "csrf": session.csrf,
        "flash": session.pop_flash(),
        "path": request.path,
    }


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    html = PAGES.get_template(template).render(**page_context(request), **context)
    return web.Response(text=html, status=status, content_type="text/html")


def refused_form(request: web.Request) -> web.Response:
    """A POST without the session's CSRF token: a stale page, or another site's form."""
    return render(
        request,
        "error.html",
        status=403,
        title="This form cannot be accepted",
        message="It has expired or did not come from this console. Go back, reload the page and try again.",
    )


def errors_middleware() -> Middleware:
    """Refusals and missing pages as readable pages, not bare text."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400 or exc.content_type != "text/plain" or request.writer.output_size:
                raise
            if request.path.startswith("/api/"):  # a program reads it: JSON, in the handler's words
                said = {"error": exc.reason.lower().replace(" ", "_"), "message": exc.text}
                kept = {k: v for k, v in exc.headers.items() if k.lower() != "content-type"}
                return web.json_response(said, status=exc.status, headers=kept)
            return error_page(request, exc)
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            if request.writer.output_size:  # a streamed answer has begun: only cutting it short says so
                raise
            if request.path.startswith("/api/"):
                failed = {"error": "internal", "message": "see the console's log"}
                return web.json_response(failed, status=500)
            message = "The console failed to show this page. Reload to try again; if it fails again, tell "
            message += "the administrator (the error is in the console's log)."
            return render(request, "error.html", status=500, title="Something went wrong", message=message)

    return middleware


def error_page(request: web.Request, exc: web.HTTPException) -> web.Response:
    """A handler's refusal in its own words; aiohttp's bare ones (`404: Not Found`) in ours."""
    titles = {403: "Not allowed", 404: "Not found", 410: "Over"}
    generic = not exc.text or exc.text.startswith(f"{exc.status}:")
    message = exc.text or exc.reason
    if generic:
        message = "There is no such page here." if exc.status == 404 else exc.reason
    return render(
        request, "error.html", status=exc.status, title=titles.get(exc.status, exc.reason), message=message
    )


SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
"""On every answer; a streamed one (already sent when the middleware sees it) sets them itself."""


def security_headers() -> Middleware:
    """Everything comes from the console itself; no page may be framed; no link leaks its URL
    (a call-me link is a personal token)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if response.prepared:
            return response
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return middleware
