"""The console at any size: an information step to 450 people by SMS and email (three batches of
200, 200 and 50) on the dev server, a real worker, the console served in-process. The run page
shows one page of 100 of them at a time and filters them by state, its live stream follows the
page the browser is on, the API answers a page by offset, limit and state, and the CSV report
is streamed with every event of every person."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import pytest
from argon2 import PasswordHasher
from temporalio.testing import WorkflowEnvironment

from bench import population as pop
from bench import scale
from carrier.simulator import Scenario
from config import Settings
from console.app import build_app, serve
from console.auth import Users
from console.roster import Roster, RosterQuery
from domain.run_view import CallAttempt, PersonView, RunView, page_of
from launching import LaunchRequest, prepare
from remote import ConsoleApi
from stack.loopback import Harness, eventually, harness
from stack.ports import free_port
from workflows.procedure_run import ProcedureRun, RunInput

PEOPLE = 450
PASSWORD = "correct horse battery"
T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@dataclass
class Run:
    url: str
    run_id: str
    token: str
    old_run_id: str
    """A run as 0.1.0 launched it: its plan holds everyone, it starts its batches itself."""


OLD_PEOPLE = 250


async def launch_as_0_1_0(h: Harness, settings: Settings) -> str:
    """The launch of 0.1.0: the whole plan in the run's input, no batches started beforehand."""
    people = range(PEOPLE, PEOPLE + OLD_PEOPLE)
    fields = {"body": "22:00-23:00", "Contacts.S001": ",".join(pop.person_id(n) for n in people)}
    inform = scale.INFORMATION.procedure("inform")
    request = LaunchRequest(inform, scale.INFORMATION.schemes, fields, contacts_file=h.contacts_file)
    run_id = f"inform-as-0-1-0-{PEOPLE}"
    plan = prepare(request, settings, pin=None, run_id=run_id)
    await h.client.start_workflow(
        ProcedureRun.run,
        RunInput(plan=plan, calls=settings.call_queue()),
        id=run_id,
        task_queue=settings.task_queue,
    )
    h.launched.append(run_id)
    return run_id


