"""The console holds up: sign-in attempts limited per account and per address, sessions revoked
everywhere, call-me links that ring their person a few times only, and a removal that asks
first. Two console replicas share one users file and one Temporal (as `make prod-like` runs
them), so every limit is shown to hold across replicas, over HTTP without a browser."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import make_mocked_request
from argon2 import PasswordHasher
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from yarl import URL

from console.__main__ import manage_users, parser
from console.app import build_app, serve
from console.auth import Users
from console.lockout import SignInFailures, client_address
from console.sessions import COOKIE
from domain import call_me
from domain.events import EndRequest, ModeratorAction
from domain.run_view import RunView
from links import call_me_token
from procedures.definitions import Definitions, load_definitions
from stack.loopback import Harness
from stack.ports import free_port
from tests.support import CONTACTS, eventually, harness
from tests.test_console_web import CHLOE_NUMBERS, PASSWORD, write_definitions
from watch import read_view
from workflows.procedure_run import ProcedureRun

ROOT = Path(__file__).resolve().parent.parent
PER_ACCOUNT, PER_ADDRESS = 3, 5
FAST_HASHES = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@dataclass
class Replicas:
    urls: list[str]
    h: Harness
    users: Users
    definitions: Definitions


@pytest.fixture(scope="module")
async def replicas(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Replicas]:
    """Two consoles on one users file, behind one trusted proxy (X-Forwarded-For says who)."""
    tmp = tmp_path_factory.mktemp("console-security")
    contacts = tmp / "contacts.yaml"
    contacts.write_text(yaml.safe_dump(CONTACTS, allow_unicode=True), encoding="utf-8")
    users_file = tmp / "users.json"
    accounts = Users(users_file, FAST_HASHES)
    for name, role in (("lea", "launcher"), ("kim", "launcher"), ("ivy", "viewer"), ("joe", "viewer")):
        accounts.add(name, role, PASSWORD)
    async with harness(dev_env.client, tmp, contacts) as h, h.worker():
        ports = [free_port(), free_port()]
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        definitions = write_definitions(tmp / "definitions")
        settings = h.settings.model_copy(
            update={"definitions_dir": definitions, "contacts_file": contacts, "console_url": urls[0],
                    "console_proxies": 1, "sign_in_failures_per_account": PER_ACCOUNT,
                    "sign_in_failures_per_address": PER_ADDRESS}
        )  # fmt: skip
        runners = [  # each replica reads the users file on its own
            await serve(build_app(dev_env.client, settings, Users(users_file, FAST_HASHES)), "127.0.0.1", p)
            for p in ports
        ]
        try:
            yield Replicas(urls, h, accounts, load_definitions(definitions))
        finally:
            for runner in runners:
                await runner.cleanup()


def browser() -> aiohttp.ClientSession:
    """One browser: its session cookie goes to both replicas (same host), as behind a balancer."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def csrf_of(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as page:
        found = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert found, f"no CSRF token on {url}"
    return found[1]


async def sign_in(
    http: aiohttp.ClientSession, url: str, name: str, password: str, address: str
) -> aiohttp.ClientResponse:
    """POST the sign-in form from `address` (as the trusted proxy reports it); not followed."""
    form = {"csrf": await csrf_of(http, f"{url}/sign-in"), "name": name, "password": password}
    async with http.post(f"{url}/sign-in", data=form, headers={"X-Forwarded-For": address},
                         allow_redirects=False) as answer:  # fmt: skip
        await answer.read()
        return answer


async def signed_in(http: aiohttp.ClientSession, url: str) -> bool:
    async with http.get(f"{url}/runs", allow_redirects=False) as page:
        return page.status == 200


# --- sign-in limits ------------------------------------------------------------------------------


