"""The console served in-process on a free port, against the loopback harness on the dev
server (simulated carrier answering by scenario, real worker, fast definitions on disk).

HTTP checks need no browser; the flows a crisis manager goes through run in headless Chromium
from Debian's package through Playwright (nothing downloads a browser) and are skipped, saying
why, only where no chromium is installed. With RALLYCALL_SCREENSHOTS=DIR the browser tests
also save the README's screenshots there (`RALLYCALL_SCREENSHOTS=docs make test`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from argon2 import PasswordHasher
from playwright.async_api import Browser, Page, async_playwright, expect
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from config import Settings
from console.app import build_app, serve
from console.auth import Users
from domain.events import EndRequest, RejoinRequest
from links import call_me_token
from stack.loopback import Harness
from stack.ports import free_port
from tests.support import CONTACTS, eventually, harness
from watch import read_view
from workflows import search_attributes as sa
from workflows.procedure_run import ProcedureRun

PASSWORD = "correct horse battery"
CHROMIUM = shutil.which("chromium") or next((p for p in ("/usr/bin/chromium",) if Path(p).exists()), None)
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
SCREENSHOTS = os.environ.get("RALLYCALL_SCREENSHOTS")
CHLOE_MOBILE = "+41795550103"
CHLOE_NUMBERS = {"+41215550103", "+41215550113", CHLOE_MOBILE}
SCHEMES = {
    "default": "CONFCALL",
    "schemes": [
        {"name": "CONFCALL", "ring_timeout": "1s",
         "media": [{"medium": "voice_pro"}, {"medium": "voice_home", "after": "2s"}]},
    ],
}  # fmt: skip
CONFERENCE_CALL = {
    "name": "conference-call",
    "title": "Conference call",
    "form": [
        {"name": "body", "kind": "text", "label": "Subject of the call (spoken first)", "required": False},
        {"name": "Contacts.S001", "kind": "contacts", "label": "Destinations"},
    ],
    "steps": [
        {"number": "001", "objective": "conference", "percent": 100, "contact_fields": ["Contacts.S001"],
         "message": "#{Body}", "scheme": "CONFCALL", "deadline": "4s",
         "post_objective": {"subject": "PIN", "body": "Dial #{ConferenceNumber}, PIN #{Pin}."}},
    ],
}  # fmt: skip
CALL_ME_DRILL = {
    "name": "call-me-drill",
    "title": "Call-me drill",
    "call_me_link": True,
    "form": [
        {"name": "body", "kind": "text", "label": "What happened"},
        {"name": "Contacts.S001", "kind": "contacts", "label": "Team"},
    ],
    "steps": [
        {"number": "001", "objective": "conference", "percent": 100, "contact_fields": ["Contacts.S001"],
         "message": "#{Body}", "scheme": "CONFCALL", "deadline": "4s",
         "post_objective": {"subject": "Join the call", "body": "PIN #{Pin}, or #{CallMeLink}",
                            "sms": "PIN #{Pin} or tap #{CallMeLink}"}},
    ],
}  # fmt: skip


@dataclass
class Site:
    url: str
    h: Harness
    settings: Settings

    async def run_id_from(self, page: Page) -> str:
        found = re.search(r"/runs/([^/?#]+)", page.url)
        assert found, page.url
        return found[1]


def write_definitions(folder: Path) -> Path:
    (folder / "procedures").mkdir(parents=True)
    (folder / "schemes.yaml").write_text(yaml.safe_dump(SCHEMES))
    for procedure in (CONFERENCE_CALL, CALL_ME_DRILL):
        (folder / "procedures" / f"{procedure['name']}.yaml").write_text(yaml.safe_dump(procedure))
    return folder


@contextlib.asynccontextmanager
async def console_site(
    client: Client, tmp: Path, contacts: dict[str, Any], accounts: dict[str, str]
) -> AsyncIterator[Site]:
    """A console served in-process on the loopback harness, with these contacts and accounts
    (name: role, all with PASSWORD)."""
    contacts_file = tmp / "contacts.yaml"
    contacts_file.write_text(yaml.safe_dump(contacts, allow_unicode=True), encoding="utf-8")
    async with harness(client, tmp, contacts_file) as h, h.worker():
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        settings = h.settings.model_copy(
            update={"definitions_dir": write_definitions(tmp / "definitions"), "contacts_file": contacts_file,
                    "console_url": url, "console_addr": f"127.0.0.1:{port}"}
        )  # fmt: skip
        users = Users(tmp / "users.json", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        for name, role in accounts.items():
            users.add(name, role, PASSWORD)
        runner = await serve(build_app(client, settings, users), "127.0.0.1", port)
        try:
            yield Site(url, h, settings)
        finally:
            await runner.cleanup()


@pytest.fixture(scope="module")
async def site(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    accounts = {"lea": "launcher", "vic": "viewer", "pam": "procedure-manager", "max": "administrator"}
    async with console_site(dev_env.client, tmp_path_factory.mktemp("console"), CONTACTS, accounts) as site:
        yield site


# --- HTTP: what the server refuses, whatever a page shows ---------------------------------------


def client(site: Site) -> aiohttp.ClientSession:
    """A browser-like client: it keeps the console's cookies (set by an IP address host)."""
    return aiohttp.ClientSession(site.url, cookie_jar=aiohttp.CookieJar(unsafe=True))


