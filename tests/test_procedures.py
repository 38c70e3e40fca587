"""Procedures run step by step on the time-skipping server, through the real worker, simulator,
callback server and SMTP: objectives reached or not, deadlines, too-late answers, escalation,
and the red button being exactly the spec's conference procedure."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from carrier.simulator import Scenario
from carrier.simulator.scenario import NumberPlan
from config import EXAMPLES
from domain.errors import InvalidLaunch
from domain.events import EndRequest
from domain.run_view import RunView
from procedures.definitions import Definitions, load_definitions
from stack.ports import free_port
from tests.histories import keep
from tests.support import SCENARIO, Bridged, Harness, eventually, harness
from workflows.procedure_run import ProcedureRun

WORK = {"alice": "+41215550101", "bruno": "+41215550102", "chloe": "+41215550103"}
ACK: dict[str, Any] = {
    "name": "acknowledge",
    "title": "Please acknowledge",
    "form": [{"name": "body", "kind": "text"}, {"name": "Contacts.S001", "kind": "contacts"}],
    "steps": [
        {
            "number": "001",
            "objective": "acknowledgement",
            "percent": 100,
            "contact_fields": ["Contacts.S001"],
            "message": "Alert: #{Body}.",
            "scheme": "CONFCALL",
            "deadline": "2m",
            "post_objective": {
                "subject": "Alert closed",
                "body": "Alert #{Body} closed. Thank you #{Contact.Name}.",
            },
        }
    ],
}
INFO: dict[str, Any] = {
    "name": "inform",
    "title": "Information",
    "form": [{"name": "body", "kind": "text"}, {"name": "Contacts.S001", "kind": "contacts"}],
    "steps": [
        {
            "number": "001",
            "objective": "information",
            "percent": 100,
            "contact_fields": ["Contacts.S001"],
            "message": "Planned outage tonight: #{Body}",
            "scheme": "NOTIFY",
            "deadline": "10m",
        }
    ],
}


def definitions_with(tmp_path: Path, *procedures: dict[str, Any]) -> Definitions:
    folder = tmp_path / "definitions"
    shutil.copytree(
        EXAMPLES, folder, ignore=shutil.ignore_patterns("*.yaml", "contacts*"), dirs_exist_ok=True
    )
    shutil.copy(EXAMPLES / "schemes.yaml", folder / "schemes.yaml")
    (folder / "procedures").mkdir(exist_ok=True)
    for name in ("conference-call", "crisis-with-deputies"):
        shutil.copy(EXAMPLES / "procedures" / f"{name}.yaml", folder / "procedures")
    for procedure in procedures:
        (folder / "procedures" / f"{procedure['name']}.yaml").write_text(yaml.safe_dump(procedure))
    return load_definitions(folder)


async def at(env: WorkflowEnvironment, report: RunView, seconds: float) -> None:
    target = report.started_at + timedelta(seconds=seconds)
    await env.sleep(max(timedelta(0), target - await env.get_current_time()))


async def started(h: Harness, launched: Any) -> RunView:
    """The roster once the first round's calls are settled."""
    return await eventually(
        lambda: h.roster(launched),
        lambda r: (
            all(a.outcome != "pending" for p in r.people for a in p.attempts)
            and any(p.attempts or p.notifications for p in r.people)
        ),
    )


async def finish(h: Harness, launched: Any) -> RunView:
    handle = h.handle(launched)
    await handle.execute_update(ProcedureRun.end, EndRequest())
    return await handle.result()


@pytest.fixture
async def line(time_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path) -> AsyncIterator[Harness]:
    scenario = SCENARIO.model_copy(
        update={"numbers": {**SCENARIO.numbers, WORK["alice"]: NumberPlan(answer="answer", press="1")}}
    )
    async with harness(time_env.client, tmp_path, contacts_file, scenario) as h, h.worker():
        yield h


