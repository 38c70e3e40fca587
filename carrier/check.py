"""`rallycall carriers check`: each configured carrier probed at once, by reads only (nothing
is called or sent), and what works said in order, before an incident needs it rather than
during one. Each adapter's `check` knows what its carrier lets us read; this module knows the
settings, so the fixes name the variables an operator sets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from callbacks import urls
from callbacks.urls import callback_url
from carrier.accounts import CarrierAccount, Carriers
from carrier.port import Probe
from config import Settings
from domain.contacts import masked, masked_text

CHECK_TIMEOUT = 30.0
"""Seconds for one carrier's probes (each request is bounded at 15 s by its adapter)."""
TWILIO_VARIABLES = {
    "account_sid": "TWILIO_ACCOUNT_SID",
    "auth_token": "TWILIO_AUTH_TOKEN",
    "number": "RALLYCALL_DIAL_IN_NUMBER",
    "api_url": "RALLYCALL_TWILIO_API_URL",
}
"""Where the one Twilio account of an installation without RALLYCALL_CARRIERS is configured."""


class CarriersFailing(Exception):
    """Some probe of some carrier failed (what failed is printed already)."""


@dataclass(frozen=True)
class CarrierCheck:
    """One carrier's probes, in the order its adapter made them; or a single `answer` probe when
    its adapter did not finish (no answer in time, an answer no SDK could read)."""

    name: str
    kind: str
    number: str
    """Masked."""
    probes: tuple[Probe, ...]

    @property
    def ok(self) -> bool:
        return all(probe.ok for probe in self.probes)

    def as_json(self) -> dict[str, object]:
        probes = [{"what": p.what, "ok": p.ok, "detail": p.detail} for p in self.probes]
        return {"name": self.name, "kind": self.kind, "number": self.number, "ok": self.ok, "probes": probes}

    def lines(self) -> list[str]:
        return [f"{self.name} ({self.kind}, {self.number})"] + [
            f"  {'✓' if p.ok else '✗'} {p.what:<12} {p.detail}" for p in self.probes
        ]


async def check_carriers(config: Settings, seconds_each: float = CHECK_TIMEOUT) -> list[CarrierCheck]:
    """Every carrier of `config`, in order, probed concurrently."""
    accounts = config.carrier_accounts()
    carriers = Carriers.of(accounts)
    from_variables = not config.carriers

    async def check(account: CarrierAccount) -> CarrierCheck:
        first = account.name == carriers.first
        voice_urls = dial_in_urls(config.public_url, account.name, first=first)
        setting = setting_of(account, from_variables=from_variables)
        try:
            async with asyncio.timeout(seconds_each):
                probes = await carriers[account.name].check(account.number, voice_urls, setting)
        except TimeoutError:
            fix = f"check {setting('api_url')} and this host's network"
            probes = [Probe("answer", False, f"no complete answer within {seconds_each:g} s: {fix}")]
        except Exception as exc:  # an answer no SDK could read: this carrier fails, the others are told
            probes = [Probe("answer", False, f"unexpected answer: {masked_text(repr(exc))}")]
        return CarrierCheck(account.name, account.kind, masked(account.number), tuple(probes))

    try:
        return list(await asyncio.gather(*(check(account) for account in accounts)))
    finally:
        await carriers.close()


def dial_in_urls(public_url: str, name: str, *, first: bool) -> list[str]:
    """The voice URLs that reach our dial-in route for this carrier, the one to set first: a
    callback naming no carrier is the first carrier's (as before 0.2.0, and as deploy/README.md
    still says to set it), so the first carrier may have either."""
    named = callback_url(public_url, urls.VOICE_INBOUND, carrier=name)
    return [named, callback_url(public_url, urls.VOICE_INBOUND)] if first else [named]


def setting_of(account: CarrierAccount, *, from_variables: bool) -> Callable[..., str]:
    """Where the operator sets an account's fields: the TWILIO_* variables, or its entry in
    RALLYCALL_CARRIERS."""

    def named(*fields: str) -> str:
        if from_variables:
            return " and ".join(TWILIO_VARIABLES.get(field, field) for field in fields)
        return f"{' and '.join(fields)} of carrier {account.name} in RALLYCALL_CARRIERS"

    return named


def summary(checks: list[CarrierCheck]) -> str:
    """`2 carriers: twilio works; telnyx: voice, webhook failed`."""
    said = [
        f"{check.name} works"
        if check.ok
        else f"{check.name}: {', '.join(p.what for p in check.probes if not p.ok)} failed"
        for check in checks
    ]
    return f"{len(checks)} carrier{'' if len(checks) == 1 else 's'}: {'; '.join(said)}"