async def signed_in_session(site: Site, name: str) -> tuple[aiohttp.ClientSession, str]:
    """A client signed in as `name`, and its CSRF token."""
    http = client(site)
    token = await csrf_of(http, "/sign-in")
    async with http.post("/sign-in", data={"csrf": token, "name": name, "password": PASSWORD}) as signed:
        assert signed.status == 200 and signed.url.path == "/red-button", "signed in, sent to the red button"
    return http, await csrf_of(http, "/red-button")


async def csrf_of(http: aiohttp.ClientSession, path: str) -> str:
    async with http.get(path) as page:
        found = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert found, f"no CSRF token on {path}"
    return found[1]


async def test_pages_need_a_signed_in_account(site: Site) -> None:
    async with client(site) as http:
        async with http.get("/runs", allow_redirects=False) as page:
            assert page.status == 303
            assert (page.headers["Location"].split("?")[0], page.headers["Location"].split("=")[1]) == (
                "/sign-in",
                "/runs",
            )
        async with http.get("/static/console.js") as script:
            assert script.status == 200, "assets are served by the console itself"
        async with http.post("/runs/x/end", data={"csrf": await csrf_of(http, "/sign-in")}) as refused:
            assert refused.status == 403


async def test_wrong_password_is_refused(site: Site) -> None:
    async with client(site) as http:
        token = await csrf_of(http, "/sign-in")
        async with http.post("/sign-in", data={"csrf": token, "name": "lea", "password": "nope"}) as page:
            assert page.status == 401 and "Wrong name or password." in await page.text()
        async with http.post(
            "/sign-in", data={"csrf": token, "name": "nobody", "password": PASSWORD}
        ) as page:
            assert page.status == 401 and "Wrong name or password." in await page.text()
        async with http.get("/runs", allow_redirects=False) as page:
            assert page.status == 303, "still not signed in"


async def test_a_post_without_the_csrf_token_is_refused(site: Site) -> None:
    http, token = await signed_in_session(site, "lea")
    async with http:
        before = site.h.called_numbers()
        form = {"c:Contacts.S001": "alice", "key": "k1"}
        for path in ("/red-button", "/red-button/launch"):
            async with http.post(path, data=form) as refused:
                assert refused.status == 403 and "cannot be accepted" in await refused.text()
            async with http.post(path, data={**form, "csrf": "forged"}) as refused:
                assert refused.status == 403
        async with http.post("/sign-out", data={}) as refused:
            assert refused.status == 403
        async with http.post("/sign-in", data={"name": "lea", "password": PASSWORD}) as refused:
            assert refused.status == 403, "the sign-in form too"
        assert site.h.called_numbers() == before, "nothing launched"
        async with http.post("/red-button", data={**form, "csrf": token}) as review:
            text = await review.text()
            assert review.status == 200 and "Confirm: Conference call" in text
            reach = (
                "step 001: 1 person; 2 calls if nobody answers, the last at +0:02; "
                "PIN SMS en 1 part (GSM-7, 38 characters); deadline +0:04"
            )
            assert reach in text, "the confirmation says when the carrier's rates reach them"


