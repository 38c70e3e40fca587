"""A carrier failing mid-incident, on the dev server as `make stack` starts it: two carriers on
loopback, `twilio` first, then `telnyx` (the simulator speaking Telnyx's API, reached through
the real SDK), each with its own account, number, rate and journal. What each carrier's journal
and the mailbox saw is counted, then the run must say the same."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from temporalio.testing import WorkflowEnvironment

from bench import population as pop
from carrier.simulator.client import place_inbound_call
from carrier.simulator.scenario import NumberPlan, Scenario
from console.report import report_rows
from domain.run_view import RunView
from procedures.definitions import Definitions, load_definitions
from rendering.terminal import changes
from stack.loopback import BACKUP_NUMBER, Harness, eventually, harness
from tests.support import confcall_in_seconds
from tests.test_procedures import ACK, definitions_with
from watch import read_view

PEOPLE = 20
"""The drill's conference (issue 16)."""
TIMELINE = confcall_in_seconds(home_after=8, deadline=16)


def at(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["at"])


def pin_messages_sent(report: RunView) -> int:
    return sum(1 for p in report.people for n in p.notifications if n.channel == "sms")


def answering(tmp_path: Path, people: int) -> tuple[Path, Scenario]:
    """`people` contacts, each answering at work and at home on either carrier."""
    contacts = pop.write_contacts(tmp_path / "contacts.yaml", pop.contacts(people))
    return contacts, pop.scenario(
        people, at_work=lambda n: "answer", at_home=lambda n: "answer", ring_seconds=0.3
    )


async def launch_everyone(h: Harness) -> RunView:
    launched = await h.launch(*(pop.person_id(n) for n in range(PEOPLE)), definitions=TIMELINE)
    return await eventually(lambda: h.roster(launched), lambda r: pin_messages_sent(r) == PEOPLE, 90)


