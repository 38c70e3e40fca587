"""The simulated second carrier of the embedded stack and of the loopback setups: the simulator
speaking Telnyx's API, with its own account, number, signing key and journal, after the first
(simulated Twilio). Calls, SMS and the bridge fail over to it as they would to a real Telnyx."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from callbacks import urls
from callbacks.urls import callback_url
from carrier.accounts import DEV_TELNYX_PUBLIC_KEY, DEV_TELNYX_SIGNING_KEY, CarrierAccount
from carrier.simulator import CarrierSimulator, Scenario
from carrier.simulator.telnyx_rest import APPLICATION_ID
from config import Settings

NAME = "telnyx"
ACCOUNT = "rallycall-telnyx-dev-account"
API_KEY = "KEY-rallycall-embedded-telnyx-dev"
NUMBER = "+41215550200"


def simulator(config: Settings, scenario: Scenario, journal: Path) -> CarrierSimulator:
    """Answering as `scenario` says, at the stack's rates; its number's calls come to the
    callback server's dial-in route, naming it."""
    return CarrierSimulator(
        ACCOUNT,
        API_KEY,
        scenario.with_account_rate(config.calls_per_second, config.sms_per_second),
        journal,
        dial_in_number=NUMBER,
        voice_url=callback_url(config.public_url, urls.VOICE_INBOUND, carrier=NAME),
        dialect="telnyx",
        signing_key=DEV_TELNYX_SIGNING_KEY,
    )


def carriers(config: Settings, first_url: str, second_url: str) -> list[CarrierAccount]:
    """The carriers in order: the first as the settings have it (at `first_url`), then this one."""
    first = config.carrier_accounts()[0]
    second = CarrierAccount(
        name=NAME,
        kind="telnyx",
        account_sid=ACCOUNT,
        auth_token=SecretStr(API_KEY),
        api_url=second_url,
        application_id=APPLICATION_ID,
        public_key=DEV_TELNYX_PUBLIC_KEY,
        number=NUMBER,
        calls_per_second=config.calls_per_second,
        sms_per_second=config.sms_per_second,
    )
    return [first.model_copy(update={"api_url": first_url}), second]