async def test_a_viewer_cannot_launch_end_or_moderate(site: Site) -> None:
    http, token = await signed_in_session(site, "vic")
    async with http:
        async with http.get("/red-button") as page:
            text = await page.text()
            assert 'id="red-button"' not in text and "can follow runs but not launch them" in text
        for path in ("/red-button", "/red-button/launch", "/procedures/conference-call/launch",
                     "/runs/any/end", "/runs/any/moderate"):  # fmt: skip
            data = {
                "csrf": token,
                "c:Contacts.S001": "alice",
                "key": "k",
                "action": "mute",
                "person": "alice",
            }
            async with http.post(path, data=data) as refused:
                assert refused.status == 403, path
        async with http.get("/definitions") as page:
            assert page.status == 403, "definitions are for procedure managers and administrators"
    http, _ = await signed_in_session(site, "pam")
    async with http, http.get("/definitions") as page:
        text = await page.text()
        assert page.status == 200 and "call_me_link: true" in text and "All definitions are valid." in text


async def test_refusals_come_back_beside_their_fields(site: Site) -> None:
    http, token = await signed_in_session(site, "lea")
    async with http:
        form = {"csrf": token, "c:Contacts.S001": "alice", "n:Contacts.S001": "+41 12", "f:body": "fire"}
        async with http.post("/red-button", data=form) as page:
            text = await page.text()
        assert page.status == 422 and "Nothing was launched" in text
        problems = re.search(
            r'<ul class="field-problems" id="problems-Contacts.S001"[^>]*>(.*?)</ul>', text, re.S
        )
        assert problems and "destination &#39;+41 12&#39; is not a valid phone number" in problems[1]
        assert re.search(r'value="alice" data-name="Alice Martin"\s+checked', text), (
            "the form keeps its choices"
        )


async def test_a_launch_confirmed_twice_is_one_run_and_the_runs_list_finds_it(site: Site) -> None:
    http, token = await signed_in_session(site, "max")
    async with http:
        form = {"csrf": token, "c:Contacts.S001": "dan", "key": "once"}
        locations = []
        for _ in range(2):
            async with http.post("/red-button/launch", data=form, allow_redirects=False) as sent:
                locations.append(sent.headers["Location"])
        assert locations[0] == locations[1] and locations[0].startswith("/launched/conference-key-"), (
            "a reload or double click shows the same launch"
        )
        async with http.get(locations[0]) as page:
            text = await page.text()
        found = re.search(r'href="/runs/([^"]+)"', text)
        assert found and re.search(r'id="pin">\d{10}<', text)
        run_id = found[1]
        assert locations[0] == f"/launched/{run_id}"
        indexed = (await site.h.client.get_workflow_handle(run_id).describe()).typed_search_attributes
        assert (indexed.get(sa.LAUNCHED_BY), indexed.get(sa.CHANNEL)) == ("max", "web")

        async def listed(query: str) -> list[str]:
            async with http.get(f"/runs?{query}") as page:
                return re.findall(r'<a href="/runs/([^"/]+)">live page', await page.text())

        await eventually(lambda: listed("state=running&launched_by=max"), lambda ids: ids == [run_id])
        assert await listed("launched_by=vic") == []
        await site.h.client.get_workflow_handle(run_id).execute_update(ProcedureRun.end, EndRequest())
        await eventually(
            lambda: listed("state=ended&procedure=conference-call&launched_by=max"),
            lambda ids: ids == [run_id],
        )
        assert await listed("state=running&launched_by=max") == []
        async with http.get('/runs?launched_by=x"+OR+1') as refused:
            assert refused.status == 400 and "letters, digits" in await refused.text()