async def test_calls_move_to_the_next_carrier_when_the_first_fails_and_sms_stay_where_they_work(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    contacts, everyone_answers = answering(tmp_path, PEOPLE)
    async with harness(
        dev_env.client, tmp_path, contacts, everyone_answers, calls_per_second=5, backup=everyone_answers
    ) as h:
        h.simulator.faults.open_windows(600, None, status=503, part="voice")  # its SMS still work
        async with h.worker():
            report = await launch_everyone(h)

        faults = h.carrier_entries("fault")
        assert h.carrier_entries("call") == [], "the failing carrier placed nothing"
        backup_calls = h.backup_entries("call")
        assert Counter(c["to"] for c in backup_calls) == Counter(pop.work(n) for n in range(PEOPLE)), (
            "every work phone called once, through the next carrier: nobody twice, nobody left out"
        )
        assert {c["from"] for c in backup_calls} == {BACKUP_NUMBER}, "each carrier calls from its own number"
        to_first_call = (at(backup_calls[0]) - at(faults[0])).total_seconds()
        assert to_first_call <= 10, (
            f"first call through the next carrier {to_first_call:.1f} s after the fault"
        )
        assert len(faults) <= 8, "the failing carrier stops being asked after a short run of faults"

        assert Counter(h.texted_numbers()) == Counter(pop.mobile(n) for n in range(PEOPLE)), (
            "the PIN SMS go through the first carrier: its messaging works"
        )
        assert h.backup_entries("sms") == []

        people = {p.id: p for p in report.people}
        for n in range(PEOPLE):
            (attempt,) = people[pop.person_id(n)].attempts
            assert (attempt.carrier, attempt.outcome) == ("telnyx", "answered"), n
            assert {x.carrier for x in people[pop.person_id(n)].notifications if x.channel == "sms"} == {
                "twilio"
            }
        moved = [a for p in report.people for a in p.attempts if a.carrier_faults]
        assert moved and all(f.startswith("twilio") for a in moved for f in a.carrier_faults), (
            "the calls moved off the failing carrier say why"
        )
        assert any("bridge moved from twilio to telnyx" in problem for problem in report.problems)
        assert sum(p.in_conference for p in report.people) == PEOPLE, "one bridge, on the next carrier"
        assert h.backup is not None and set(h.backup.rooms) == {report.workflow_id}

        said = "\n".join(text for _, text in changes(None, report))  # what `status` prints
        assert said.count("through telnyx (moved: twilio") == len(moved)
        assert "PIN invitation sent to" in said and "by SMS through twilio" in said
        rows = [row for row in report_rows(report) if row.event == "call"]
        assert {row.carrier for row in rows} == {"telnyx"} and len(rows) == PEOPLE
        assert sum("moved off twilio" in row.detail for row in rows) == len(moved)


async def test_sms_move_to_the_next_carrier_when_the_first_cannot_text_and_calls_stay(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    contacts, everyone_answers = answering(tmp_path, PEOPLE)
    async with harness(
        dev_env.client, tmp_path, contacts, everyone_answers, calls_per_second=5, backup=everyone_answers
    ) as h:
        h.simulator.faults.open_windows(600, None, status=503, part="messaging")
        async with h.worker():
            report = await launch_everyone(h)

        assert Counter(h.called_numbers()) == Counter(pop.work(n) for n in range(PEOPLE)), (
            "calls stay on the first carrier: its voice works"
        )
        assert h.backup_entries("call") == []
        assert h.texted_numbers() == [], "the first carrier's messaging sent nothing"
        assert Counter(m["to"] for m in h.backup_entries("sms")) == Counter(
            pop.mobile(n) for n in range(PEOPLE)
        ), "one PIN SMS each, through the next carrier"
        assert {m["from"] for m in h.backup_entries("sms")} == {BACKUP_NUMBER}
        texts = [n for p in report.people for n in p.notifications if n.channel == "sms"]
        assert {n.carrier for n in texts} == {"telnyx"} and len(texts) == PEOPLE
        assert all(a.carrier == "twilio" and not a.carrier_faults for p in report.people for a in p.attempts)


BRIDGE_TIMELINE = confcall_in_seconds(home_after=30, deadline=36)
"""Home phones and the PIN SMS after the bridge is lost (at about +5 s) and rebuilt, as in the
drill, where the PIN SMS at +120 s comes after the loss at +30 s."""


async def test_a_bridge_its_carrier_loses_is_rebuilt_on_the_next_with_everyone_called_back(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    contacts, everyone_answers = answering(tmp_path, PEOPLE)
    async with (
        harness(
            dev_env.client, tmp_path, contacts, everyone_answers, calls_per_second=5, backup=everyone_answers
        ) as h,
        h.worker(),
    ):
        launched = await h.launch(*(pop.person_id(n) for n in range(PEOPLE)), definitions=BRIDGE_TIMELINE)
        await eventually(  # everyone in: the objective met, the PIN invitation sent
            lambda: h.roster(launched),
            lambda r: sum(p.in_conference for p in r.people) == PEOPLE and pin_messages_sent(r) == PEOPLE,
            30,
        )
        assert set(h.simulator.rooms) == {launched.workflow_id}

        h.simulator.faults.open_windows(300, None, status=503)  # the whole API, SMS too
        await h.simulator.drop_rooms()
        lost = asyncio.get_running_loop().time()
        assert h.backup is not None
        rebuilt = await eventually(
            lambda: h.backup.rooms.get(launched.workflow_id) if h.backup else None,
            lambda room: room is not None and sum(p.joined for p in room.participants.values()) == PEOPLE,
            60,
        )
        everyone_back_s = asyncio.get_running_loop().time() - lost
        assert rebuilt and everyone_back_s <= 60, (
            f"everyone in the new bridge {everyone_back_s:.1f} s after the loss"
        )
        report = await eventually(
            lambda: h.roster(launched), lambda r: sum(p.in_conference for p in r.people) == PEOPLE, 30
        )

        first_calls = Counter(c["to"] for c in h.carrier_entries("call"))
        assert first_calls == Counter(pop.work(n) for n in range(PEOPLE)), "the first bridge: one call each"
        again = Counter(c["to"] for c in h.backup_entries("call"))
        assert again == Counter(pop.work(n) for n in range(PEOPLE)), (
            "everyone in the lost bridge called back once into the new one, on the phone they answered"
        )
        faults = [at(e) for e in h.carrier_entries("fault")]
        first_call = min(at(c) for c in h.backup_entries("call"))
        assert (first_call - faults[0]).total_seconds() <= 10, "the first call through the next carrier"
        assert Counter(h.texted_numbers()) == Counter(pop.mobile(n) for n in range(PEOPLE)), (
            "the PIN invitation went out when everyone was in (the objective), through the first carrier"
        )
        assert h.backup_entries("sms") == [], "no way back by SMS: the bridge was lost, they were called back"
        assert Counter(m["To"] for m in h.mailbox.messages()) == Counter(
            pop.email(n) for n in range(PEOPLE)
        ), "one invitation email each: it already listed both numbers"
        assert all("+41 21 555 02 00" in m["body"] for m in h.carrier_entries("sms"))

        assert report.carriers == {"twilio": "+41215550100", "telnyx": BACKUP_NUMBER}
        assert sum(p.in_conference for p in report.people) == PEOPLE, "one roster across both bridges"
        (moved,) = report.problems  # and nothing else: the new room's first moments are no loss
        assert "bridge moved from twilio to telnyx" in moved
        said = "\n".join(text for _, text in changes(None, report))
        assert said.count("through telnyx") >= PEOPLE


async def test_a_pin_keyed_on_the_other_carriers_number_brings_the_caller_into_the_one_bridge(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    contacts = pop.write_contacts(tmp_path / "contacts.yaml", pop.contacts(3))
    dropping = pop.scenario(3, at_work=lambda n: "answer", at_home=lambda n: "no-answer", ring_seconds=0.2)
    dropping.numbers[pop.work(0)] = NumberPlan(answer="answer", hangup_after_s=2)  # hangs up by mistake
    dropping.numbers[pop.mobile(0)] = "answer"  # then dials in from their mobile
    async with (
        harness(dev_env.client, tmp_path, contacts, dropping, calls_per_second=5, backup=dropping) as h,
        h.worker(),
    ):
        launched = await h.launch(*(pop.person_id(n) for n in range(3)), definitions=TIMELINE)
        await eventually(lambda: h.roster(launched), lambda r: r.person(pop.person_id(0)).drops == 1, 20)

        answer = await place_inbound_call(h.backup_url, pop.mobile(0), [launched.pin])
        heard = " ".join(answer["transcript"])
        assert answer["joined"] is None, "not put into a second bridge on the other carrier"
        assert "calling you back into the conference" in heard
        report = await eventually(
            lambda: h.roster(launched),
            lambda r: any(a.attempt_id.endswith("again1") and a.outcome == "answered"
                          for a in r.person(pop.person_id(0)).attempts),
            20,
        )  # fmt: skip
        (again,) = [a for a in report.person(pop.person_id(0)).attempts if a.attempt_id.endswith("again1")]
        assert again.carrier == "twilio", "called into the bridge where it is, through its carrier"
        assert (again.medium, again.number) == ("voice_mobile", pop.mobile(0)), (
            "on the phone they dialled from"
        )
        assert Counter(c["to"] for c in h.carrier_entries("call"))[pop.mobile(0)] == 1
        assert h.backup_entries("call") == [], "the other carrier places nothing"
        assert h.backup is not None and h.backup.rooms == {}, "and holds no bridge"

        guest = await place_inbound_call(h.backup_url, "+447400100200", [launched.pin])
        assert guest["joined"] is None
        assert "now on another number: 4 1, 2 1, 5 5 5, 0 1, 0 0" in " ".join(guest["transcript"])


async def test_acknowledgement_calls_fail_over_one_by_one_and_each_says_where_it_went(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """No bridge: each call goes through the first carrier that works, as the batch sees it."""
    contacts = pop.write_contacts(tmp_path / "contacts.yaml", pop.contacts(6))
    pressing = Scenario(
        ring_seconds=0.2, numbers={pop.work(n): NumberPlan(answer="answer", press="1") for n in range(6)}
    )
    async with (
        harness(dev_env.client, tmp_path, contacts, pressing, calls_per_second=5, backup=pressing) as h,
        h.worker(),
    ):
        h.simulator.faults.open_windows(600, None, status=503, part="voice")
        launched = await h.launch_procedure(
            "acknowledge",
            {"body": "gas leak", "Contacts.S001": ",".join(pop.person_id(n) for n in range(6))},
            definitions=definitions_with(tmp_path, ACK),
        )
        report = await eventually(
            lambda: h.roster(launched),
            lambda r: sum(p.acknowledged_at is not None for p in r.people) == 6,
            60,
        )
        assert h.carrier_entries("call") == []
        assert Counter(c["to"] for c in h.backup_entries("call")) == Counter(pop.work(n) for n in range(6))
        assert all(a.carrier == "telnyx" for p in report.people for a in p.attempts)
        moved = [f for p in report.people for a in p.attempts for f in a.carrier_faults]
        assert moved and all(f.startswith("twilio") for f in moved), "the first calls say why they moved"


def acknowledge_fast(tmp_path: Path) -> Definitions:
    """ACK on a fast scheme: work phones, home phones at +8 s, ringing 1 s."""
    folder = tmp_path / "fast-definitions"
    (folder / "procedures").mkdir(parents=True)
    media = [{"medium": "voice_pro"}, {"medium": "voice_home", "after": "8s"}]
    schemes = {"default": "FAST", "schemes": [{"name": "FAST", "ring_timeout": "1s", "media": media}]}
    (folder / "schemes.yaml").write_text(yaml.safe_dump(schemes))
    step = {**ACK["steps"][0], "scheme": "FAST", "deadline": "30s"}
    (folder / "procedures" / "acknowledge.yaml").write_text(yaml.safe_dump({**ACK, "steps": [step]}))
    return load_definitions(folder)


async def test_a_carrier_whose_callbacks_stop_coming_is_failing_too(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    contacts = pop.write_contacts(tmp_path / "contacts.yaml", pop.contacts(6))
    at_home = Scenario(
        ring_seconds=0.2, numbers={pop.home(n): NumberPlan(answer="answer", press="1") for n in range(6)}
    )  # nobody at work
    async with (
        harness(dev_env.client, tmp_path, contacts, at_home, calls_per_second=5, backup=at_home) as h,
        h.worker(),
    ):
        h.simulator.faults.open_windows(None, 600)  # its API works, its webhooks never arrive
        launched = await h.launch_procedure(
            "acknowledge",
            {"body": "gas leak", "Contacts.S001": ",".join(pop.person_id(n) for n in range(6))},
            definitions=acknowledge_fast(tmp_path),
        )
        report = await eventually(
            lambda: h.roster(launched),
            lambda r: sum(p.acknowledged_at is not None for p in r.people) == 6,
            60,
        )
        assert Counter(c["to"] for c in h.carrier_entries("call")) == Counter(
            pop.work(n) for n in range(6)
        ), "the work round went through the first carrier, whose callbacks were all lost"
        assert Counter(c["to"] for c in h.backup_entries("call")) == Counter(pop.home(n) for n in range(6)), (
            "the home round through the next, where the keys pressed reached us"
        )
        assert all(
            a.outcome == "no-answer" for p in report.people for a in p.attempts if a.medium == "voice_pro"
        )
        batches = [await read_view(h.client, b.workflow_id) for b in report.batches]
        assert any("callbacks stopped coming" in problem for b in batches for problem in b.problems)
