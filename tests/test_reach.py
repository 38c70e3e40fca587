"""What the launch says about the carrier's rates: how long a step's calls and SMS take to go,
from its start, so a launcher warning a district knows when the last resident is texted."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bench import population as pop
from bench import scale
from config import Settings
from domain.capacity import reach, step_loads
from launching import LaunchRequest, prepare


def plan_for(tmp_path: Path, people: int, **contacts: bool) -> LaunchRequest:
    path = pop.write_contacts(tmp_path / "contacts.yaml", pop.contacts(people, **contacts))
    fields = {"body": "22:00-23:00", "Contacts.S001": ",".join(pop.person_id(n) for n in range(people))}
    inform = scale.INFORMATION.procedure("inform")
    return LaunchRequest(inform, scale.INFORMATION.schemes, fields, contacts_file=path)


def test_the_sms_of_a_big_step_go_at_the_accounts_rate(tmp_path: Path) -> None:
    plan = prepare(plan_for(tmp_path, 1_000, phones=False), Settings(_env_file=None), pin=None)
    [step] = reach(plan, step_loads(plan, calls_per_second=1), sms_per_second=100)
    assert (step.destinations, step.sms, step.emails, step.calls) == (1_000, 1_000, 1_000, 0)
    assert step.last_sms == timedelta(seconds=9.99) and not step.late
    assert "1000 SMS, the last leaving the carrier at +0:09" in step.describe()


def test_sms_the_rate_cannot_send_before_the_deadline_are_said_late(tmp_path: Path) -> None:
    plan = prepare(plan_for(tmp_path, 1_000, phones=False), Settings(_env_file=None), pin=None)
    [step] = reach(plan, step_loads(plan, calls_per_second=1), sms_per_second=1)
    assert step.last_sms is not None and step.last_sms > step.deadline and step.late
    assert "(the carrier's rates reach some late)" in step.describe()
