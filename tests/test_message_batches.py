"""A deadline's messages go out in batches, one activity per channel, and a batch still treats
each message as its own: a number the carrier refuses is given up alone, a carrier error is
retried for the messages it hit, and a retry never sends a message twice (the carrier's journal
and the mailbox say so)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from tests.support import FAST, SCENARIO, eventually, harness

ALICE_MOBILE, BRUNO_MOBILE, CHLOE_MOBILE = "+41795550101", "+41795550102", "+41795550103"


async def test_each_message_of_a_batch_is_sent_once_or_refused_alone(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    faults = {
        ALICE_MOBILE: ["server-error", "lost-response"],  # a 500, then sent with its answer lost
        BRUNO_MOBILE: ["21614"],  # not a mobile number: refused for good
    }
    scenario = SCENARIO.model_copy(update={"faults": faults})
    async with harness(dev_env.client, tmp_path, contacts_file, scenario) as h, h.worker():
        launched = await h.launch("alice", "bruno", "chloe", definitions=FAST)
        report = await eventually(
            lambda: h.roster(launched),
            lambda r: (
                {p.id for p in r.people if any(n.channel == "sms" for n in p.notifications)}
                == {"alice", "chloe"}
            ),
            30,
        )
        await eventually(lambda: len(h.mailbox.messages()), lambda n: n >= 3, 30)

        assert Counter(h.texted_numbers()) == {ALICE_MOBILE: 1, CHLOE_MOBILE: 1}, (
            "alice's SMS once, after a 500 and a lost answer; bruno's refused, never retried"
        )
        assert sorted(m["To"] for m in h.mailbox.messages()) == [
            "alice@example.com",
            "bruno@example.com",
            "chloe@example.com",
        ], "bruno still gets his PIN by email"
        assert not any(n.channel == "sms" for n in report.person("bruno").notifications)

        history = await h.handle(launched).fetch_history()
        scheduled = Counter(
            e.activity_task_scheduled_event_attributes.activity_type.name
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        )
        assert (scheduled["send_sms_batch"], scheduled["send_email_batch"]) == (1, 1), scheduled
        assert (scheduled["send_sms"], scheduled["send_email"]) == (0, 0), "one activity per channel"