async def observe(
    env: WorkflowEnvironment, h: Harness, launch: Callable[[], Awaitable[Bridged]]
) -> dict[str, Any]:
    """What the outside world saw of one run, counted from before its launch: calls at 0 s and
    at 61 s, SMS and email at 121 s."""
    seen_calls, seen_sms = len(h.called_numbers()), len(h.texted_numbers())
    seen_mail = {m["Message-ID"] for m in h.mailbox.messages()}
    launched = await launch()
    report = await started(h, launched)
    first = sorted(h.called_numbers()[seen_calls:])
    await at(env, report, 61)
    await eventually(
        lambda: h.roster(launched),
        lambda r: all(a.outcome != "pending" for p in r.people for a in p.attempts),
    )
    second = sorted(h.called_numbers()[seen_calls + len(first) :])
    await at(env, report, 119)
    quiet = h.texted_numbers()[seen_sms:]
    await at(env, report, 121)
    await eventually(lambda: h.roster(launched), lambda r: sum(len(p.notifications) for p in r.people) == 7)
    sms = sorted(
        (e["to"], e["body"].replace(launched.pin, "<PIN>")) for e in h.carrier_entries("sms")[seen_sms:]
    )
    mails = [m for m in h.mailbox.messages() if m["Message-ID"] not in seen_mail]
    email = sorted(
        (m["To"], m["Subject"], m.get_body(("plain",)).get_content().strip().replace(launched.pin, "<PIN>"))  # type: ignore[union-attr]
        for m in mails
    )
    await finish(h, launched)
    return {"t=0": first, "t=61": second, "before 120": quiet, "sms": sms, "email": email}


async def test_the_spec_procedure_is_the_red_button(time_env: WorkflowEnvironment, line: Harness) -> None:
    everyone = ["alice", "bruno", "chloe", "dan"]
    pressed = await observe(time_env, line, partial(line.launch, *everyone, welcome="Flood in hall B"))

    async def the_spec_procedure() -> Bridged:
        spec = await line.launch_procedure(
            "conference-call", {"body": "Flood in hall B", "Contacts.S001": ",".join(everyone)}
        )
        assert spec.pin is not None
        return Bridged(spec.workflow_id, spec.pin, spec.dial_in_number)

    launched = await observe(time_env, line, the_spec_procedure)
    assert launched == pressed
    assert pressed["t=0"] == sorted(WORK.values()) and pressed["before 120"] == []
    subject, text = pressed["email"][0][1:]
    assert subject == "Invitation Conference Call - Pin"
    assert text == (
        'To join the conference call "Flood in hall B", please call n°+41 21 555 01 00 '
        "and enter the pin code <PIN>."
    )


async def test_a_conference_objective_reached_ends_the_step_early(
    time_env: WorkflowEnvironment, line: Harness, tmp_path: Path
) -> None:
    half = yaml.safe_load((EXAMPLES / "procedures" / "conference-call.yaml").read_text())
    half["steps"][0]["percent"] = 50
    definitions = definitions_with(tmp_path, {**half, "name": "half"})
    launched = await line.launch_procedure("half", {"Contacts.S001": "alice,bruno"}, definitions=definitions)
    report = await eventually(lambda: line.roster(launched), lambda r: r.steps[0].ended_at is not None)
    assert (report.steps[0].reached, report.steps[0].counted, report.steps[0].needed) == (True, 1, 1)
    ended_at = report.steps[0].ended_at
    assert ended_at and ended_at - report.started_at < timedelta(seconds=5), "ended on reaching, not at 2 min"
    await eventually(
        lambda: line.roster(launched), lambda r: sum(len(p.notifications) for p in r.people) == 4
    )
    await at(time_env, report, 65)
    assert (await line.roster(launched)).state == "running", "the bridge stays open after the step"
    assert "+41215550112" not in line.called_numbers(), "step over: no home call for bruno"
    await finish(line, launched)


def acknowledged(view: RunView, person_id: str) -> bool:
    """Whether they acknowledged; a batch's people show once it has started."""
    return any(p.id == person_id and p.acknowledged_at is not None for p in view.people)


