"""`rallycall carriers check` against both simulators on loopback, through the real SDKs: a good
configuration passes every probe and nothing is called or sent; bad credentials, a number the
account does not own, a voice webhook elsewhere, a voice outage and a carrier that never answers
each fail the probe they should, with the fix named; the command's text, JSON and exit code."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from callbacks import urls
from callbacks.server import serve
from callbacks.urls import callback_url
from carrier.accounts import DEV_TELNYX_PUBLIC_KEY, DEV_TELNYX_SIGNING_KEY, CarrierAccount
from carrier.check import CarrierCheck, check_carriers
from carrier.simulator import CarrierSimulator, Scenario
from carrier.simulator.telnyx_rest import APPLICATION_ID
from config import Settings
from tests.support import starter_in

PUBLIC_URL = "https://calls.example.org"
TWILIO_SID = "AC" + "7" * 32
TWILIO_TOKEN = "twilio-token-for-the-check"
TWILIO_NUMBER = "+41215550100"
TELNYX_ACCOUNT = "telnyx-account-for-the-check"
TELNYX_KEY = "KEY-telnyx-for-the-check"
TELNYX_NUMBER = "+41215550200"
NOT_OURS = "+41215550177"
ELSEWHERE = "https://old-pbx.example.org/voice"
EVERY_PROBE = ["credentials", "number", "voice", "messaging", "webhook"]


def voice_url(name: str | None) -> str:
    """Our dial-in route, naming the carrier (or, None, naming none)."""
    return callback_url(PUBLIC_URL, urls.VOICE_INBOUND, **({"carrier": name} if name else {}))


@dataclass
class Sims:
    twilio: CarrierSimulator
    twilio_url: str
    telnyx: CarrierSimulator
    telnyx_url: str

    def accounts(self, **changes: dict[str, Any]) -> list[CarrierAccount]:
        """Twilio first, then Telnyx, as the simulators know them; `changes` by carrier name."""
        twilio = CarrierAccount(
            name="twilio", account_sid=TWILIO_SID, auth_token=SecretStr(TWILIO_TOKEN),
            api_url=self.twilio_url, number=TWILIO_NUMBER,
        )  # fmt: skip
        telnyx = CarrierAccount(
            name="telnyx", kind="telnyx", account_sid=TELNYX_ACCOUNT, auth_token=SecretStr(TELNYX_KEY),
            api_url=self.telnyx_url, number=TELNYX_NUMBER, application_id=APPLICATION_ID,
            public_key=DEV_TELNYX_PUBLIC_KEY,
        )  # fmt: skip
        return [account.model_copy(update=changes.get(account.name, {})) for account in (twilio, telnyx)]

    def settings(self, **changes: dict[str, Any]) -> Settings:
        return Settings(_env_file=None, public_url=PUBLIC_URL, carriers=self.accounts(**changes))


@contextlib.asynccontextmanager
async def simulators(
    tmp_path: Path, twilio_voice_url: str = voice_url("twilio"), telnyx_voice_url: str = voice_url("telnyx")
) -> AsyncIterator[Sims]:
    twilio = CarrierSimulator(
        TWILIO_SID, TWILIO_TOKEN, Scenario(), tmp_path / "twilio.jsonl",
        dial_in_number=TWILIO_NUMBER, voice_url=twilio_voice_url,
    )  # fmt: skip
    telnyx = CarrierSimulator(
        TELNYX_ACCOUNT, TELNYX_KEY, Scenario(), tmp_path / "telnyx.jsonl", dial_in_number=TELNYX_NUMBER,
        voice_url=telnyx_voice_url, dialect="telnyx", signing_key=DEV_TELNYX_SIGNING_KEY,
    )  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        found = []
        for simulator in (twilio, telnyx):
            runner = await serve(simulator.app(), "127.0.0.1", 0)
            stack.push_async_callback(runner.cleanup)
            found.append("http://{}:{}".format(*runner.addresses[0][:2]))
        yield Sims(twilio, found[0], telnyx, found[1])


@pytest.fixture
async def sims(tmp_path: Path) -> AsyncIterator[Sims]:
    async with simulators(tmp_path) as found:
        yield found


def by_name(checks: list[CarrierCheck]) -> dict[str, dict[str, tuple[bool, str]]]:
    """Each carrier's probes: what → (ok, detail)."""
    return {check.name: {p.what: (p.ok, p.detail) for p in check.probes} for check in checks}


