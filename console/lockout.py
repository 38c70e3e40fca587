"""Sign-in attempts limited per account and per client address, counted in a file beside the
users file, so every console replica that shares the users file counts the same failures.

An attempt is counted before its password is checked and forgiven if the password was right, so
attempts sent at once, to one replica or to several, cannot get past the limit. A refused
attempt is neither checked (a right password is refused too) nor counted: a lockout ends WINDOW
after the failures that caused it. A right password forgives that account's failures from that
address only: guesses from elsewhere stay counted. Failures are counted for any name typed, so
a lockout does not tell whether an account exists.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from console.files import locked

WINDOW = timedelta(minutes=15)
KEPT = 10_000
"""Failures kept at most, the oldest dropped first: the file stays small under a flood of
guesses from many addresses."""


class Failure(BaseModel):
    at: float
    account: str
    address: str


class FailuresFile(BaseModel):
    failures: list[Failure] = Field(default_factory=list)


@dataclass(frozen=True)
class Lockout:
    """Why an attempt is refused, and for how long still (seconds, as in Retry-After)."""

    by: Literal["account", "address"]
    retry_after: int

    def message(self) -> str:
        whose = "for this account" if self.by == "account" else "from your address"
        minutes = math.ceil(self.retry_after / 60)
        return f"Too many failed sign-ins {whose}: try again in {minutes} min, or ask an administrator."


class SignInFailures:
    """The failed sign-ins of the last WINDOW, next to the users file at `users_path`."""

    def __init__(
        self, users_path: Path, window: timedelta = WINDOW, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = users_path.with_name(f"{users_path.stem}-sign-in-failures.json")
        self.window = window.total_seconds()
        self.clock = clock

    def attempt(self, account: str, address: str, per_account: int, per_address: int) -> Lockout | None:
        """Refuse the attempt (a Lockout), or count it as a failure until `succeeded` says otherwise."""
        account = account[:64]
        with locked(self.path):
            now = self.clock()
            failures = self._recent(now)
            by_account = [f.at for f in failures if f.account == account]
            by_address = [f.at for f in failures if f.address == address]
            lockouts = [
                lockout
                for lockout in (
                    self._lockout("account", by_account, per_account, now),
                    self._lockout("address", by_address, per_address, now),
                )
                if lockout is not None
            ]
            if lockouts:
                return max(lockouts, key=lambda lockout: lockout.retry_after)
            self._write([*failures, Failure(at=now, account=account, address=address)][-KEPT:])
        return None

    def succeeded(self, account: str, address: str) -> None:
        """The password was right: that account's failures from that address are forgiven."""
        with locked(self.path):
            failures = self._recent(self.clock())
            self._write([f for f in failures if (f.account, f.address) != (account[:64], address)])

    def unlock(self, account: str) -> int:
        """An administrator forgives every failure of the account (`users unlock`); how many."""
        with locked(self.path):
            failures = self._recent(self.clock())
            kept = [f for f in failures if f.account != account]
            self._write(kept)
        return len(failures) - len(kept)

    def _lockout(self, by: Literal["account", "address"], times: list[float], limit: int,
                 now: float) -> Lockout | None:  # fmt: skip
        """Locked while `limit` failures are in the window: until the oldest of them leaves it."""
        if len(times) < limit:
            return None
        free_at = sorted(times)[len(times) - limit] + self.window
        return Lockout(by, max(1, math.ceil(free_at - now)))

    def _recent(self, now: float) -> list[Failure]:
        try:
            stored = FailuresFile.model_validate_json(self.path.read_bytes())
        except FileNotFoundError:
            return []
        return [f for f in stored.failures if now - f.at < self.window]

    def _write(self, failures: list[Failure]) -> None:
        """Atomically, readable by its owner only (names and addresses of people signing in)."""
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".sign-in-failures-")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(FailuresFile(failures=failures).model_dump(mode="json"), out)
        os.chmod(temporary, 0o600)
        os.replace(temporary, self.path)


def client_address(request: web.Request, proxies: int) -> str:
    """Who is signing in: the connection's address, or, behind `proxies` trusted proxies, the
    address the outermost of them saw (the `proxies`-th X-Forwarded-For entry from the right;
    entries further left are whatever the client wrote). An IPv6 client counts per /64, which
    one client usually holds whole."""
    address = request.remote or ""
    if proxies:
        headers = request.headers.getall("X-Forwarded-For", ())
        hops = [hop.strip() for header in headers for hop in header.split(",")]
        if len(hops) >= proxies:
            address = hops[-proxies]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
