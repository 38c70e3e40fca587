"""Each person in their own language: the catalogues, the tags, the texts by language in
procedures, what a call says (each part in its own voice) and how an SMS travels."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from babel.messages.pofile import read_po
from temporalio.testing import WorkflowEnvironment

from carrier.port import OutboundCall
from carrier.simulator.scenario import NumberPlan
from carrier.twiml import call_twiml
from config import Settings
from domain.capacity import reach, step_loads
from domain.contacts import contact_for_number, validate_contact
from domain.errors import InvalidDefinition, InvalidLaunch
from domain.messages import render, render_spoken, sms_size
from domain.run_view import PersonView
from domain.speech import Said, plain
from i18n import catalogues
from i18n.catalogues import (
    SOURCE_LANGUAGE,
    catalogue_path,
    placeholders,
    said,
    translated,
    translations,
    words,
)
from i18n.extract import extracted
from i18n.languages import SHIPPED, normalised, served, spoken_in, voice
from launching import DEFAULT_WAY_BACK, LaunchRequest, prepare
from procedures.definitions import load_definitions
from rendering.terminal import person_line
from tests.support import CONTACTS, DEFINITIONS, SCENARIO, eventually, harness
from tests.test_procedures import ACK, WORK, definitions_with

PROMPT = "Welcome to the conference line. Please enter your {digits} digit conference PIN."


def test_every_text_in_the_code_is_translated_in_every_shipped_language() -> None:
    """A text added to the code without its translations fails here (it would be spoken in
    the default language meanwhile); the catalogues are read as translators leave them."""
    in_code = {str(m.id) for m in extracted() if m.id}
    assert PROMPT in in_code and len(in_code) >= 14
    for language in SHIPPED:
        if language == SOURCE_LANGUAGE:
            continue
        with catalogue_path(language).open("rb") as po:
            catalogue = read_po(po, locale=language)
        finished = translations(language)
        assert in_code - set(finished) == set(), f"{language}: untranslated or fuzzy"
        for message in catalogue:
            if message.id and message.string:
                assert placeholders(str(message.string)) == placeholders(str(message.id)), message.id


def test_a_person_hears_the_prompts_in_their_language_with_the_fields_filled() -> None:
    assert words(PROMPT, "de-CH", digits=10) == (
        "Willkommen bei der Konferenzleitung. Bitte geben Sie die 10-stellige PIN der Konferenz ein."
    )
    assert words(PROMPT, "fr", digits=6).endswith("6 chiffres.")
    assert words(PROMPT, "en", digits=6) == PROMPT.format(digits=6)


def test_a_missing_or_broken_translation_falls_back_to_the_default_language_then_english(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    german = dict(translations("de"))
    del german[PROMPT]
    broken = {"Please hold while we check your PIN.": "Bitte warten {oops}"}
    tables = {"de": {**german, **broken}, "fr": translations("fr"), "it": {}}
    monkeypatch.setattr(catalogues, "translations", lambda language: tables.get(language, {}))
    text, language = translated(PROMPT, "de", "fr", digits=6)
    assert (text[:9], language) == ("Bienvenue", "fr"), "missing in German: French, said by a French voice"
    assert translated(PROMPT, "it", "it", digits=6) == (PROMPT.format(digits=6), "en"), "nowhere: English"
    hold = "Please hold while we check your PIN."
    assert translated(hold, "de", "en") == (hold, "en"), "a broken translation is not used"
    assert said(hold, "de", "en") == (Said(text=hold, language="en"),), "and its voice is English"
    assert said(hold, "", "en") == (Said(text=hold, language=""),), (
        "a run from before 0.2.0: the default voice"
    )


def test_language_tags_are_read_with_babel_and_mapped_to_voices_the_carrier_has() -> None:
    assert [normalised(t) for t in ("fr_ch", "DE-ch", "it", "en-gb")] == ["fr-CH", "de-CH", "it", "en-GB"]
    with pytest.raises(ValueError, match="'klingon' is not a language tag"):
        normalised("klingon")
    assert [voice(t) for t in ("fr-CH", "de-CH", "it-CH", "en-GB", "en-US", "fr-CA", "de")] == [
        "fr-FR", "de-DE", "it-IT", "en-GB", "en-US", "fr-CA", "de-DE",
    ]  # fmt: skip
    assert (served("es", "fr"), served("de-AT", "fr"), served(None, "it")) == ("fr", "de", "it")
    assert (spoken_in("CH"), spoken_in("FR"), spoken_in("ES")) == (("de", "fr", "it"), ("fr",), ())


def test_a_contact_with_a_wrong_language_is_refused_by_name() -> None:
    assert (
        validate_contact({"id": "a", "name": "A", "mobile": "+41795550101", "language": "fr_ch"}).language
        == "fr-CH"
    )
    with pytest.raises(InvalidLaunch, match=r"contact 'b': language 'xx-yy' is not a language tag"):
        validate_contact({"id": "b", "name": "B", "mobile": "+41795550102", "language": "xx-yy"})


def test_the_launchers_text_is_a_part_in_its_own_language_inside_a_translated_message() -> None:
    fields = {"Body": "Fire at the Renens depot", "Pin": "123456"}
    said = render_spoken("Krisenstab: #{Body} (PIN #{Pin})", fields, "de", {"Body": "en-GB"})
    assert said == (
        Said(text="Krisenstab: ", language="de"),
        Said(text="Fire at the Renens depot", language="en-GB"),
        Said(text=" (PIN 123456)", language="de"),
    )
    assert plain(said) == "Krisenstab: Fire at the Renens depot (PIN 123456)"
    assert render_spoken("#{Body}", {"Body": ""}, "de", {"Body": "fr"}) == ()


def test_each_part_of_a_call_is_said_by_a_voice_of_its_language() -> None:
    call = OutboundCall(
        to="+41795550101", caller_id="+41215550100", bridge=None,
        message=(Said(text="Krisenstab: ", language="de-CH"), Said(text="Incendie", language="fr")),
        acknowledge_url="http://127.0.0.1:9/ack", ring_timeout=__import__("datetime").timedelta(seconds=30),
        status_callback="http://127.0.0.1:9/s", machine_callback="http://127.0.0.1:9/m",
        acknowledge_prompt=(Said(text=words("Press 1 to acknowledge.", "de"), language="de"),),
        not_acknowledged=(Said(text="Old run", language=""),),
    )  # fmt: skip
    twiml = call_twiml(call)
    assert '<Say language="de-DE">Krisenstab:</Say><Say language="fr-FR">Incendie</Say>' in twiml
    assert '<Say language="de-DE">Drücken Sie 1, um den Empfang zu bestätigen.</Say></Gather>' in twiml
    assert "<Say>Old run</Say>" in twiml, "a part of unknown language keeps the carrier's default voice"


def write_procedure(folder: Path, body: str) -> Path:
    (folder / "procedures").mkdir(parents=True)
    (folder / "schemes.yaml").write_text(
        "schemes:\n  - name: CONFCALL\n    media: [{medium: voice_pro}]\ndefault: CONFCALL\n",
        encoding="utf-8",
    )
    (folder / "procedures" / "p.yaml").write_text(body, encoding="utf-8")
    return folder


PROCEDURE = """name: p
title: T
{language}form:
  - {{name: body, kind: text}}
  - {{name: Contacts.S001, kind: contacts}}