def journal_kinds(path: Path) -> set[str]:
    return {json.loads(line)["kind"] for line in path.read_text().splitlines()} if path.exists() else set()


async def test_a_good_configuration_passes_every_probe_and_calls_or_sends_nothing(
    sims: Sims, tmp_path: Path
) -> None:
    checks = await check_carriers(sims.settings())

    assert [(c.name, c.kind, c.number, c.ok) for c in checks] == [
        ("twilio", "twilio", "+41*****0100", True),
        ("telnyx", "telnyx", "+41*****0200", True),
    ], by_name(checks)
    assert [[p.what for p in c.probes] for c in checks] == [EVERY_PROBE, EVERY_PROBE]
    telnyx = by_name(checks)["telnyx"]
    assert "a send is not tried" in telnyx["messaging"][1], "Telnyx's messaging probe says what it cannot"
    assert telnyx["webhook"][1] == f"calls to the number reach POST {voice_url('telnyx')}"
    assert not sims.twilio.calls and not sims.twilio.messages
    assert not sims.telnyx.calls and not sims.telnyx.messages
    kinds = journal_kinds(tmp_path / "twilio.jsonl") | journal_kinds(tmp_path / "telnyx.jsonl")
    assert not kinds & {"call", "sms", "hangup"}, kinds


async def test_a_wrong_token_or_api_key_fails_the_credentials_probe_with_the_fix_named(sims: Sims) -> None:
    wrong = {"auth_token": SecretStr("not-the-token")}
    checks = by_name(await check_carriers(sims.settings(twilio=wrong, telnyx=wrong)))

    twilio_ok, twilio_detail = checks["twilio"]["credentials"]
    assert not twilio_ok and "Twilio error 20003" in twilio_detail
    assert "check account_sid and auth_token of carrier twilio in RALLYCALL_CARRIERS" in twilio_detail
    telnyx_ok, telnyx_detail = checks["telnyx"]["credentials"]
    assert not telnyx_ok and "Telnyx error 10009" in telnyx_detail
    assert "check auth_token of carrier telnyx in RALLYCALL_CARRIERS (the API key)" in telnyx_detail
    assert list(checks["twilio"]) == list(checks["telnyx"]) == ["credentials"], "nothing else is probed"

    alone = Settings(
        _env_file=None, public_url=PUBLIC_URL, twilio_account_sid=TWILIO_SID, twilio_auth_token="wrong",
        twilio_api_url=sims.twilio_url, dial_in_number=TWILIO_NUMBER,
    )  # fmt: skip
    [single] = await check_carriers(alone)
    assert "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN" in single.probes[0].detail, (
        "without RALLYCALL_CARRIERS, the fix names the TWILIO_* variables"
    )

    other_app = by_name(await check_carriers(sims.settings(telnyx={"application_id": "9999"})))["telnyx"]
    assert other_app["credentials"] == (
        False,
        "API key accepted, but no TeXML application 9999: check application_id of carrier telnyx in "
        "RALLYCALL_CARRIERS (the rest not checked)",
    )


async def test_a_number_the_account_does_not_own_fails_the_number_probe(sims: Sims) -> None:
    elsewhere = {"number": NOT_OURS}
    checks = by_name(await check_carriers(sims.settings(twilio=elsewhere, telnyx=elsewhere)))

    for name in ("twilio", "telnyx"):
        ok, detail = checks[name]["number"]
        assert not ok and f"the account has no number +41*****0177: check number of carrier {name}" in detail
        assert NOT_OURS not in detail, "the number is masked"
        assert checks[name]["credentials"][0] and checks[name]["voice"][0], "the rest is still probed"
        assert "webhook" not in checks[name], "no number, no webhook to read"


async def test_a_voice_url_pointing_elsewhere_is_flagged_with_the_url_to_set(tmp_path: Path) -> None:
    async with simulators(tmp_path, twilio_voice_url=ELSEWHERE, telnyx_voice_url=ELSEWHERE) as sims:
        checks = by_name(await check_carriers(sims.settings()))
    for name in ("twilio", "telnyx"):
        assert checks[name]["webhook"] == (
            False,
            f"calls to the number go to {ELSEWHERE}: set the voice URL to POST {voice_url(name)}",
        )
        assert checks[name]["number"][0], "the number itself is fine"


