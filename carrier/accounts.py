"""The carriers of an installation, in order: their accounts (RALLYCALL_CARRIERS), and the
adapters a worker or callback server talks to, by name.

Calls and SMS go through the first carrier that works (`domain.carrier_choice`,
`carrier.health`); each carrier has its own account, numbers, rate and callbacks, which carry
its name (`carrier=` in their query) so the callback server checks each with its own key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from carrier.health import CarrierHealth
from carrier.port import Carrier
from domain.call_queue import CarrierRoute
from domain.contacts import to_e164

NAME = r"^[a-z][a-z0-9-]{0,19}$"
DEV_TELNYX_SIGNING_KEY = "7K6gcqTvFkgpFxwTDGVk7F8GKqAXryBT8eWfWYcNs+0="
"""The embedded stack's simulated Telnyx signs its webhooks with this ed25519 seed (published
here, like the other dev secrets: development only)."""
DEV_TELNYX_PUBLIC_KEY = "fMuh2FGsdwdiGIa/xXSpDsS6ycKki+aKyAFFxUVJ1RU="


class CarrierAccount(BaseModel):
    """One carrier account, as an operator configures it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    """How status, the console and the report name it, and its callbacks' `carrier=`."""
    kind: Literal["twilio", "telnyx"] = "twilio"
    account_sid: str = Field(min_length=1)
    """Twilio: the account SID. Telnyx: the account ID of its TeXML paths."""
    auth_token: SecretStr
    """Twilio: the auth token (authenticates our requests, signs its callbacks). Telnyx: the
    API key."""
    api_url: str | None = None
    """The API's base URL (the simulator); unset: the carrier's own."""
    application_id: str | None = None
    """Telnyx: the TeXML application its calls belong to (its Voice URL is our dial-in route)."""
    public_key: str | None = None
    """Telnyx: the account's public key (base64), which checks its callbacks' ed25519 signature."""
    number: str
    """Its dial-in number: people dial it, its calls show it, its SMS come from it."""
    calls_per_second: float = Field(1.0, gt=0)
    sms_per_second: float = Field(100.0, gt=0)

    @field_validator("number")
    @classmethod
    def _number_is_e164(cls, value: str) -> str:
        return to_e164(value)  # its ValueError names what is wrong with it

    @model_validator(mode="after")
    def _telnyx_has_its_keys(self) -> CarrierAccount:
        if self.kind == "telnyx" and not (self.application_id and self.public_key):
            raise ValueError(f"carrier {self.name}: Telnyx needs application_id and public_key")
        return self

    def route(self) -> CarrierRoute:
        return CarrierRoute(
            name=self.name,
            account=self.account_sid,
            number=self.number,
            calls_per_second=self.calls_per_second,
        )

    def adapter(self) -> Carrier:
        token = self.auth_token.get_secret_value()
        if self.kind == "telnyx":
            from carrier.telnyx import TelnyxCarrier  # its SDK takes 1.8 s to import: only when used

            assert self.application_id and self.public_key, "checked when the settings were read"
            return TelnyxCarrier(token, self.account_sid, self.application_id, self.public_key, self.api_url)
        from carrier.twilio import TwilioCarrier  # the CLI and the console need no carrier SDK

        return TwilioCarrier(self.account_sid, token, self.api_url)


class Carriers:
    """The adapters by name, in order, with this process's view of their health. A name this
    process does not know (a run launched before 0.2.0 names none) is the first."""

    def __init__(self, adapters: dict[str, Carrier], health: CarrierHealth | None = None) -> None:
        assert adapters, "at least one carrier"
        self._adapters = adapters
        self.first = next(iter(adapters))
        self.health = health or CarrierHealth()

    @classmethod
    def of(cls, accounts: list[CarrierAccount]) -> Carriers:
        return cls({account.name: account.adapter() for account in accounts})

    @classmethod
    def given(cls, carriers: Carrier | Carriers, accounts: list[CarrierAccount]) -> Carriers:
        """`carriers` as they are, or one adapter as the first account's (tests and tools that
        build a single adapter themselves)."""
        return carriers if isinstance(carriers, Carriers) else cls({accounts[0].name: carriers})

    def name_of(self, name: str) -> str:
        return name if name in self._adapters else self.first

    def __getitem__(self, name: str) -> Carrier:
        return self._adapters[self.name_of(name)]

    def __contains__(self, name: str) -> bool:
        return name in self._adapters

    def __iter__(self) -> Iterator[str]:
        return iter(self._adapters)

    async def close(self) -> None:
        for adapter in self._adapters.values():
            close = getattr(adapter, "close", None)
            if close is not None:
                await close()
