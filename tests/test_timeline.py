"""The spec's timeline to the second, on the time-skipping server with the real activities,
simulator, callback server and SMTP: virtual time only moves when the test says so."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from carrier.simulator import Scenario
from directory import conference_with_pin, pin_lease_id
from domain.events import EndRequest, RejoinRequest
from domain.run_view import RunView
from tests.support import Harness, eventually, harness
from workflows.procedure_run import ProcedureRun

WORK = {"alice": "+41215550101", "bruno": "+41215550102", "chloe": "+41215550103"}
HOME = {"alice": "+41215550111", "bruno": "+41215550112", "chloe": "+41215550113", "dan": "+41215550114"}
MOBILES = ["+41795550101", "+41795550102", "+41795550103", "+41795550104"]


async def at(env: WorkflowEnvironment, report: RunView, seconds: float) -> None:
    """Skip virtual time to `seconds` after the conference started."""
    target = report.started_at + timedelta(seconds=seconds)
    await env.sleep(max(timedelta(0), target - await env.get_current_time()))


def outcomes(report: RunView, medium: str) -> dict[str, str]:
    return {p.id: a.outcome for p in report.people for a in p.attempts if a.medium == medium}


@pytest.fixture
async def conference_setup(time_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path):
    async with harness(time_env.client, tmp_path, contacts_file) as h, h.worker():
        yield h


async def test_work_phones_then_home_phones_at_one_minute_then_pins_at_two(
    time_env: WorkflowEnvironment, conference_setup: Harness
) -> None:
    h = conference_setup
    launched = await h.launch("alice", "bruno", "chloe", "dan", welcome="Datacenter fire")

    report = await eventually(
        lambda: h.roster(launched),
        lambda r: "pending" not in outcomes(r, "voice_pro").values() and r.in_bridge == 1,
    )
    assert sorted(h.called_numbers()) == sorted(WORK.values()), "t=0: every work phone, nothing else"
    assert outcomes(report, "voice_pro") == {"alice": "answered", "bruno": "no-answer", "chloe": "busy"}
    assert [p.id for p in report.people if p.in_conference] == ["alice"]

    await at(time_env, report, 59)
    assert sorted(h.called_numbers()) == sorted(WORK.values()), "t=59s: no home call yet"

    await at(time_env, report, 61)
    report = await eventually(
        lambda: h.roster(launched),
        lambda r: (
            set(outcomes(r, "voice_home")) == {"bruno", "chloe", "dan"}
            and "pending" not in outcomes(r, "voice_home").values()
            and r.in_bridge == 3
        ),
    )
    home_calls = h.called_numbers()[len(WORK) :]
    assert sorted(home_calls) == sorted([HOME["bruno"], HOME["chloe"], HOME["dan"]]), (
        "alice is in: not called"
    )
    assert outcomes(report, "voice_home") == {"bruno": "answered", "chloe": "machine", "dan": "answered"}
    assert sorted(p.id for p in report.people if p.in_conference) == ["alice", "bruno", "dan"]
    await eventually(lambda: h.carrier_entries("hangup"), lambda e: len(e) == 1)
    assert h.carrier_entries("hangup")[0]["to"] == HOME["chloe"], "the answering machine leg is hung up"

    await at(time_env, report, 119)
    assert h.texted_numbers() == [] and h.mailbox.messages() == [], "t=119s: no PIN yet"

    await at(time_env, report, 121)
    report = await eventually(
        lambda: h.roster(launched), lambda r: sum(len(p.notifications) for p in r.people) == 7
    )
    assert Counter(h.texted_numbers()) == Counter(MOBILES), "one SMS to every mobile, answered or not"
    sms_bodies = {e["body"] for e in h.carrier_entries("sms")}
    assert sms_bodies == {
        f"Conference call in progress. To join, dial +41 21 555 01 00 and enter PIN {launched.pin}."
    }

    emails = h.mailbox.messages()
    assert sorted(m["To"] for m in emails) == ["alice@example.com", "bruno@example.com", "chloe@example.com"]
    for email in emails:
        assert email["Subject"] == "Invitation Conference Call - Pin"
        text_part, html_part = email.get_body(("plain",)), email.get_body(("html",))
        assert text_part is not None and html_part is not None
        text, html = text_part.get_content(), html_part.get_content()
        assert 'To join the conference call "Datacenter fire", please call n°+41 21 555 01 00' in text
        assert f"enter the pin code {launched.pin}" in text
        assert f"enter the pin code {launched.pin}.</p>" in html and "&#34;Datacenter fire&#34;" in html
    dan = next(p for p in report.people if p.id == "dan")
    assert [n.channel for n in dan.notifications] == ["sms"], "no email address, no email"

    await h.handle(launched).execute_update(ProcedureRun.end, EndRequest())
    await h.handle(launched).result()


async def test_rejoin_with_pin_wrong_pin_and_guest(
    time_env: WorkflowEnvironment, conference_setup: Harness
) -> None:
    h = conference_setup
    launched = await h.launch("alice", "chloe")
    handle = h.handle(launched)
    report = await eventually(
        lambda: h.roster(launched), lambda r: "pending" not in outcomes(r, "voice_pro").values()
    )
    await at(time_env, report, 125)

    wrong = await handle.execute_update(
        ProcedureRun.rejoin, RejoinRequest(pin="000000", from_number=HOME["chloe"])
    )
    assert not wrong.accepted and wrong.reason == "wrong PIN"
    right = await handle.execute_update(
        ProcedureRun.rejoin, RejoinRequest(pin=launched.pin, from_number=HOME["chloe"])
    )
    assert right.accepted and right.participant_id == "chloe" and not right.guest
    guest = await handle.execute_update(
        ProcedureRun.rejoin, RejoinRequest(pin=launched.pin, from_number="+41797770000")
    )
    assert guest.accepted and guest.guest

    report = await h.roster(launched)
    chloe = next(p for p in report.people if p.id == "chloe")
    assert chloe.in_conference and chloe.joined_at is not None
    assert [(a.from_number, a.accepted) for a in report.pin_attempts] == [
        (HOME["chloe"], False),
        (HOME["chloe"], True),
        ("+41797770000", True),
    ]
    assert any(p.guest and p.in_conference for p in report.people)

    await handle.execute_update(ProcedureRun.end, EndRequest())
    await handle.result()


async def test_end_closes_the_bridge_releases_pin_and_refuses_later_rejoins(
    time_env: WorkflowEnvironment, conference_setup: Harness
) -> None:
    h = conference_setup
    launched = await h.launch("alice", "bruno")
    handle = h.handle(launched)
    await eventually(lambda: h.roster(launched), lambda r: r.people[0].in_conference)

    await handle.execute_update(ProcedureRun.end, EndRequest(reason="incident resolved"))
    final: RunView = await handle.result()

    assert final.state == "ended" and final.end_reason == "incident resolved"
    assert not any(p.in_conference for p in final.people)
    assert [e["room"] for e in h.carrier_entries("end-conference")] == [launched.workflow_id], "bridge ended"
    assert h.simulator.calls[final.people[0].attempts[0].call_sid or ""].status == "completed"
    assert sorted(h.called_numbers()) == [WORK["alice"], WORK["bruno"]], "ended before 1 min: no home call"
    await at(time_env, final, 300)
    assert h.texted_numbers() == [] and h.mailbox.messages() == [], "ended before 2 min: no PIN sent"
    lease = await h.client.get_workflow_handle(pin_lease_id(launched.pin, h.settings.pin_secret)).describe()
    assert lease.status == WorkflowExecutionStatus.COMPLETED, "the PIN is free for another conference"
    assert await conference_with_pin(h.client, h.settings.pin_secret, launched.pin) is None
    with pytest.raises(RPCError) as refused:
        await handle.execute_update(
            ProcedureRun.rejoin, RejoinRequest(pin=launched.pin, from_number=WORK["alice"])
        )
    assert refused.value.status == RPCStatusCode.NOT_FOUND


async def test_ending_stops_phones_still_ringing(
    time_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    slow_phones = Scenario(ring_seconds=30, default="answer")
    async with harness(time_env.client, tmp_path, contacts_file, slow_phones) as h, h.worker():
        launched = await h.launch("alice")
        handle = h.handle(launched)
        await eventually(
            lambda: h.roster(launched),
            lambda r: bool(r.people[0].attempts) and r.people[0].attempts[0].call_sid is not None,
        )
        await handle.execute_update(ProcedureRun.end, EndRequest())
        final = await handle.result()
        assert [e["to"] for e in h.carrier_entries("hangup")] == [WORK["alice"]], (
            "the ringing phone is hung up"
        )
        attempt = final.people[0].attempts[0]
        assert attempt.outcome == "no-answer" and "still ringing when the run ended" in (attempt.error or "")


async def test_maximum_duration_ends_the_conference(
    time_env: WorkflowEnvironment, conference_setup: Harness
) -> None:
    h = conference_setup
    launched = await h.launch("alice", max_duration=timedelta(minutes=30))
    report = await eventually(
        lambda: h.roster(launched), lambda r: outcomes(r, "voice_pro") == {"alice": "answered"}
    )
    await at(time_env, report, 29 * 60)
    assert (await h.roster(launched)).state == "running"
    await at(time_env, report, 30 * 60 + 1)
    final: RunView = await h.handle(launched).result()
    assert final.end_reason == "maximum duration reached"
    assert final.ended_at is not None
    assert timedelta(minutes=30) <= final.ended_at - final.started_at < timedelta(minutes=30, seconds=1)
    assert not any(p.in_conference for p in final.people)


def placed_at_least(count: int, calls: list[str]) -> bool:
    return len(calls) >= count