async def test_acknowledgement_reached_and_not_reached(
    time_env: WorkflowEnvironment, line: Harness, tmp_path: Path
) -> None:
    definitions = definitions_with(tmp_path, ACK)
    launched = await line.launch_procedure(
        "acknowledge", {"body": "smoke", "Contacts.S001": "alice,bruno"}, definitions=definitions
    )
    report = await eventually(lambda: line.roster(launched), lambda r: acknowledged(r, "alice"))
    assert not acknowledged(report, "bruno"), "bruno answered nothing (no answer at work)"
    await at(time_env, report, 121)
    report = await eventually(lambda: line.roster(launched), lambda r: r.steps[0].ended_at is not None)
    assert (report.steps[0].reached, report.steps[0].counted, report.steps[0].needed) == (False, 1, 2)
    await eventually(line.texted_numbers, lambda texted: len(texted) == 2)
    bodies = {e["to"]: e["body"] for e in line.carrier_entries("sms")}
    assert bodies["+41795550101"] == "Alert smoke closed. Thank you Alice Martin."
    assert {e["to"] for e in line.carrier_entries("call")} == {WORK["alice"], WORK["bruno"], "+41215550112"}

    half = {**ACK, "name": "acknowledge-half", "steps": [{**ACK["steps"][0], "percent": 50}]}
    definitions = definitions_with(tmp_path / "again", half)
    launched = await line.launch_procedure(
        "acknowledge-half", {"body": "smoke", "Contacts.S001": "alice,bruno"}, definitions=definitions
    )
    report = await eventually(lambda: line.roster(launched), lambda r: r.steps[0].ended_at is not None)
    assert report.steps[0].reached is True, "half of two: alice's 1 is enough"
    step_over = report.steps[0].ended_at - report.started_at  # type: ignore[operator]
    await at(time_env, report, (step_over + timedelta(minutes=10, seconds=1)).total_seconds())
    final = await line.handle(launched).result()
    step_ended, closed = final.steps[0].ended_at, final.ended_at
    assert final.state == "ended" and step_ended and closed
    assert timedelta(minutes=10) <= closed - step_ended < timedelta(minutes=10, seconds=1), (
        "without a bridge, the run closes ten minutes after its last step"
    )
    keep("acknowledgement_run", await line.handle(launched).fetch_history())
    batch = line.client.get_workflow_handle(final.batches[0].workflow_id)
    keep("acknowledgement_batch", await batch.fetch_history())


async def test_information_is_reached_when_messages_are_delivered(
    time_env: WorkflowEnvironment, line: Harness, tmp_path: Path
) -> None:
    definitions = definitions_with(tmp_path, INFO)
    launched = await line.launch_procedure(
        "inform", {"body": "22:00-23:00", "Contacts.S001": "alice,dan"}, definitions=definitions
    )
    report = await eventually(lambda: line.roster(launched), lambda r: r.steps[0].ended_at is not None)
    assert report.steps[0].reached is True and report.steps[0].counted == 2
    assert all(p.delivered_at is not None for p in report.people)
    texts = {e["to"]: e["body"] for e in line.carrier_entries("sms")}
    assert texts == {
        "+41795550101": "Planned outage tonight: 22:00-23:00",
        "+41795550104": "Planned outage tonight: 22:00-23:00",
    }
    assert [m["Subject"] for m in line.mailbox.messages()] == ["Information"], "dan has no email address"
    assert line.called_numbers() == [], "the NOTIFY scheme calls nobody"