def test_failures_count_per_account_and_per_address_until_the_window_has_passed(tmp_path: Path) -> None:
    now = [1_000_000.0]
    one, other = (SignInFailures(tmp_path / "users.json", clock=lambda: now[0]) for _ in range(2))

    def attempt(failures: SignInFailures, name: str, address: str) -> str:
        lockout = failures.attempt(name, address, PER_ACCOUNT, PER_ADDRESS)
        return f"{lockout.by} {lockout.retry_after}" if lockout else "counted"

    for step in range(PER_ACCOUNT):
        assert attempt(one if step % 2 else other, "kim", f"192.0.2.{step}") == "counted"
        now[0] += 60
    assert attempt(other, "kim", "192.0.2.99") == "account 720", "until the oldest leaves the 15 min"
    now[0] += 719
    assert attempt(one, "kim", "192.0.2.99") == "account 1"
    now[0] += 1
    assert attempt(one, "kim", "192.0.2.99") == "counted", "a lockout ends by itself"

    for step in range(PER_ADDRESS):
        assert attempt(one, f"guess{step}", "2001:db8:1:2::/64") == "counted"
    assert attempt(other, "ivy", "2001:db8:1:2::/64") == "address 900", "whatever the name"
    assert attempt(other, "ivy", "2001:db8:1:3::/64") == "counted"

    for address in ("198.51.100.1", "198.51.100.2"):
        assert attempt(one, "joe", address) == "counted"
    one.succeeded("joe", "198.51.100.2")
    assert [attempt(one, "joe", "198.51.100.3") for _ in range(3)][1:] == ["counted", "account 900"], (
        "a right password forgave joe's failures from its own address only"
    )
    assert other.unlock("joe") == 3
    assert attempt(one, "joe", "198.51.100.3") == "counted"


