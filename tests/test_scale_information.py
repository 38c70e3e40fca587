"""Thousands per procedure: an information step (SMS and email, no bridge) fans out to batch
workflows of 200, so no history passes Temporal's 10,240-event warning and no workflow has more
than its 2,000 pending activities, and `status` still accounts for everyone. 600 people (three
batches) here; `make bench` runs the 5,000."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from bench import population as pop
from bench import scale
from carrier.simulator import Scenario
from stack.loopback import eventually, harness
from watch import read_view

PEOPLE = 600


async def test_an_information_step_to_600_in_batches(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    contacts = pop.write_contacts(tmp_path / "contacts.yaml", pop.contacts(PEOPLE, phones=False))
    async with harness(dev_env.client, tmp_path, contacts, Scenario()) as h, h.worker():
        fields = {"body": "22:00-23:00", "Contacts.S001": ",".join(pop.person_id(n) for n in range(PEOPLE))}
        launched = await h.launch_procedure("inform", fields, definitions=scale.INFORMATION)
        view = await eventually(
            lambda: read_view(h.client, launched.workflow_id), lambda v: v.steps[0].ended_at is not None, 120
        )
        assert Counter(h.texted_numbers()) == Counter(pop.mobile(n) for n in range(PEOPLE)), "one SMS each"
        # each person counts as told by their first message: the emails may still be on their way
        await eventually(lambda: len(h.mailbox.messages()), lambda n: n >= PEOPLE, 60, every=0.5)
        mails = Counter(m["To"] for m in h.mailbox.messages())
        assert mails == Counter(pop.email(n) for n in range(PEOPLE)), "one email each"
        assert h.called_numbers() == [], "the NOTIFY scheme calls nobody"

        assert (view.steps[0].reached, view.steps[0].counted) == (True, PEOPLE)
        assert len(view.batches) == 3 and sum(b.size for b in view.batches) == PEOPLE
        assert len(view.people) == PEOPLE and all(p.delivered_at for p in view.people), "status sees all"
        ids = [launched.workflow_id, *(b.workflow_id for b in view.batches)]
        events, _, pending = await scale.history_figures(h.client, ids)
        assert events <= 10_240, "below Temporal's history warning in every workflow"
        assert pending <= scale.PENDING_ACTIVITIES_LIMIT
        assert await scale.end_information(h, launched.workflow_id, [b.workflow_id for b in view.batches]), (
            "end closes a run without a bridge during its late-answers wait"
        )