# --- the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if CHROMIUM is None:
        pytest.skip("no chromium installed (Debian: apt-get install chromium); browser tests skipped")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def new_page(browser: Browser, site: Site, **options: Any) -> Page:
    context = await browser.new_context(base_url=site.url, timezone_id="Europe/Zurich", **options)
    page = await context.new_page()
    page.set_default_timeout(10_000)
    return page


async def sign_in(page: Page, name: str, password: str = PASSWORD) -> None:
    await page.goto("/sign-in")
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


def screenshot_path(name: str) -> Path | None:
    return Path(SCREENSHOTS) / name if SCREENSHOTS else None


async def test_sign_in_in_the_browser_and_a_wrong_password(browser: Browser, site: Site) -> None:
    page = await new_page(browser, site)
    await sign_in(page, "lea", "not the password")
    await expect(page.locator("#sign-in-error")).to_have_text("Wrong name or password.")
    await sign_in(page, "lea")
    await expect(page).to_have_url(f"{site.url}/red-button")
    await page.get_by_role("button", name="Sign out", exact=True).click()
    await expect(page.get_by_role("status")).to_have_text("You are signed out.")
    await page.context.close()


async def test_red_button_live_roster_moderation_end_and_report(browser: Browser, site: Site) -> None:
    page = await new_page(browser, site, viewport={"width": 1280, "height": 900})
    await sign_in(page, "lea")

    await page.get_by_label("Find people by name").fill("bru")
    await page.keyboard.press("Enter")
    await page.get_by_label("Find people by name").fill("alice")
    await page.keyboard.press("Enter")
    await page.get_by_label("Find people by name").fill("chlo")
    await page.keyboard.press("Enter")
    await expect(page.locator("[data-chosen]")).to_have_text(
        "Chosen (3): Alice Martin, Bruno Keller, Chloé Rochat"
    )
    await page.get_by_label("Welcome message").fill("Flood in hall B")
    if path := screenshot_path("console-red-button.png"):
        await page.screenshot(path=path, full_page=True)
    await page.get_by_role("button", name="Call them now").click()

    await expect(page.get_by_role("heading", name="Confirm: Conference call")).to_be_visible()
    await expect(page.locator(".people-list li")).to_have_text(
        ["Alice Martin", "Bruno Keller", "Chloé Rochat"]
    )
    await page.get_by_role("button", name="Launch now").click()
    pin = await page.locator("#pin").text_content()
    assert pin and re.fullmatch(r"\d{10}", pin), "the PIN, shown large"
    await expect(page.locator("#dial-in")).to_have_text("+41 21 555 01 00")

    await page.get_by_role("link", name="Follow it live").click()
    run_id = await site.run_id_from(page)
    await page.evaluate("window.sameDocument = true")
    alice, bruno, chloe = (page.locator(f"#person-{p}") for p in ("alice", "bruno", "chloe"))
    await expect(alice.locator(".state")).to_have_text("in the bridge")
    await expect(bruno.locator(".attempts").first).to_contain_text("work phone: no answer")
    await expect(bruno.locator(".state")).to_have_text("in the bridge")
    await expect(bruno.locator(".attempts").first).to_contain_text("home phone: answered")
    await expect(chloe.locator(".attempts").first).to_contain_text("home phone: answering machine")
    await expect(page.locator("#in-bridge")).to_have_text("2")
    await expect(page.locator("[data-timezone]")).to_have_text("Europe/Zurich")
    assert not (await page.locator("#run-status time").first.text_content() or "UTC").endswith("UTC")

    await alice.get_by_role("button", name="Mute Alice Martin").click()
    await expect(page.locator(".flash")).to_have_text("Done: Alice Martin muted.")
    await expect(alice.locator(".badge", has_text="muted")).to_be_visible()
    room = site.h.simulator.rooms[run_id]
    alice_work = next(e["sid"] for e in site.h.carrier_entries("call") if e["to"] == "+41215550101")
    assert room.participants[alice_work].muted, "muted at the carrier"
    await expect(page.locator("#run-moderation")).to_contain_text("mute Alice Martin, by lea (web)")
    await bruno.get_by_role("button", name="Remove Bruno Keller").click()
    await expect(page.get_by_role("heading", name="Remove Bruno Keller from the conference?")).to_be_visible()
    await page.get_by_role("button", name="Remove Bruno Keller now").click()
    await expect(page.locator(".flash")).to_have_text("Done: Bruno Keller removed.")
    await expect(bruno.locator(".state")).to_have_text("left the bridge")
    await expect(bruno.get_by_role("button", name="Call again now Bruno Keller")).to_be_visible()
    await expect(page.locator("#in-bridge")).to_have_text("1")

    await page.evaluate("window.sameDocument = true")
    await expect(page.locator("#run-steps")).to_contain_text("not reached (1/3)", timeout=10_000)
    await expect(chloe.locator("td[data-label='Messages sent']")).to_contain_text("SMS")
    joined = await site.h.client.get_workflow_handle(run_id).execute_update(
        ProcedureRun.rejoin, RejoinRequest(pin=pin, from_number=CHLOE_MOBILE)
    )
    assert joined.accepted
    await expect(page.locator("#run-pins")).to_contain_text(f"{CHLOE_MOBILE}: PIN right, Chloé Rochat let in")
    await expect(chloe.locator(".state")).to_have_text("in the bridge")
    await expect(chloe.locator(".late")).to_have_text("too late for step 001: not counted")
    assert await page.evaluate("window.sameDocument === true"), "all of it without a reload"
    if path := screenshot_path("console-live-run.png"):
        await page.screenshot(path=path, full_page=True)
        phone = await new_page(browser, site, viewport={"width": 390, "height": 844}, is_mobile=True,
                               has_touch=True, device_scale_factor=2,
                               storage_state=await page.context.storage_state())  # fmt: skip
        await phone.goto(f"/runs/{run_id}")
        await expect(phone.locator("#person-chloe .state")).to_have_text("in the bridge")
        await phone.screenshot(path=screenshot_path("console-live-run-phone.png"), full_page=True)
        await phone.context.close()

    await page.get_by_role("link", name="End the conference").click()
    await expect(page.get_by_role("heading", name="End the conference?")).to_be_visible()
    await page.get_by_label("Reason").fill("drill over")
    await page.get_by_role("button", name="End the conference now").click()
    await expect(page.locator(".flash")).to_have_text("Ended.")
    await expect(page.locator(".status-line .badge")).to_have_text("ENDED")
    await expect(page.locator("#run-status")).to_contain_text("by lea: drill over")
    await expect(page.locator(".controls button")).to_have_count(0)

    await page.get_by_role("link", name="Report").click()
    await expect(page.get_by_role("heading", name="Report: Conference call")).to_be_visible()
    if path := screenshot_path("console-report.png"):
        await page.screenshot(path=path, full_page=True)
    async with page.expect_download() as csv_download:
        await page.get_by_role("link", name="Download CSV").click()
    table = list(csv.DictReader(io.StringIO(Path(await (await csv_download.value).path()).read_text())))
    events = [(r["event"], r["person"], r["medium"], r["address"], r["outcome"], r["by"]) for r in table]
    assert events[0] == ("launched", "", "", "", "", "lea") and table[0]["detail"] == "channel web"
    assert ("call", "Bruno Keller", "work phone", "+41215550102", "no-answer", "") in events
    assert ("call", "Bruno Keller", "home phone", "+41215550112", "answered", "") in events
    assert ("call", "Chloé Rochat", "home phone", "+41215550113", "machine", "") in events
    assert ("message", "Chloé Rochat", "SMS", CHLOE_MOBILE, "sent", "") in events
    assert ("joined", "Alice Martin", "", "", "", "") in events
    assert ("moderation", "Alice Martin", "", "", "mute", "lea") in events
    assert ("moderation", "Bruno Keller", "", "", "remove", "lea") in events
    assert ("pin", "Chloé Rochat", "", CHLOE_MOBILE, "accepted", "") in events
    assert ("too late", "Chloé Rochat", "", "", "", "") in events
    ended = next(r for r in table if r["event"] == "ended")
    assert (ended["by"], ended["detail"]) == ("lea", "drill over")
    async with page.expect_download() as json_download:
        await page.get_by_role("link", name="Download JSON").click()
    data = json.loads(Path(await (await json_download.value).path()).read_text())
    assert (data["launched_by"], data["channel"], data["ended_by"], data["state"]) == (
        "lea",
        "web",
        "lea",
        "ended",
    )
    assert data["welcome"] == "Flood in hall B"
    assert [(m["kind"], m["person_id"], m["by"], m["channel"]) for m in data["moderation"]] == [
        ("mute", "alice", "lea", "web"), ("remove", "bruno", "lea", "web")
    ]  # fmt: skip
    await page.context.close()