def test_x_forwarded_for_is_trusted_only_as_far_as_the_setting_says() -> None:
    peer = mock.Mock()
    peer.get_extra_info.return_value = ("10.0.0.9", 51234)
    forged_then_proxy = "203.0.113.66, 192.0.2.7"
    request = make_mocked_request("POST", "/sign-in", headers={"X-Forwarded-For": forged_then_proxy},
                                  transport=peer)  # fmt: skip
    assert client_address(request, 0) == "10.0.0.9", "by default the header is ignored"
    assert client_address(request, 1) == "192.0.2.7", "what our one proxy saw, not what the client wrote"
    assert client_address(request, 2) == "203.0.113.66"
    assert client_address(request, 3) == "10.0.0.9", "fewer hops than proxies: it did not come through them"

    def from_peer(address: str) -> str:
        peer.get_extra_info.return_value = (address, 51234)
        return client_address(make_mocked_request("POST", "/sign-in", transport=peer), 0)

    assert from_peer("2001:db8:1:2::1") == from_peer("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64", (
        "an IPv6 client holds a whole /64"
    )
    assert from_peer("::ffff:192.0.2.7") == "192.0.2.7"


async def test_an_account_locked_on_one_replica_is_locked_on_the_other(replicas: Replicas) -> None:
    first, second = replicas.urls
    async with browser() as http:
        for url in (first, second, first):
            answer = await sign_in(http, url, "kim", "not the password", "203.0.113.1")
            assert answer.status == 401
        answer = await sign_in(http, second, "kim", PASSWORD, "203.0.113.2")
        assert answer.status == 429, "the right password, during the lockout, from elsewhere"
        assert 0 < int(answer.headers["Retry-After"]) <= 15 * 60
        assert "Too many failed sign-ins for this account: try again in 15 min" in await answer.text()
        assert not await signed_in(http, first)
        answer = await sign_in(http, first, "lea", PASSWORD, "203.0.113.2")
        assert answer.status == 303 and await signed_in(http, second), "another account, same address"

    unlock = parser().parse_args(["users", "unlock", "kim"])
    assert manage_users(replicas.users, unlock) == 0
    async with browser() as http:
        assert (await sign_in(http, second, "kim", PASSWORD, "203.0.113.1")).status == 303


async def test_an_address_is_locked_and_a_success_elsewhere_forgives_it_nothing(replicas: Replicas) -> None:
    first, second = replicas.urls
    async with browser() as http:
        for n in range(PER_ADDRESS):
            forged = f"10.9.9.{n}, 198.51.100.7"  # whatever the client wrote, then our proxy's entry
            answer = await sign_in(http, replicas.urls[n % 2], f"guess{n}", "wrong", forged)
            assert answer.status == 401
        answer = await sign_in(http, first, "ivy", PASSWORD, "198.51.100.7")
        assert answer.status == 429 and "from your address" in await answer.text()
        assert int(answer.headers["Retry-After"]) > 0
        assert (await sign_in(http, second, "ivy", PASSWORD, "198.51.100.8")).status == 303
    async with browser() as http:
        assert (await sign_in(http, first, "ivy", PASSWORD, "198.51.100.7")).status == 429

        assert (await sign_in(http, first, "joe", "wrong", "198.51.100.10")).status == 401  # someone else
        assert (await sign_in(http, second, "joe", "typo", "198.51.100.9")).status == 401
        assert (await sign_in(http, second, "joe", PASSWORD, "198.51.100.9")).status == 303
    async with browser() as http:
        for _ in range(PER_ACCOUNT - 1):
            assert (await sign_in(http, first, "joe", "wrong", "198.51.100.10")).status == 401
        answer = await sign_in(http, second, "joe", PASSWORD, "198.51.100.9")
        assert answer.status == 429, "joe's success did not reset the other address's failures"


# --- sessions ------------------------------------------------------------------------------------


async def test_sign_out_everywhere_and_a_revoked_account_end_every_session_on_every_replica(
    replicas: Replicas,
) -> None:
    first, second = replicas.urls
    laptop, phone = browser(), browser()
    async with laptop, phone:
        assert (await sign_in(laptop, first, "lea", PASSWORD, "192.0.2.10")).status == 303
        assert (await sign_in(phone, second, "lea", PASSWORD, "192.0.2.11")).status == 303
        assert await signed_in(laptop, second), "a session is good on either replica"
        laptop_token = await csrf_of(laptop, f"{first}/runs")
        copied = laptop.cookie_jar.filter_cookies(URL(first))[COOKIE].value
        async with phone.get(f"{second}/runs") as page:
            assert "Sign out everywhere" in await page.text()
        token = await csrf_of(phone, f"{second}/runs")
        async with phone.post(f"{second}/sign-out-everywhere", data={"csrf": token}) as page:
            assert page.url.path == "/sign-in"
            assert "You are signed out everywhere" in await page.text()
        async with aiohttp.ClientSession(cookies={COOKIE: copied}) as thief, thief.post(
            f"{second}/runs/x/end", data={"csrf": laptop_token}
        ) as refused:
            assert refused.status == 403 and "sign in first" in await refused.text(), "a copied cookie too"
        async with laptop.get(f"{first}/runs") as page:
            assert page.url.path == "/sign-in"
            assert "You were signed out everywhere: please sign in again." in await page.text()

        assert (await sign_in(laptop, first, "lea", PASSWORD, "192.0.2.10")).status == 303
        _, token = replicas.users.new_token("lea", "lost laptop")
        env = {**os.environ, "RALLYCALL_USERS_FILE": str(replicas.users.path)}
        revoke = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "console", "users", "revoke", "lea", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        said, _ = await revoke.communicate()
        assert revoke.returncode == 0
        assert said.decode() == (
            "signed lea out everywhere: every session of the account has ended, "
            "and its 1 personal token(s) are revoked\n"
        )
        assert replicas.users.by_token(token) is None, "a lost laptop's token goes with the sessions"
        assert not await signed_in(laptop, second)
        assert (await sign_in(laptop, second, "lea", PASSWORD, "192.0.2.10")).status == 303
        assert await signed_in(laptop, first), "signing in again works at once"
    assert manage_users(replicas.users, parser().parse_args(["users", "revoke", "nobody"])) == 2


# --- call-me links -------------------------------------------------------------------------------


async def test_a_call_me_link_rings_its_person_three_times_whichever_replica_opens_it(
    replicas: Replicas,
) -> None:
    h = replicas.h
    launched = await h.launch_procedure("call-me-drill", {"body": "drill", "Contacts.S001": "chloe"},
                                        definitions=replicas.definitions)  # fmt: skip
    run_id = launched.workflow_id
    link = f"/call-me/{call_me_token(h.settings.console_secret, run_id, 'chloe')}"

    async def chloe_called(times: int) -> None:
        """Until her `times`-th call has been placed and has ended."""

        def done(view: RunView) -> bool:
            chloe = view.person("chloe")
            return len(chloe.attempts) >= times and chloe.state not in ("calling", "queued")

        await eventually(lambda: read_view(h.client, run_id), done)

    def calls_to_chloe() -> int:
        return sum(entry["to"] in CHLOE_NUMBERS for entry in h.carrier_entries("call"))

    await chloe_called(2)  # her work and home phones, by the scheme
    before = calls_to_chloe()
    async with browser() as stranger:
        for n, url in enumerate((replicas.urls[0], replicas.urls[1], replicas.urls[0]), start=3):
            token = await csrf_of(stranger, f"{url}{link}")
            async with stranger.post(f"{url}{link}", data={"csrf": token}) as page:
                assert page.status == 200 and "We are calling you now" in await page.text()
            await chloe_called(n)
        assert calls_to_chloe() == before + call_me.CALLS_PER_PERSON

        async with stranger.get(f"{replicas.urls[1]}{link}") as page:
            text = await page.text()
            assert page.status == 200 and "this link has called you 3 times" in text
            assert 'id="call-me"' not in text, "no button to press"
        async with stranger.post(f"{replicas.urls[1]}{link}", data={"csrf": token}) as page:
            assert page.status == 409 and "this link has called you 3 times" in await page.text()
        handle = h.client.get_workflow_handle_for(ProcedureRun.run, run_id)
        linked = ModeratorAction(kind="call_again", person_id="chloe", by=call_me.LINK)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(ProcedureRun.moderate, linked)
        assert getattr(refused.value.cause, "message", "") == call_me.SPENT, "the run counts, not a replica"
        await asyncio.sleep(0.5)
        assert calls_to_chloe() == before + call_me.CALLS_PER_PERSON

        moderator = ModeratorAction(kind="call_again", person_id="chloe", by="lea")
        assert await handle.execute_update(ProcedureRun.moderate, moderator) == "calling Chloé Rochat again"
        await chloe_called(6)

        await handle.execute_update(ProcedureRun.end, EndRequest())
        async with stranger.post(f"{replicas.urls[0]}{link}", data={"csrf": token}) as page:
            assert page.status == 410 and "This conference call has ended." in await page.text()


# --- remove asks first ---------------------------------------------------------------------------


async def test_remove_asks_first_without_javascript_and_keeps_the_csrf_check(replicas: Replicas) -> None:
    h = replicas.h
    first, second = replicas.urls
    run = await h.launch("alice", definitions=replicas.definitions)
    await eventually(lambda: read_view(h.client, run.workflow_id), lambda v: v.person("alice").in_conference)
    async with browser() as http:
        assert (await sign_in(http, first, "kim", PASSWORD, "192.0.2.20")).status == 303
        token = await csrf_of(http, f"{first}/runs/{run.workflow_id}")
        moderate = f"{first}/runs/{run.workflow_id}/moderate"
        async with http.post(moderate, data={"csrf": token, "action": "remove", "person": "alice"}) as page:
            text = await page.text()
        assert page.status == 200 and "Remove Alice Martin from the conference?" in text
        assert 'name="confirm" value="yes"' in text and f'name="csrf" value="{token}"' in text
        assert (await read_view(h.client, run.workflow_id)).person("alice").in_conference, "asked, not done"

        confirmed = {"action": "remove", "person": "alice", "confirm": "yes"}
        async with http.post(moderate, data=confirmed) as refused:
            assert refused.status == 403, "the confirmation carries the CSRF token too"
        async with http.post(f"{second}/runs/{run.workflow_id}/moderate", data={"csrf": token, **confirmed},
                             allow_redirects=False) as done:  # fmt: skip
            assert (done.status, done.headers["Location"]) == (303, f"/runs/{run.workflow_id}#person-alice")
        async with http.get(f"{first}/runs/{run.workflow_id}") as page:
            assert "Done: Alice Martin removed." in await page.text()
        view = await read_view(h.client, run.workflow_id)
        assert not view.person("alice").in_conference
        assert [(m.kind, m.person_id, m.by) for m in view.moderation] == [("remove", "alice", "kim")]
        await h.handle(run).execute_update(ProcedureRun.end, EndRequest())
