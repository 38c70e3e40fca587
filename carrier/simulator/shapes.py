"""Twilio's REST conventions, shared by every resource: the error body its SDK turns into
`TwilioRestException`, list pages, RFC 2822 dates and form values."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from email.utils import format_datetime
from typing import Any, overload

import phonenumbers
from aiohttp import web

API_VERSION = "2010-04-01"


class TwilioError(web.HTTPException):
    """An error answered with Twilio's body: `code`, `message`, `status`, `more_info`."""

    def __init__(self, status: int, code: int, message: str) -> None:
        self.status_code = status
        body = {"code": code, "message": message, "status": status,
                "more_info": f"https://www.twilio.com/docs/errors/{code}"}  # fmt: skip
        super().__init__(text=json.dumps(body), content_type="application/json")


def not_found() -> TwilioError:
    return TwilioError(404, 20404, "The requested resource was not found")


@overload
def rfc2822(moment: datetime) -> str: ...
@overload
def rfc2822(moment: datetime | None) -> str | None: ...
def rfc2822(moment: datetime | None) -> str | None:
    return format_datetime(moment) if moment else None


def text(value: object) -> str | None:
    return str(value) if value is not None else None


def flag(value: object) -> bool | None:
    """A boolean form field as the SDK sends it ("true"/"false"); None when absent."""
    return None if value is None else str(value).lower() == "true"


def words(values: Iterable[object]) -> frozenset[str]:
    """A multi-valued field, sent repeated (the SDK) or space-separated (TwiML style)."""
    return frozenset(word for value in values for word in str(value).split())


def require_number(value: object, name: str, code: int) -> str:
    """An E.164 number, or the Twilio error `code` (21211 for To, 21212 for From)."""
    number = text(value) or ""
    try:
        parsed = phonenumbers.parse(number, None)
        valid = phonenumbers.is_valid_number(parsed) and number == phonenumbers.format_number(
            parsed, phonenumbers.PhoneNumberFormat.E164
        )
    except phonenumbers.NumberParseException:
        valid = False
    if not valid:
        raise TwilioError(400, code, f"The '{name}' number {number} is not a valid phone number.")
    return number


def page(key: str, items: list[dict[str, Any]], request: web.Request) -> dict[str, Any]:
    """Everything in one page: the SDK stops at its `limit` or when `next_page_uri` is null."""
    return {
        key: items,
        "uri": request.path_qs,
        "first_page_uri": request.path_qs,
        "next_page_uri": None,
        "previous_page_uri": None,
        "page": 0,
        "page_size": max(len(items), 50),
        "start": 0,
        "end": max(len(items) - 1, 0),
    }
