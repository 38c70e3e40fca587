"""Someone who drops out of the bridge is not lost: the way back (dial-in number and PIN) by SMS
at once, once per drop, or a call back if the procedure says so; a removal by a moderator or the
end of the conference is no drop; a drop whose callbacks were lost is learnt from the carrier."""

from __future__ import annotations

from pathlib import Path

import yaml
from temporalio.testing import WorkflowEnvironment

from carrier.simulator.client import open_fault_windows
from carrier.simulator.scenario import NumberPlan
from config import EXAMPLES
from domain.events import EndRequest, ModeratorAction
from procedures.definitions import Definitions, load_definitions
from tests.support import SCENARIO, Bridged, Harness, confcall_in_seconds, eventually, harness
from workflows.procedure_run import ProcedureRun

ALICE_WORK, ALICE_MOBILE = "+41215550101", "+41795550101"
DROPS_AFTER = SCENARIO.model_copy(
    update={"numbers": {**SCENARIO.numbers, ALICE_WORK: NumberPlan(answer="answer", hangup_after_s=1.0)}}
)


def with_after_drop(tmp_path: Path, after_drop: str) -> Definitions:
    folder = tmp_path / "definitions"
    (folder / "procedures").mkdir(parents=True)
    (folder / "schemes.yaml").write_text((EXAMPLES / "schemes.yaml").read_text())
    red = yaml.safe_load((EXAMPLES / "procedures" / "conference-call.yaml").read_text())
    (folder / "procedures" / "conference-call.yaml").write_text(
        yaml.safe_dump({**red, "after_drop": after_drop})
    )
    return load_definitions(folder)


async def alice_got_the_way_back_once(h: Harness, launched: Bridged) -> None:
    """Her way back by SMS, before any PIN invitation; the end then counts no second drop."""
    await eventually(
        lambda: h.roster(launched),
        lambda r: [n.purpose for n in r.person("alice").notifications if n.channel == "sms"] == ["rejoin"],
    )
    assert h.texted_numbers() == [ALICE_MOBILE], "the way back, before the PIN invitations"
    await h.handle(launched).execute_update(ProcedureRun.end, EndRequest())
    final = await h.handle(launched).result()
    assert final.person("alice").drops == 1, "one drop, one way back"


async def test_a_drop_gets_the_way_back_by_sms_at_once(
    time_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    async with harness(time_env.client, tmp_path, contacts_file, DROPS_AFTER) as h, h.worker():
        launched = await h.launch("alice", "bruno")
        view = await eventually(
            lambda: h.roster(launched), lambda r: r.person("alice").drops == 1, seconds=15
        )
        alice = view.person("alice")
        assert not alice.in_conference and alice.state == "left"
        sms = await eventually(lambda: h.carrier_entries("sms"), lambda e: len(e) == 1)
        assert sms[0]["to"] == ALICE_MOBILE
        assert sms[0]["body"] == (
            f"Conference call in progress. To join, dial +41 21 555 01 00 and enter PIN {launched.pin}."
        )
        view = await eventually(lambda: h.roster(launched), lambda r: r.person("alice").notifications != [])
        assert [(n.channel, n.purpose) for n in view.person("alice").notifications] == [("sms", "rejoin")]
        await h.handle(launched).execute_update(ProcedureRun.end, EndRequest())
        final = await h.handle(launched).result()
        assert final.person("alice").drops == 1
        rejoin_sms = [n for p in final.people for n in p.notifications if n.purpose == "rejoin"]
        assert len(rejoin_sms) == 1, "the end of the conference is no drop"


async def test_a_removal_is_no_drop_and_a_procedure_may_call_back_instead(
    time_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    async with harness(time_env.client, tmp_path, contacts_file, DROPS_AFTER) as h, h.worker():
        launched = await h.launch("alice", "bruno", definitions=with_after_drop(tmp_path, "call"))
        await eventually(lambda: h.roster(launched), lambda r: r.person("alice").drops == 1, seconds=15)
        view = await eventually(
            lambda: h.roster(launched), lambda r: r.person("alice").in_conference, seconds=15
        )
        assert [a.attempt_id for a in view.person("alice").attempts] == ["001/alice/0", "001/alice/again1"]
        assert h.called_numbers().count(ALICE_WORK) == 2, "called back into the bridge on her work phone"
        assert h.texted_numbers() == [], "called back, not texted"
        await h.handle(launched).execute_update(
            ProcedureRun.moderate, ModeratorAction(kind="remove", person_id="alice", by="ops")
        )
        await eventually(lambda: h.roster(launched), lambda r: not r.person("alice").in_conference)
        view = await h.roster(launched)
        assert view.person("alice").drops == 1, "removed by a moderator: no drop, no call back"
        await h.handle(launched).execute_update(ProcedureRun.end, EndRequest())
        await h.handle(launched).result()


async def test_a_drop_whose_callbacks_are_lost_gets_the_way_back_all_the_same(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    """She hangs up while the carrier's callbacks are lost (her room's leave and her call's end):
    reconciling before the home round, the run learns her call ended while she was in the bridge."""
    async with harness(dev_env.client, tmp_path, contacts_file, DROPS_AFTER) as h, h.worker():
        launched = await h.launch("alice", "bruno", definitions=confcall_in_seconds(home_after=4, deadline=8))
        await eventually(lambda: h.roster(launched), lambda r: r.person("alice").in_conference)
        await open_fault_windows(h.simulator_url, webhooks_paused_for_s=2)
        await eventually(lambda: h.roster(launched), lambda r: r.person("alice").drops == 1, seconds=15)
        lost = {e["event"] for e in h.carrier_entries("webhook-lost")}
        assert {"participant-leave", "call completed"} <= lost, "nobody told the run she left"
        await alice_got_the_way_back_once(h, launched)


async def test_a_call_answered_and_ended_while_no_callback_got_through_gets_the_way_back(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    """Every callback of her call is lost: its answer, her join, her leave, its end (`make chaos`
    found this with both callback servers down). The carrier says only that a person answered
    and the call is over; whether she had been in the bridge nobody can say, so she gets the way
    back at once rather than the PIN at the deadline."""
    async with harness(dev_env.client, tmp_path, contacts_file, DROPS_AFTER) as h, h.worker():
        await open_fault_windows(h.simulator_url, webhooks_paused_for_s=3)
        launched = await h.launch(
            "alice", "bruno", definitions=confcall_in_seconds(home_after=5, deadline=10)
        )
        view = await eventually(
            lambda: h.roster(launched), lambda r: r.person("alice").drops == 1, seconds=15
        )
        lost = {e["event"] for e in h.carrier_entries("webhook-lost")}
        assert {"participant-join", "participant-leave", "call completed"} <= lost, "nobody told the run"
        alice = view.person("alice")
        assert alice.attempts[0].outcome == "answered" and not alice.in_conference
        await alice_got_the_way_back_once(h, launched)
