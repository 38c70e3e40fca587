"""The console in each person's language: a call-me page in the language of its person (else in
the browser's, for a link that names no one), the launcher's choice of the language of their
text, and each person's language on the run page and in the CSV report. The console is served
in-process against the loopback harness on the dev server, as in `test_console_web`, with
contacts who have a language."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from console.pages import preferred_tags
from domain.events import EndRequest
from domain.run_view import RunView
from launching import frozen_plan
from links import call_me_token
from procedures.definitions import load_definitions
from tests.support import CONTACTS, eventually
from tests.test_console_web import Site, client, console_site, signed_in_session
from watch import read_view
from workflows.procedure_run import ProcedureRun

LANGUAGES = {"alice": "fr-CH", "bruno": "de"}
"""Alice is served in French (her Swiss tag's language), Bruno in German, the others in the
run's language (English: the procedures name none, the installation's is `en`)."""


@pytest.fixture(scope="module")
async def site(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    people = [
        {**c, "language": LANGUAGES[c["id"]]} if c["id"] in LANGUAGES else c for c in CONTACTS["contacts"]
    ]
    tmp = tmp_path_factory.mktemp("console-languages")
    async with console_site(dev_env.client, tmp, {"contacts": people}, {"lea": "launcher"}) as site:
        yield site


def html_lang(page: str) -> str:
    found = re.search(r'<html lang="([^"]*)">', page)
    assert found, page[:300]
    return found[1]


async def drill(site: Site, *people: str) -> str:
    """A call-me drill for these people, launched as the CLI does; its run ID."""
    fields = {"body": "Server room fire", "Contacts.S001": ",".join(people)}
    launched = await site.h.launch_procedure(
        "call-me-drill", fields, definitions=load_definitions(site.settings.definitions_dir)
    )
    return launched.workflow_id


# --- the call-me page -----------------------------------------------------------------------------


async def test_the_call_me_page_of_a_french_speaker_is_in_french(site: Site) -> None:
    run_id = await drill(site, "alice", "chloe")
    view = await eventually(
        lambda: read_view(site.h.client, run_id), lambda v: v.person("alice").in_conference
    )
    assert (view.person("alice").language, view.person("chloe").language) == ("fr", "en")
    link = f"/call-me/{call_me_token(site.settings.console_secret, run_id, 'alice')}"
    async with client(site) as http:
        async with http.get(link, headers={"Accept-Language": "de"}) as page:
            text = await page.text()
        assert page.status == 200 and html_lang(text) == "fr", "hers, not the browser's"
        assert "<h1>Recevoir un appel pour rejoindre la conférence</h1>" in text
        assert "Vous êtes déjà dans la conférence, Alice Martin." in text
        assert "Aller au contenu" in text and "Les heures sont indiquées dans votre fuseau horaire" in text
        assert "Call me" not in text and "Skip to the content" not in text

        chloes = f"/call-me/{call_me_token(site.settings.console_secret, run_id, 'chloe')}"
        async with http.get(chloes, headers={"Accept-Language": "fr"}) as page:
            text = await page.text()
        assert page.status == 200 and html_lang(text) == "en", "Chloé has no language: the run's"
        assert "<h1>Call me into the conference</h1>" in text and 'id="call-me"' in text
        assert "Hello Chloé Rochat. Press the button" in text

        await site.h.client.get_workflow_handle(run_id).execute_update(ProcedureRun.end, EndRequest())
        async with http.get(link) as page:
            text = await page.text()
        assert page.status == 410 and html_lang(text) == "fr"
        assert "Cette conférence téléphonique est terminée." in text, "the run's end, in her language"


async def test_a_link_that_names_no_one_answers_in_the_browsers_language(site: Site) -> None:
    async with client(site) as http:
        async with http.get("/call-me/not.valid", headers={"Accept-Language": "de-CH,de;q=0.9"}) as page:
            text = await page.text()
        assert page.status == 404 and html_lang(text) == "de"
        assert "<h1>Dieser Link kann nicht verwendet werden</h1>" in text
        assert "Dieser Link ist ungültig." in text and "Zum Inhalt springen" in text
        for languages in ("es-ES,es;q=0.9", ""):
            async with http.get("/call-me/not.valid", headers={"Accept-Language": languages}) as page:
                text = await page.text()
            assert page.status == 404 and html_lang(text) == "en", "none shipped: the installation's"
            assert "This link is not valid." in text
        async with http.get(
            "/call-me/not.valid", headers={"Accept-Language": "en;q=0.2, it, fr;q=0.8"}
        ) as page:
            assert html_lang(await page.text()) == "it", "by weight, not as listed"


async def test_the_consoles_own_pages_stay_english(site: Site) -> None:
    async with client(site) as http, http.get("/sign-in", headers={"Accept-Language": "fr"}) as page:
        text = await page.text()
    assert html_lang(text) == "en" and "Skip to the content" in text
    assert "Times are shown in your time zone" in text


def test_accept_language_is_read_by_weight() -> None:
    assert preferred_tags("de-CH,de;q=0.9,en;q=0.5") == ["de-CH", "de", "en"]
    assert preferred_tags("en;q=0.1, fr;q=0.8, it, *;q=0.5, es;q=0, xx;q=nope") == ["it", "fr", "en"]


# --- the launch form ------------------------------------------------------------------------------


async def test_the_language_of_the_launchers_text_reaches_the_run(site: Site) -> None:
    http, token = await signed_in_session(site, "lea")
    async with http:
        async with http.get("/procedures/call-me-drill") as page:
            text = await page.text()
        assert '<select id="f-text-language" name="text_language"' in text
        assert re.findall(r'<option value="(\w+)"( selected)?>', text) == [
            ("en", " selected"), ("fr", ""), ("de", ""), ("it", "")
        ], "every shipped language, the procedure's chosen"  # fmt: skip
        async with http.get("/red-button") as page:
            assert 'name="text_language"' in await page.text(), "the red button's welcome too"

        form = {"csrf": token, "f:body": "Serverraum brennt", "c:Contacts.S001": "dan", "text_language": "de"}
        async with http.post("/procedures/call-me-drill", data=form) as review:
            text = await review.text()
        assert review.status == 200 and '<dd id="text-language">German (de)</dd>' in text
        assert '<input type="hidden" name="text_language" value="de">' in text, "carried to the launch"

        async with http.post("/procedures/call-me-drill/launch", data={**form, "key": "in-german"},
                             allow_redirects=False) as sent:  # fmt: skip
            assert sent.status == 303, await sent.text()
            run_id = sent.headers["Location"].removeprefix("/launched/")
        site.h.launched.append(run_id)
        plan = await frozen_plan(site.h.client, run_id)
        assert plan is not None
        said = [(part.text, part.language) for speech in plan.steps[0].messages.values() for part in speech]
        assert ("Serverraum brennt", "de") in said, "spoken by a German voice in an English run"
        assert plan.language == "en"
        await site.h.client.get_workflow_handle(run_id).execute_update(ProcedureRun.end, EndRequest())


async def test_a_language_not_shipped_is_refused_beside_its_field(site: Site) -> None:
    http, token = await signed_in_session(site, "lea")
    async with http:
        for language, problem in (("es", "&#39;es&#39; is not a language rallycall ships"),
                                  ("not a tag", "&#39;not a tag&#39; is not a language tag")):  # fmt: skip
            form = {"csrf": token, "f:body": "fuego", "c:Contacts.S001": "dan", "text_language": language}
            async with http.post("/procedures/call-me-drill", data=form) as page:
                text = await page.text()
            assert page.status == 422 and "Nothing was launched" in text
            found = re.search(
                r'<ul class="field-problems" id="problems-text_language"[^>]*>(.*?)</ul>', text, re.S
            )
            assert found and problem in found[1], text
            async with http.post("/procedures/call-me-drill/launch", data={**form, "key": f"bad-{language}"},
                                 allow_redirects=False) as refused:  # fmt: skip
                assert refused.status == 422, "nothing launched"


# --- the run page and the report ------------------------------------------------------------------


async def test_each_persons_language_on_the_run_page_and_in_the_csv(site: Site) -> None:
    run_id = await drill(site, "alice", "bruno", "dan")

    def everyone_called(view: RunView) -> bool:
        return all(view.person(p).attempts for p in ("alice", "bruno", "dan"))

    await eventually(lambda: read_view(site.h.client, run_id), everyone_called)
    http, _ = await signed_in_session(site, "lea")
    async with http:
        async with http.get(f"/runs/{run_id}") as page:
            text = await page.text()
        for person, tag, name in (
            ("alice", "fr", "French"),
            ("bruno", "de", "German"),
            ("dan", "en", "English"),
        ):
            row = re.search(rf'<tr id="person-{person}".*?</th>', text, re.S)
            assert row and f'<abbr class="lang" title="{name}">{tag}</abbr>' in row[0], person

        await site.h.client.get_workflow_handle(run_id).execute_update(ProcedureRun.end, EndRequest())
        async with http.get(f"/runs/{run_id}/report.csv") as download:
            table = list(csv.reader(io.StringIO(await download.text())))
    assert table[0][-3:] == ["person_id", "language", "carrier"], (
        "added last: the other columns stay where they were"
    )
    languages = {row[-3]: row[-2] for row in table[1:] if row[1] == "call"}
    assert languages == {"alice": "fr", "bruno": "de", "dan": "en"}