async def test_an_answer_after_the_deadline_is_too_late(
    time_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    slow = Scenario(ring_seconds=1.0, numbers={WORK["alice"]: NumberPlan(answer="answer", press="1")})
    quick = {**ACK, "name": "quick", "steps": [{**ACK["steps"][0], "deadline": "30s"}]}
    definitions = definitions_with(tmp_path, quick)
    async with harness(time_env.client, tmp_path, contacts_file, slow) as h, h.worker():
        launched = await h.launch_procedure(
            "quick", {"body": "x", "Contacts.S001": "alice"}, definitions=definitions
        )
        report = await eventually(
            lambda: h.roster(launched), lambda r: bool(r.people and r.people[0].attempts)
        )
        await at(time_env, report, 31)  # the deadline passes while the phone still rings (1 s, real time)
        report = await eventually(
            lambda: h.roster(launched), lambda r: r.people[0].acknowledged_at is not None
        )
        alice = report.people[0]
        assert alice.too_late == ["001"]
        assert (report.steps[0].reached, report.steps[0].counted) == (False, 0), "too late does not count"


async def test_deputies_are_called_into_the_same_bridge_only_when_the_team_falls_short(
    time_env: WorkflowEnvironment, line: Harness
) -> None:
    fields = {"body": "fire", "Contacts.S001": "alice,chloe", "Contacts.S002": "bruno,dan"}
    launched = await line.launch_procedure("crisis-with-deputies", fields)
    report = await started(line, launched)
    await at(time_env, report, 121)
    report = await eventually(lambda: line.roster(launched), lambda r: r.steps[1].started_at is not None)
    assert (report.steps[0].reached, report.steps[0].counted, report.steps[0].needed) == (False, 1, 2)
    await at(time_env, report, 182)
    report = await eventually(lambda: line.roster(launched), lambda r: r.steps[1].ended_at is not None)
    assert report.steps[1].reached is True, "half of the deputies came in"
    deputies = [p for p in report.people if p.id in ("bruno", "dan")]
    assert all(a.attempt_id.startswith("002/") for p in deputies for a in p.attempts)
    assert any(p.in_conference for p in deputies), "in the same bridge as alice"
    assert [p.id for p in report.people if p.in_conference and p.id == "alice"] == ["alice"]
    await finish(line, launched)

    fields = {"body": "fire", "Contacts.S001": "alice,bruno", "Contacts.S002": "chloe"}
    launched = await line.launch_procedure("crisis-with-deputies", fields)
    report = await started(line, launched)
    await at(time_env, report, 62)
    report = await eventually(lambda: line.roster(launched), lambda r: r.steps[1].skipped)
    assert report.steps[0].reached and report.steps[1].started_at is None, "everyone came: no deputies"
    await finish(line, launched)


async def test_a_destination_the_scheme_cannot_reach_is_refused_at_launch(
    time_env: WorkflowEnvironment, line: Harness, tmp_path: Path
) -> None:
    """A landline given to a step that only texts and mails: refused by name before anything
    starts, not launched to be silently "not reached"."""
    definitions = definitions_with(tmp_path, INFO)
    fields = {"body": "tonight", "Contacts.S001": "alice,+41215550120"}
    with pytest.raises(InvalidLaunch) as refused:
        await line.launch_procedure("inform", fields, definitions=definitions)
    assert "contact '+41215550120' (step 001): has no mobile or email for scheme NOTIFY" in str(refused.value)
    assert line.texted_numbers() == [] and line.mailbox.messages() == [], "nobody was told anything"


async def test_a_mail_server_down_never_holds_up_the_escalation(
    time_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    async with harness(time_env.client, tmp_path, contacts_file) as h, h.worker(smtp_port=free_port()):
        fields = {"body": "fire", "Contacts.S001": "alice,chloe", "Contacts.S002": "bruno"}
        launched = await h.launch_procedure("crisis-with-deputies", fields)
        report = await started(h, launched)
        await at(time_env, report, 122)
        report = await eventually(lambda: h.roster(launched), lambda r: r.steps[1].started_at is not None)
        step_two = report.steps[1].started_at
        assert step_two and step_two - report.started_at < timedelta(seconds=121), "deputies called on time"
        assert not any(n.channel == "email" for p in report.people for n in p.notifications)
        assert sorted(h.texted_numbers()) == ["+41795550101", "+41795550103"], "the SMS went out all the same"
        await finish(h, launched)