@pytest.fixture(scope="module")
async def run(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    tmp = tmp_path_factory.mktemp("console-pages")
    contacts = pop.write_contacts(tmp / "contacts.yaml", pop.contacts(PEOPLE + OLD_PEOPLE, phones=False))
    async with harness(dev_env.client, tmp, contacts, Scenario()) as h, h.worker():
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        settings = h.settings.model_copy(update={"contacts_file": contacts, "console_url": url})
        users = Users(tmp / "users.json", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        users.add("lea", "launcher", PASSWORD)
        _, token = users.new_token("lea", "laptop")
        runner = await serve(build_app(dev_env.client, settings, users), "127.0.0.1", port)
        try:
            fields = {
                "body": "22:00-23:00",
                "Contacts.S001": ",".join(pop.person_id(n) for n in range(PEOPLE)),
            }
            launched = await h.launch_procedure("inform", fields, definitions=scale.INFORMATION)
            yield Run(url, launched.workflow_id, token, await launch_as_0_1_0(h, settings))
        finally:
            await runner.cleanup()


@pytest.fixture
async def http(run: Run) -> AsyncIterator[aiohttp.ClientSession]:
    """Signed in as lea, keeping the console's cookies."""
    async with aiohttp.ClientSession(run.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get("/sign-in") as page:
            found = re.search(r'name="csrf" value="([^"]+)"', await page.text())
        assert found
        form = {"csrf": found[1], "name": "lea", "password": PASSWORD}
        async with session.post("/sign-in", data=form) as signed:
            assert signed.status == 200
        yield session


def ids(n: range) -> list[str]:
    return [pop.person_id(i) for i in n]


def people_section(html: str) -> str:
    found = re.search(r'<section id="run-people"[^>]*>(.*?)</section>', html, re.S)
    assert found, html[:2000]
    return found[1]


def rows_of(section: str) -> list[str]:
    return re.findall(r'<tr id="person-[^"]+" class="person[^"]*" data-person="([^"]+)"', section)


async def people_on(http: aiohttp.ClientSession, path: str) -> tuple[list[str], str]:
    async with http.get(path) as page:
        assert page.status == 200, await page.text()
        section = people_section(await page.text())
    return rows_of(section), section


async def test_the_run_page_shows_a_page_of_100_and_the_stream_follows_it(
    run: Run, http: aiohttp.ClientSession
) -> None:
    page = f"/runs/{run.run_id}"
    shown, section = await eventually(lambda: people_on(http, page), lambda got: len(got[0]) == 100, 120)
    assert shown == ids(range(100)), "the first 100, in roster order"
    assert f'href="/runs/{run.run_id}?page=2" rel="next"' in section
    assert 'rel="prev"' not in section
    assert "Each of the 3 batches" in section, "the batches' figures, as counts by state are not cheap"

    shown, section = await people_on(http, f"{page}?page=3")
    assert shown == ids(range(200, 300)), "people 201-300: the second batch's last and the third's"
    assert f'href="/runs/{run.run_id}?page=2" rel="prev"' in section
    assert f'href="/runs/{run.run_id}?page=4" rel="next"' in section
    assert "People 201&ndash;300 of 450" in section
    shown, _ = await people_on(http, f"{page}?page=5")
    assert shown == ids(range(400, 450))

    async with http.get(f"{page}/live?page=3") as stream:
        while not (line := await stream.content.readline()).startswith(b"data: {"):
            pass
    sections = json.loads(line[len(b"data: ") :])["sections"]
    assert rows_of(sections["run-people"]) == ids(range(200, 300)), (
        "the stream sends the page the browser is on"
    )

    for bad, said in (
        ("?page=0", "page &#39;0&#39;: 1 or more"),
        ("?state=gone", "state &#39;gone&#39;: one of"),
        ("/live?page=x", "page &#39;x&#39;: a whole number"),
    ):
        async with http.get(page + bad) as refused:
            assert refused.status == 400 and said in await refused.text(), bad


async def test_the_roster_filters_by_state_once_delivered(run: Run, http: aiohttp.ClientSession) -> None:
    page = f"/runs/{run.run_id}?state=reached"
    shown, section = await eventually(
        lambda: people_on(http, page), lambda got: "of 450 reached" in got[1], 120, every=0.5
    )
    assert shown == ids(range(100)) and section.count('class="person state-reached"') == 100
    assert f'href="/runs/{run.run_id}?state=reached&amp;page=2" rel="next"' in section
    assert 'aria-current="page">reached' in section, "the choice made is marked"
    shown, _ = await people_on(http, f"{page}&page=5")
    assert shown == ids(range(400, 450))
    shown, section = await people_on(http, f"/runs/{run.run_id}?state=not-reached")
    assert shown == [] and "No one not reached" in section


async def test_the_api_answers_a_page_by_offset_limit_and_state(run: Run) -> None:
    api = ConsoleApi(run.url, run.token)
    await eventually(
        lambda: api.people(run.run_id, 0, 0, "reached"), lambda a: a["people_total"] == PEOPLE, 120
    )
    page = await api.people(run.run_id, offset=150, limit=100, state="reached")
    assert [p["id"] for p in page["people"]] == ids(range(150, 250)), "across the first two batches"
    assert (page["people_offset"], page["people_total"], page["workflow_id"]) == (150, PEOPLE, run.run_id)
    page = await api.people(run.run_id, offset=440, limit=1000)
    assert [p["id"] for p in page["people"]] == ids(range(440, 450))
    assert (await api.people(run.run_id, state="waiting"))["people_total"] == 0

    everyone = await api.status(run.run_id)
    assert [p["id"] for p in everyone["people"]] == ids(range(PEOPLE)), "without a page: everyone, in order"
    assert "people_total" not in everyone and len(everyone["batches"]) == 3

    headers = {"Authorization": f"Bearer {run.token}"}
    async with aiohttp.ClientSession(run.url, headers=headers) as http:
        for bad, said in (
            ("offset=-1", "offset '-1': 0 or more"),
            ("limit=1001", "limit '1001': at most 1000"),
            ("state=gone", "state 'gone': one of waiting, queued"),
            ("offset=ten", "offset 'ten': a whole number"),
        ):
            async with http.get(f"/api/runs/{run.run_id}?{bad}") as refused:
                answer = await refused.json()
            assert refused.status == 400 and answer["error"] == "bad_request", bad
            assert said in answer["message"], answer


async def test_the_csv_report_is_streamed_with_every_event_of_everyone(
    run: Run, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def table() -> list[dict[str, str]]:
        async with http.get(f"/runs/{run.run_id}/report.csv") as download:
            assert download.status == 200 and download.headers["Transfer-Encoding"] == "chunked", (
                "written as it is read, not built whole"
            )
            return list(csv.DictReader(io.StringIO(await download.text())))

    def sms_and_email_each(rows: list[dict[str, str]]) -> bool:
        return Counter(r["person_id"] for r in rows if r["event"] == "message") == dict.fromkeys(
            ids(range(PEOPLE)), 2
        )

    rows = await eventually(table, sms_and_email_each, 120, every=0.5)
    per_person = Counter(r["person_id"] for r in rows if r["person_id"])
    assert per_person == dict.fromkeys(ids(range(PEOPLE)), 2), "their SMS and email, nothing else"
    assert rows[0]["event"] == "launched"
    mediums = Counter(r["medium"] for r in rows if r["person_id"] == pop.person_id(449))
    assert mediums == {"SMS": 1, "email": 1}, "the third batch's last person too"

    monkeypatch.setattr("console.routes.report.LISTED", 400)
    async with http.get(f"/runs/{run.run_id}/report") as page:
        text = await page.text()
    assert "450 people: too many to list on a page" in text and "Person 1</th>" not in text
    async with http.get(f"/runs/{run.run_id}/report.json") as download:
        assert download.headers["Transfer-Encoding"] == "chunked"
        data = json.loads(await download.text())
    assert [p["id"] for p in data["people"]] == ids(range(PEOPLE)) and data["workflow_id"] == run.run_id


def test_a_roster_page_of_a_run_without_batches_counts_each_state_and_keeps_its_place() -> None:
    """Its people are all in its summary: a choice per state in it, counted, and a moderator's
    form brings the browser back to the page it came from."""
    called = PersonView(id="c", name="C", attempts=[CallAttempt(attempt_id="a", medium="voice_pro",
                        number="+41215550101", queued_at=T0, outcome="no-answer")])  # fmt: skip
    people = [PersonView(id=f"w{n}", name=f"W{n}") for n in range(150)] + [called]
    summary = RunView(workflow_id="r", state="running", procedure="p", title="t", started_at=T0,
                      dial_in_number="+41215550100", people=people)  # fmt: skip
    query = RosterQuery(state=None, page=2)
    roster = Roster.of(summary, query, page_of(people, query.people))
    assert [(c.label, c.count, c.current) for c in roster.choices] == [
        ("everyone", 151, True),
        ("not alerted yet", 150, False),
        ("not reached", 1, False),
    ], "states no one is in are left out"
    assert (roster.first, roster.last, roster.pages, roster.own_on_page) == (101, 151, 2, 51)
    assert (roster.previous, roster.next) == ("/runs/r", None)
    assert RosterQuery.kept("state=not-reached&page=2").suffix == "?state=not-reached&page=2"
    assert RosterQuery.kept("page=-4").suffix == "", "a form's own value is checked too"


async def test_a_run_launched_by_0_1_0_lists_each_person_once_with_their_batch_events(
    run: Run, http: aiohttp.ClientSession
) -> None:
    """Its own view holds everyone (empty rows for its batches' people): pages and the report
    merge the batches' rows into them, as 0.1.0 showed them, never twice."""
    old = ids(range(PEOPLE, PEOPLE + OLD_PEOPLE))
    api = ConsoleApi(run.url, run.token)
    await eventually(
        lambda: api.people(run.old_run_id, 0, 0, "reached"), lambda a: a["people_total"] == OLD_PEOPLE, 120
    )
    everyone = await api.people(run.old_run_id)
    assert [p["id"] for p in everyone["people"]] == old and everyone["people_total"] == OLD_PEOPLE
    async with http.get(f"/runs/{run.old_run_id}/report") as page:
        text = await page.text()
    assert page.status == 200
    listed = re.findall(r'<th scope="row">Person (\d+)</th>', text)
    assert sorted(map(int, listed)) == list(range(PEOPLE, PEOPLE + OLD_PEOPLE)), "each person once"
    texted = re.findall(r"<td>message</td><td>Person (\d+)</td><td>SMS</td>", text)
    assert sorted(map(int, texted)) == list(range(PEOPLE, PEOPLE + OLD_PEOPLE)), "each one's SMS, once"
