"""Thousands per procedure: an information step (SMS and email, no bridge) fans out to batch
workflows of 200, so no history passes Temporal's 10,240-event warning, no workflow has more
than its 2,000 pending activities, the run's result and view do not grow with the people, and
`status` still accounts for everyone. The people have a mobile and an email only. 600 people (three
batches) here; `make bench` runs the 5,000."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from bench import population as pop
from bench import scale
from carrier.simulator import Scenario
from stack.loopback import Harness, eventually, harness
from tests.support import run_starter
from watch import read_view

PEOPLE = 600
BOUNDED = 16 * 1024
"""The run's own result and view hold its steps and batches, never the batches' people: at 270
bytes a person they were 160 KiB here, and past 7,800 people over Temporal's 2 MB limit (the
run could not complete)."""


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
        await status_pages_account_for_everyone(dev_env, h, launched.workflow_id)
        answer = await scale.query_answer_bytes(h.client, launched.workflow_id, "view")
        assert answer < BOUNDED, f"the run's view is {answer} bytes: it lists the batches, not their people"
        ids = [launched.workflow_id, *(b.workflow_id for b in view.batches)]
        events, _, pending = await scale.history_figures(h.client, ids)
        assert events <= 10_240, "below Temporal's history warning in every workflow"
        assert pending <= scale.PENDING_ACTIVITIES_LIMIT
        assert await scale.end_information(h, launched.workflow_id, [b.workflow_id for b in view.batches]), (
            "end closes a run without a bridge during its late-answers wait"
        )
        result = await scale.result_bytes(h.client, launched.workflow_id)
        assert result < BOUNDED, f"the run's result is {result} bytes: it lists the batches, not their people"


async def status_pages_account_for_everyone(env: WorkflowEnvironment, h: Harness, run_id: str) -> None:
    """`status` streams everyone (JSON lines: the run, then a line a person), one document with
    everyone in it, or one page by state, in roster order, read from the batches that hold it."""
    code, out, err = await run_starter(env, h, "status", run_id, "--jsonl")
    assert code == 0, err
    head, *lines = [json.loads(line) for line in out.splitlines()]
    assert head["workflow_id"] == run_id and "people" not in head
    assert [p["id"] for p in lines] == [pop.person_id(n) for n in range(PEOPLE)], "everyone once, in order"
    code, out, err = await run_starter(env, h, "status", run_id, "--json")
    assert code == 0, err
    assert len(json.loads(out)["people"]) == PEOPLE
    code, out, err = await run_starter(env, h, "status", run_id, "--json", "--state", "reached",
                                       "--offset", "250", "--limit", "100")  # fmt: skip
    assert code == 0, err
    page = json.loads(out)
    assert (page["people_offset"], page["people_total"]) == (250, PEOPLE)
    ids = [p["id"] for p in page["people"]]
    assert ids == [pop.person_id(n) for n in range(250, 350)], "a page across two batches"
    code, out, err = await run_starter(env, h, "status", run_id, "--state", "not-reached", "--limit", "5")
    assert code == 0, err
    assert "people 1 and on, of 0:" in out, "nobody is left unreached"
    code, out, err = await run_starter(env, h, "status", run_id, "--limit", "5000")
    assert code == 2 and "argument --limit: '5000': a whole number from 0 to 1000" in err