async def test_a_voice_url_naming_no_carrier_reaches_the_first_carrier_only(tmp_path: Path) -> None:
    """A callback naming no carrier is checked with the first carrier's key: right for the first
    (as deploy/README.md says to set it), refused for any other."""
    async with simulators(
        tmp_path, twilio_voice_url=voice_url(None), telnyx_voice_url=voice_url(None)
    ) as sims:
        checks = by_name(await check_carriers(sims.settings()))
    assert checks["twilio"]["webhook"] == (True, f"calls to the number reach POST {voice_url(None)}")
    assert checks["telnyx"]["webhook"] == (
        False,
        f"calls to the number go to {voice_url(None)}: set the voice URL to POST {voice_url('telnyx')}",
    )


async def test_a_server_error_window_on_voice_fails_the_voice_probe_but_not_messaging(sims: Sims) -> None:
    for simulator in (sims.twilio, sims.telnyx):
        simulator.faults.open_windows(60, None, status=503, part="voice")
    checks = by_name(await check_carriers(sims.settings()))

    for name, error in (("twilio", "Twilio error 20503"), ("telnyx", "Telnyx error 10007")):
        ok, detail = checks[name]["voice"]
        assert not ok and error in detail and "the carrier's trouble, not a setting" in detail
        assert [what for what, (passed, _) in checks[name].items() if not passed] == ["voice"], checks[name]


async def test_a_carrier_that_never_answers_fails_in_its_time_and_the_other_is_still_told(sims: Sims) -> None:
    released = asyncio.Event()

    async def never(request: web.Request) -> web.Response:
        await released.wait()
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", never)
    silent = await serve(app, "127.0.0.1", 0)
    try:
        url = "http://{}:{}".format(*silent.addresses[0][:2])
        checks = await check_carriers(sims.settings(telnyx={"api_url": url}), seconds_each=0.5)
    finally:
        released.set()
        await silent.cleanup()
    assert by_name(checks)["telnyx"] == {
        "answer": (
            False,
            "no complete answer within 0.5 s: check api_url of carrier telnyx in RALLYCALL_CARRIERS and "
            "this host's network",
        )
    }
    assert checks[0].ok, "the first carrier is reported whatever the second does"


async def test_the_command_prints_each_carrier_then_one_line_and_exits_by_the_outcome(sims: Sims) -> None:
    accounts = [account.model_dump(mode="json") for account in sims.accounts()]
    for account, secret in zip(accounts, (TWILIO_TOKEN, TELNYX_KEY), strict=True):
        account["auth_token"] = secret  # dumped masked
    variables = {**os.environ, "RALLYCALL_CARRIERS": json.dumps(accounts), "RALLYCALL_PUBLIC_URL": PUBLIC_URL,
                 "RALLYCALL_ENVIRONMENT": "development"}  # fmt: skip

    code, out, err = await starter_in(variables, "carriers", "check")
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0] == "twilio (twilio, +41*****0100)" and lines[6] == "telnyx (telnyx, +41*****0200)"
    assert [line.split()[:2] for line in lines[1:6]] == [["✓", what] for what in EVERY_PROBE]
    assert lines[-1] == "2 carriers: twilio works; telnyx works"

    sims.telnyx.faults.open_windows(60, None, status=503, part="voice")
    code, out, err = await starter_in(variables, "carriers", "check", "--json")
    assert code == 1, out + err
    document = json.loads(out)
    assert [(c["name"], c["kind"], c["number"], c["ok"]) for c in document["carriers"]] == [
        ("twilio", "twilio", "+41*****0100", True),
        ("telnyx", "telnyx", "+41*****0200", False),
    ]
    telnyx_probes = document["carriers"][1]["probes"]
    assert all(set(probe) == {"what", "ok", "detail"} for probe in telnyx_probes)
    assert [(p["what"], p["ok"]) for p in telnyx_probes] == [
        ("credentials", True), ("number", True), ("voice", False), ("messaging", True), ("webhook", True)
    ]  # fmt: skip

    code, out, err = await starter_in(variables, "carriers", "check")
    assert code == 1 and out.splitlines()[-1] == "2 carriers: twilio works; telnyx: voice failed", out + err
    assert "✗ voice" in out


async def test_settings_that_do_not_parse_exit_2_before_any_probe() -> None:
    variables = {
        **os.environ,
        "RALLYCALL_CARRIERS": '[{"name": "Twilio!"}]',
        "RALLYCALL_ENVIRONMENT": "development",
    }
    code, out, err = await starter_in(variables, "carriers", "check")
    assert code == 2 and "RALLYCALL_CARRIERS" in err, out + err