async def test_procedure_form_and_the_call_me_link_calling_only_its_owner(
    browser: Browser, site: Site
) -> None:
    page = await new_page(browser, site, viewport={"width": 1280, "height": 900})
    await sign_in(page, "lea")
    await page.goto("/procedures")
    await page.get_by_role("link", name="Call-me drill").click()
    await page.wait_for_load_state()
    await expect(page.locator(".steps-table tbody tr")).to_have_count(1)
    await expect(page.locator(".steps-table")).to_contain_text("100 % in the bridge (conference)")
    await page.get_by_label("What happened").fill("Server room fire")
    await page.get_by_role("button", name="Review and launch").click()
    inline = page.locator("[data-inline]").first
    await expect(inline).to_have_text("Choose at least one person, or type a number.")
    await page.get_by_label("Chloé Rochat").check()
    await page.get_by_label("Dan Home-Only").check()
    await page.get_by_role("button", name="Review and launch").click()
    await page.get_by_role("button", name="Launch now").click()
    await page.get_by_role("link", name="Follow it live").click()
    run_id = await site.run_id_from(page)

    def chloes_links() -> list[str]:
        return [
            e["body"]
            for e in site.h.carrier_entries("sms")
            if e["to"] == CHLOE_MOBILE and "/call-me/" in e["body"]
        ]

    texts = await eventually(chloes_links, bool)
    link = re.search(r"http://\S+/call-me/\S+", texts[0])
    assert link, texts
    stranger = await new_page(browser, site, viewport={"width": 390, "height": 844})
    await stranger.goto(link[0].replace(site.url, ""))
    await expect(stranger.get_by_role("heading", name="Call me into the conference")).to_be_visible()
    await expect(stranger.locator("main")).to_contain_text("Hello Chloé Rochat")
    calls_before = len(site.h.carrier_entries("call"))
    await stranger.get_by_role("button", name="Call me now").click()
    await expect(stranger.locator("#call-me-status")).to_contain_text("We are calling you now")
    new_calls = await eventually(lambda: site.h.carrier_entries("call")[calls_before:], bool)
    assert {call["to"] for call in new_calls} <= CHLOE_NUMBERS, "only her own phones"
    view = await read_view(site.h.client, run_id)
    assert [(m.kind, m.person_id, m.by) for m in view.moderation] == [("call_again", "chloe", "call-me link")]

    token = link[0].rsplit("/", 1)[1]
    dans_payload = call_me_token(site.settings.console_secret, run_id, "dan").split(".")[0]
    payload, signature = token.split(".")
    altered = f"{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"  # the last character
    # of a base64 signature carries unused bits: alter the first one
    for forged in (
        altered,
        call_me_token("not our secret", run_id, "dan"),
        f"{dans_payload}.{token.split('.')[1]}",
    ):
        response = await stranger.goto(f"/call-me/{forged}")
        assert response and response.status == 404, forged
        await expect(stranger.locator("main")).to_contain_text("This link is not valid")
    assert len(site.h.carrier_entries("call")) == calls_before + len(new_calls), "forged links call no one"

    await site.h.client.get_workflow_handle(run_id).execute_update(ProcedureRun.end, EndRequest())
    response = await stranger.goto(link[0].replace(site.url, ""))
    assert response and response.status == 410
    await expect(stranger.locator("main")).to_contain_text("This conference call has ended.")
    await stranger.context.close()
    await page.context.close()