steps:
  - number: "001"
    objective: conference
    percent: 100
    contact_fields: [Contacts.S001]
    deadline: 2m
    message:
{messages}
"""


EN = "language: en\n"
OWN = '      en: "#{Body}"\n'


@pytest.mark.parametrize(
    ("language", "messages", "problem"),
    [
        ("", '      fr: "Crise : #{Body}"', "texts given by language need the procedure's 'language:'"),
        (EN, '      fr: "Crise : #{Body}"', r"message: no text in en, the procedure's language"),
        (EN, OWN + '      es: "Crisis: #{Body}"', "'es' is not a language rallycall ships"),
        (EN, OWN + '      de: "Krise: #{Bdy}"', r"message\.de, line 1, column 8: unknown field #\{Bdy\}"),
        ("language: xx\n", '      xx: "#{Body}"', "'xx' is not a language rallycall ships"),
    ],
)  # fmt: skip
def test_texts_by_language_are_checked_when_the_procedure_loads(
    tmp_path: Path, language: str, messages: str, problem: str
) -> None:
    folder = write_procedure(tmp_path, PROCEDURE.format(language=language, messages=messages))
    with pytest.raises(InvalidDefinition, match=problem):
        load_definitions(folder)


def three_speakers(tmp_path: Path) -> Path:
    """Anna speaks Swiss German, Luca Italian, Pepe Spanish (not shipped)."""
    contacts = tmp_path / "contacts.yaml"
    contacts.write_text(
        "contacts:\n"
        "  - {id: anna, name: Anna, voice_pro: '+41215550101', mobile: '+41795550101', language: de-CH}\n"
        "  - {id: luca, name: Luca, voice_pro: '+41215550102', mobile: '+41795550102', language: it}\n"
        "  - {id: pepe, name: Pepe, voice_pro: '+41215550103', mobile: '+41795550103', language: es}\n",
        encoding="utf-8",
    )
    return contacts


def test_each_person_gets_the_texts_of_their_language_and_the_rest_the_procedures(tmp_path: Path) -> None:
    contacts = three_speakers(tmp_path)
    crisis = DEFINITIONS.procedure("crisis-with-deputies")
    request = LaunchRequest(
        crisis, DEFINITIONS.schemes, {"body": "Incendie au dépôt", "Contacts.S001": "anna,luca,pepe",
                                      "Contacts.S002": "anna"},
        contacts_file=contacts, text_language="fr",
    )  # fmt: skip
    plan = prepare(request, Settings(_env_file=None), "1234567890")
    step = plan.steps[0]
    assert [plan.language_for(plan.person(p)) for p in ("anna", "luca", "pepe")] == ["de", "it", "en"]
    assert step.said_to("de") == (
        Said(text="Krisenstab: ", language="de"),
        Said(text="Incendie au dépôt", language="fr"),
    )
    assert plain(step.said_to("en")) == "Crisis cell: Incendie au dépôt", "Spanish is not shipped: English"
    assert step.post_objective is not None
    assert step.post_objective.in_language("it").subject == "Invito all'unità di crisi - PIN"
    assert step.post_objective.in_language("en").language == "en"
    way_back, language = plan.way_back("de")
    assert (language, way_back.split(".")[0]) == ("de", "Krisenstab tagt")
    with pytest.raises(InvalidLaunch, match="language of the texts: 'es' is not a language rallycall ships"):
        prepare(
            request.__class__(**{**request.__dict__, "text_language": "es"}), Settings(_env_file=None), "1"
        )


def test_every_shipped_pin_sms_and_way_back_fits_two_parts_in_every_language() -> None:
    """With a 12-digit PIN (the longest allowed), the conference number as written, and a long
    name and call-me link where a text names them."""
    fields = {
        "ConferenceNumber": "+41 21 555 01 00", "Pin": "9" * 12, "Body": "x" * 500,
        "Contact": {"Id": "anna", "Name": "Anna-Lena Müller-Lüdenscheidt"},
        "CallMeLink": "https://console.example.ch/call-me/" + "A" * 90,
    }  # fmt: skip
    sizes = {}
    for procedure in load_definitions(
        Path(__file__).resolve().parent.parent / "examples"
    ).procedures.values():
        for step in procedure.steps:
            for language, post in step.post_objectives(procedure.language or "en").items():
                sizes[(procedure.name, step.number, language)] = sms_size(
                    render(post.sms or post.body, fields)
                )
    for language in SHIPPED:
        way_back = words(DEFAULT_WAY_BACK, language)
        sizes[("way back", "", language)] = sms_size(render(way_back, fields))
    assert {language for _, _, language in sizes} == set(SHIPPED)
    too_long = {where: size.described for where, size in sizes.items() if size.segments > 2}
    assert not too_long


def test_status_names_each_persons_language() -> None:
    line = person_line(PersonView(id="anna", name="Anna Keller", language="de"))
    assert line.startswith("      Anna Keller (de)   ") and line.endswith(
        "not alerted yet; calls: -; sent: -"
    )


def test_the_launch_says_who_is_served_in_what_and_how_each_pin_sms_travels(tmp_path: Path) -> None:
    contacts = three_speakers(tmp_path)
    red = DEFINITIONS.procedure("conference-call")
    fields = {"body": "Fire", "Contacts.S001": "anna,luca,pepe"}
    plan = prepare(
        LaunchRequest(red, DEFINITIONS.schemes, fields, contacts_file=contacts), Settings(), "1" * 10
    )
    [step] = reach(plan, step_loads(plan, 10.0, 0), 100.0)
    assert step.languages == {"de": 1, "en": 1, "it": 1}
    assert step.served_otherwise == ["1 asked for es, not shipped: served in en"]
    assert {lang: (size.encoding, size.segments) for lang, size in step.pin_sms.items()} == {
        "de": ("GSM-7", 1), "en": ("GSM-7", 1), "it": ("GSM-7", 1),
    }  # fmt: skip
    assert "PIN SMS de 1 part (GSM-7, 104 characters)" in step.describe()
    assert step.as_json()["pin_sms"]["it"] == {"encoding": "GSM-7", "units": 99, "segments": 1}  # type: ignore[index]

    english_only = red.steps[0].model_copy(
        update={"post_objective": red.steps[0].post_objectives("en")["en"]}
    )
    plain_red = red.model_copy(update={"steps": (english_only,)})
    plan = prepare(
        LaunchRequest(plain_red, DEFINITIONS.schemes, fields, contacts_file=contacts), Settings(), "1" * 10
    )
    [step] = reach(plan, step_loads(plan, 10.0, 0), 100.0)
    assert step.served_otherwise == [
        "1 asked for es, not shipped: served in en",
        "1 in de read the procedure's en texts",
        "1 in it read the procedure's en texts",
    ]


async def test_an_acknowledgement_call_asks_and_thanks_in_the_persons_language(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """What the carrier's journal says the call spoke: the message, "press 1" and the thanks
    after the key (the acknowledgement route keeps the language the call was placed in)."""
    people = [{**c, "language": "de-CH"} if c["id"] == "alice" else c for c in CONTACTS["contacts"]]
    contacts = tmp_path / "contacts.yaml"
    contacts.write_text(yaml.safe_dump({"contacts": people}, allow_unicode=True), encoding="utf-8")
    by_language = {**ACK, "language": "en", "steps": [{**ACK["steps"][0], "message": {
        "en": "Alert: #{Body}.", "de": "Alarm: #{Body}."}}]}  # fmt: skip
    scenario = SCENARIO.model_copy(
        update={"numbers": {**SCENARIO.numbers, WORK["alice"]: NumberPlan(answer="answer", press="1")}}
    )
    async with harness(dev_env.client, tmp_path, contacts, scenario) as h, h.worker():
        launched = await h.launch_procedure(
            "acknowledge", {"body": "Rauch im Keller", "Contacts.S001": "alice"},
            definitions=definitions_with(tmp_path, by_language), text_language="de",
        )  # fmt: skip

        def spoken_to_alice() -> list[tuple[str, str]]:
            return [(e["language"], e["text"]) for e in h.carrier_entries("said") if e["to"] == WORK["alice"]]

        said = await eventually(spoken_to_alice, lambda s: len(s) == 5)
        assert said == [
            ("de-DE", "Alarm:"), ("de-DE", "Rauch im Keller"), ("de-DE", "."),
            ("de-DE", "Drücken Sie 1, um den Empfang zu bestätigen."),
            ("de-DE", "Danke, Ihre Bestätigung ist erfasst. Auf Wiederhören."),
        ]  # fmt: skip
        await eventually(lambda: h.roster(launched), lambda r: r.person("alice").acknowledged_at is not None)


def test_a_copy_of_a_plan_with_other_people_finds_them() -> None:
    """The plan's people index is cached on the instance: a copy must not inherit it."""
    plan = prepare(
        LaunchRequest(DEFINITIONS.procedure("conference-call"), DEFINITIONS.schemes,
                      {"Contacts.S001": "+41795550101"}),
        Settings(_env_file=None), "1" * 10,
    )  # fmt: skip
    assert plan.knows("+41795550101")
    other = validate_contact({"id": "zoe", "name": "Zoé", "voice_pro": "+41215550199", "language": "fr"})
    copied = plan.model_copy(update={"people": (other,)})
    assert copied.knows("zoe") and not copied.knows("+41795550101")
    assert copied.language_for(copied.person("zoe")) == "fr"


def test_a_raw_number_is_served_in_its_countrys_language_when_it_has_one() -> None:
    french, swiss, spanish = (contact_for_number(n) for n in ("+33612345678", "+41795550101", "+34612345678"))
    assert (french.language, swiss.language, spanish.language) == ("fr", None, None)
