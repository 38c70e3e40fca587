"""A Swiss crisis cell of 250 in four languages on the dev server as `make stack` starts it: each
call speaks each person's language, around the launcher's own text in the launcher's, and each
SMS and email is in theirs. Counted from the carrier's journal (what each call said, in which
voice) and the mailbox (each email's Content-Language), not from what the workflow wrote down."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from bench import population as pop
from carrier.simulator.client import place_inbound_call
from domain.events import EndRequest
from procedures.definitions import Definitions
from stack.loopback import eventually, harness
from tests.support import DEFINITIONS, confcall_in_seconds
from workflows.procedure_run import ProcedureRun

PEOPLE = 250
TAGS = (None, "fr-CH", "de-CH", "it-CH")
"""Person n's `language`: none (served in the procedure's English), then Swiss French, German
and Italian."""
SERVED = ("en", "fr", "de", "it")
VOICE = {"en": "en-GB", "fr": "fr-FR", "de": "de-DE", "it": "it-IT"}
BODY = "Fire in the Renens depot"
"""The launcher writes in English; everyone hears it in an English voice."""
OPENING = {"en": "Crisis cell:", "fr": "Cellule de crise :", "de": "Krisenstab:", "it": "Unità di crisi:"}
SMS_OPENING = {
    "en": "Conference call in progress.",
    "fr": "Conférence téléphonique en cours.",
    "de": "Telefonkonferenz läuft.",
    "it": "Teleconferenza in corso.",
}


def four_languages() -> Definitions:
    """The red button, compressed (home phones at +8 s, PINs at +16 s), with the crisis cell's
    message by language: what a call says before the bridge is the person's language's."""
    timed = confcall_in_seconds(home_after=8, deadline=16)
    red = timed.procedure("conference-call")
    message = DEFINITIONS.procedure("crisis-with-deputies").steps[0].message
    step = red.steps[0].model_copy(update={"message": message})
    return Definitions(
        schemes=timed.schemes, procedures={red.name: red.model_copy(update={"steps": (step,)})}
    )


def people() -> list[dict[str, Any]]:
    entries = pop.contacts(PEOPLE)
    for n, entry in enumerate(entries):
        if TAGS[n % 4]:
            entry["language"] = TAGS[n % 4]
    return entries


def said_by_number(h: Any) -> dict[str, list[tuple[str, str]]]:
    """What each number's calls said, in order: (voice, text), from the carrier's journal."""
    numbers = {e["sid"]: e["to"] for e in h.carrier_entries("call")}
    said: defaultdict[str, list[tuple[str, str]]] = defaultdict(list)
    for entry in h.carrier_entries("said"):
        if entry["sid"] in numbers:
            said[numbers[entry["sid"]]].append((entry["language"], entry["text"]))
    return said


async def test_250_people_in_four_languages_hear_and_read_their_own(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    contacts = pop.write_contacts(tmp_path / "contacts.yaml", people())
    scenario = pop.scenario(
        PEOPLE, at_work=lambda n: "answer", at_home=lambda n: "no-answer", ring_seconds=0.5
    )
    async with harness(dev_env.client, tmp_path, contacts, scenario, calls_per_second=250) as h, h.worker():
        launched = await h.launch(
            *(pop.person_id(n) for n in range(PEOPLE)), welcome=BODY, definitions=four_languages(),
            text_language="en",
        )  # fmt: skip
        await eventually(lambda: len(h.mailbox.messages()), lambda sent: sent == PEOPLE, 90)
        await eventually(lambda: len(h.carrier_entries("sms")), lambda sent: sent == PEOPLE, 30)

        said = said_by_number(h)
        for n in range(PEOPLE):
            language = SERVED[n % 4]
            assert said[pop.work(n)] == [(VOICE[language], OPENING[language]), ("en-GB", BODY)], n

        texts = {e["to"]: e["body"] for e in h.carrier_entries("sms")}
        for n in range(PEOPLE):
            text = texts[pop.mobile(n)]
            assert text.startswith(SMS_OPENING[SERVED[n % 4]]) and launched.pin in text, (n, text)

        mails = {m["To"]: m for m in h.mailbox.messages()}
        assert len(mails) == PEOPLE
        for n in range(PEOPLE):
            mail, language = mails[pop.email(n)], SERVED[n % 4]
            assert mail["Content-Language"] == language, n
            html = mail.get_body(("html",))
            assert html is not None and f'<html lang="{language}">' in html.get_content(), n
        subjects = {mails[pop.email(n)]["Subject"] for n in range(4)}
        assert subjects == {
            "Invitation Conference Call - Pin",
            "Invitation à la conférence téléphonique - PIN",
            "Einladung zur Telefonkonferenz - PIN",
            "Invito alla teleconferenza - PIN",
        }

        report = await h.roster(launched)
        assert {p.id: p.language for p in report.people} == {
            pop.person_id(n): SERVED[n % 4] for n in range(PEOPLE)
        }

        # on the dial-in line: a person of the run is asked in their language, and welcomed in it
        german = await place_inbound_call(h.simulator_url, pop.mobile(2), [launched.pin])
        assert german["joined"] == launched.workflow_id
        assert german["transcript"][:1] == [
            "heard [de-DE]: Willkommen bei der Konferenzleitung. "
            f"Bitte geben Sie die {len(launched.pin)}-stellige PIN der Konferenz ein."
        ]
        assert f"heard [de-DE]: {OPENING['de']}" in german["transcript"]
        assert f"heard [en-GB]: {BODY}" in german["transcript"]

        # a Swiss number nobody knows chooses: four languages offered, each in its own voice
        guest = await place_inbound_call(h.simulator_url, pop.work(PEOPLE + 1), ["3", launched.pin])
        assert guest["transcript"][:4] == [
            "heard [de-DE]: Für Deutsch drücken Sie 1.",
            "heard [fr-FR]: Pour le français, tapez 2.",
            "heard [it-IT]: Per l'italiano, prema 3.",
            "heard [en-GB]: For English, press 4.",
        ]
        assert guest["transcript"][5].startswith("heard [it-IT]: Benvenuto sulla linea della conferenza.")
        assert guest["joined"] == launched.workflow_id
        assert f"heard [it-IT]: {OPENING['it']}" in guest["transcript"], "a guest is welcomed in their choice"
        report = await h.roster(launched)
        assert [p.language for p in report.people if p.guest] == ["it"]

        await h.handle(launched).execute_update(ProcedureRun.end, EndRequest())
