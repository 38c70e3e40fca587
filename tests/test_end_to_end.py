"""The whole flow on the real dev server in real time: launch, callbacks, fallback, PIN by SMS
and email, rejoin, end, final report, and a replay of the recorded history."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree

from temporalio.testing import WorkflowEnvironment

from directory import caller_key, pin_lease_id
from domain.events import EndRequest, RejoinRequest
from domain.run_view import RunView
from tests.histories import keep, replayer
from tests.support import FAST, eventually, harness
from workflows.caller_index import shard_id
from workflows.procedure_run import ProcedureRun


async def test_full_flow_with_callbacks_fallback_pins_rejoin_and_end(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    async with harness(dev_env.client, tmp_path, contacts_file) as h, h.worker():
        launched = await h.launch(
            "alice", "bruno", "chloe", "dan", definitions=FAST, welcome="Flood in hall B", record=True
        )
        handle = h.handle(launched)

        report = await eventually(
            lambda: h.roster(launched),
            lambda r: sum(len(p.notifications) for p in r.people) == 7,
            seconds=20,
        )
        people = {p.id: p for p in report.people}
        assert [a.outcome for a in people["alice"].attempts] == ["answered"]
        assert [(a.medium, a.outcome) for a in people["bruno"].attempts] == [
            ("voice_pro", "no-answer"),
            ("voice_home", "answered"),
        ]
        assert [a.outcome for a in people["chloe"].attempts] == ["busy", "machine"]
        assert [(a.medium, a.outcome) for a in people["dan"].attempts] == [("voice_home", "answered")]
        for person in report.people:
            for attempt in person.attempts:
                assert attempt.placed_at is not None, (person.id, attempt)
                offset = attempt.placed_at - report.started_at
                expected = timedelta(0) if attempt.medium == "voice_pro" else timedelta(seconds=2)
                assert expected <= offset < expected + timedelta(seconds=1), (person.id, attempt)
            for note in person.notifications:
                assert timedelta(seconds=4) <= note.sent_at - report.started_at < timedelta(seconds=6)
        assert all(a.call_sid and a.call_sid.startswith("CA") for p in report.people for a in p.attempts)
        assert Counter(h.texted_numbers()) == Counter(
            ["+41795550101", "+41795550102", "+41795550103", "+41795550104"]
        )
        assert len(h.mailbox.messages()) == 3

        for call in h.carrier_entries("call"):
            twiml = ElementTree.fromstring(call["twiml"])
            assert [child.tag for child in twiml] == ["Say", "Dial"], "the welcome is spoken first"
            assert twiml[0].text == "Flood in hall B"
            conference = twiml.find("Dial/Conference")
            assert conference is not None and conference.text == launched.workflow_id, (
                "one bridge per conference"
            )
            assert conference.get("record") == "record-from-start"
            assert call["timeout"] == "1" and call["from"] == launched.dial_in_number

        chloe_back = await handle.execute_update(
            ProcedureRun.rejoin, RejoinRequest(pin=launched.pin, from_number="+41795550103")
        )
        assert chloe_back.accepted and chloe_back.participant_id == "chloe"

        await handle.execute_update(ProcedureRun.end, EndRequest(reason="drill over"))
        final: RunView = await handle.result()
        assert final.state == "ended" and final.end_reason == "drill over"
        assert [e["to"] for e in h.carrier_entries("hangup")] == ["+41215550113"], "the answering machine"
        assert [e["room"] for e in h.carrier_entries("end-conference")] == [launched.workflow_id]
        assert not any(p.in_conference for p in final.people), "the bridge ended: everyone is out"
        assert final.recording_url and "/Recordings/RE" in final.recording_url, "recorded, URL in the report"

        history = await handle.fetch_history()
        await replayer().replay_workflow(history)
        keep("conference_full_flow", history)
        lease = h.client.get_workflow_handle(pin_lease_id(launched.pin, h.settings.pin_secret))
        keep("pin_lease", await lease.fetch_history())
        chloe = shard_id(h.settings.task_queue, caller_key("+41795550103", h.settings.pin_secret))
        keep("caller_index_shard", await h.client.get_workflow_handle(chloe).fetch_history())
