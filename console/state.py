"""What every handler of one console shares: the Temporal client, the settings, the accounts,
the session codec and the page renderer. No launch is kept here: a launch's idempotency key
and Temporal make it one run across replicas and restarts (`console/routes/launch.py`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web
from temporalio.client import Client

from config import Settings
from console.auth import Users
from console.lockout import SignInFailures
from console.sessions import SessionCodec


@dataclass
class ConsoleState:
    client: Client
    settings: Settings
    users: Users
    codec: SessionCodec
    failures: SignInFailures
    """Failed sign-ins, beside the users file: every replica sharing it counts the same."""
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the console stops, so live streams end instead of holding the shutdown."""


CONSOLE = web.AppKey("console", ConsoleState)


def console_of(request: web.Request) -> ConsoleState:
    return request.app[CONSOLE]
