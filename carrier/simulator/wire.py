"""How one dialect spells the Calls and Conferences resources on the wire.

Telnyx's TeXML REST API is Twilio's, resource for resource and parameter for parameter, under
another prefix, without `.json`, and with JSON request bodies where Twilio's SDK sends forms.
The handlers in `rest` and `rest_conferences` serve both: a `Wire` gives them the paths, reads
a request's parameters, and shapes the answer to a call's creation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import MultiMapping

Form = MultiMapping[Any]
"""A request's parameters by name, repeated ones too (`getall`)."""


async def form_body(request: web.Request) -> Form:
    return await request.post()


def as_created(resource: dict[str, Any]) -> dict[str, Any]:
    return resource


@dataclass(frozen=True)
class Wire:
    account_path: str
    """The account's root, with an `{account}` placeholder."""
    suffix: str = ""
    """What ends each resource path (Twilio: `.json`)."""
    document: str = "Twiml"
    """The parameter carrying a call's instructions inline (Telnyx: `Texml`)."""
    call_requires: tuple[str, ...] = ()
    """Parameters a call's creation must have besides `To`, `From` and its instructions."""
    read_form: Callable[[web.Request], Awaitable[Form]] = form_body
    created_call: Callable[[dict[str, Any]], dict[str, Any]] = as_created
    """The answer to a call's creation, from the call's resource."""

    def path(self, tail: str) -> str:
        return self.account_path + tail + self.suffix
