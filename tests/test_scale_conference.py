"""250 in one bridge on the dev server as `make stack` starts it (default limits): a conference
at Twilio's bridge limit, everyone with all four media, through its whole timeline on a
compressed clock. What the outside world saw (the carrier's journal, the mailbox) is counted,
not what the workflow wrote down; then the roster must agree with it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from bench import population as pop
from carrier.simulator.client import place_inbound_call
from carrier.simulator.scenario import Behaviour
from directory import conferences_of_caller
from domain.events import EndRequest
from domain.run_view import RunView
from stack.loopback import eventually, harness
from tests.support import confcall_in_seconds
from workflows.procedure_run import ProcedureRun

PEOPLE = 250
TIMELINE = confcall_in_seconds(home_after=8, deadline=16)
"""The red button's timeline compressed: home phones at +8 s, the PIN SMS and email at +16 s;
twice what the worker, simulator, callback server and mailbox sharing one process on a loaded
2-core machine need (`make bench` measures the real timings)."""


def answers_at_work(n: int) -> Behaviour:
    return "answer" if n % 3 == 0 else ("busy" if n % 3 == 1 else "no-answer")


def answers_at_home(n: int) -> Behaviour:
    return "answer" if n % 3 == 1 else "no-answer"


def notified(report: RunView) -> int:
    return sum(len(p.notifications) for p in report.people)


async def test_250_people_with_all_four_media_run_the_whole_timeline_on_a_default_server(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    contacts = pop.write_contacts(tmp_path / "contacts.yaml", pop.contacts(PEOPLE))
    scenario = pop.scenario(PEOPLE, at_work=answers_at_work, at_home=answers_at_home, ring_seconds=0.5)
    async with harness(dev_env.client, tmp_path, contacts, scenario, calls_per_second=250) as h, h.worker():
        launched = await h.launch(*(pop.person_id(n) for n in range(PEOPLE)), definitions=TIMELINE)
        report = await eventually(lambda: h.roster(launched), lambda r: notified(r) == 2 * PEOPLE, 90)

        not_reached_at_work = {n for n in range(PEOPLE) if answers_at_work(n) != "answer"}
        calls = Counter(h.called_numbers())
        assert calls == Counter(
            [pop.work(n) for n in range(PEOPLE)] + [pop.home(n) for n in not_reached_at_work]
        ), "every work phone called once, home phones only of those not reached at work"
        assert Counter(h.texted_numbers()) == Counter(pop.mobile(n) for n in range(PEOPLE)), (
            "one PIN SMS each"
        )
        mails = Counter(m["To"] for m in h.mailbox.messages())
        assert mails == Counter(pop.email(n) for n in range(PEOPLE)), "one email each"
        assert all(launched.pin in e["body"] for e in h.carrier_entries("sms"))

        people = {p.id: p for p in report.people}
        assert len(people) == PEOPLE
        for n in range(PEOPLE):
            person = people[pop.person_id(n)]
            outcomes = [(a.medium, a.outcome) for a in person.attempts]
            home = [("voice_home", "answered" if answers_at_home(n) == "answer" else "no-answer")]
            work = [("voice_pro", {"answer": "answered"}.get(answers_at_work(n), answers_at_work(n)))]
            assert outcomes == work + (home if n in not_reached_at_work else []), n
            assert sorted(x.channel for x in person.notifications) == ["email", "sms"], n
        in_bridge = {p.id for p in report.people if p.in_conference}
        assert in_bridge == {pop.person_id(n) for n in range(PEOPLE) if n % 3 != 2}, "answered calls joined"

        # dial-in finds the run by the caller's number (one query of one index shard), never in clear
        for number in (pop.work(0), pop.home(PEOPLE - 1), pop.mobile(PEOPLE // 2)):
            assert await conferences_of_caller(
                h.client, h.settings.pin_secret, h.settings.task_queue, number
            ) == [launched.workflow_id]
        stranger = pop.work(PEOPLE)
        assert (
            await conferences_of_caller(h.client, h.settings.pin_secret, h.settings.task_queue, stranger)
            == []
        )
        wrong = (
            "1" * len(launched.pin) if launched.pin != "1" * len(launched.pin) else "2" * len(launched.pin)
        )
        caller = pop.mobile(PEOPLE - 1)
        answer = await place_inbound_call(h.simulator_url, caller, [wrong])
        assert answer["joined"] is None
        report = await eventually(lambda: h.roster(launched), lambda r: bool(r.pin_attempts))
        attempt = report.pin_attempts[0]
        assert (attempt.from_number, attempt.accepted, attempt.participant_id) == (
            caller,
            False,
            pop.person_id(PEOPLE - 1),
        ), "the wrong PIN is recorded on the run the caller belongs to"

        handle = h.handle(launched)
        await handle.execute_update(ProcedureRun.end, EndRequest())
        final = await handle.result()
        assert final.state == "ended" and not any(p.in_conference for p in final.people)
