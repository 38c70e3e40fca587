"""The console's parts without a server: accounts and their CLI, sessions, where a launch
refusal is shown, the report's rows, and the runs list's filters."""

from __future__ import annotations

import csv
import io
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from multidict import MultiDict

from config import Settings
from console.__main__ import manage_users, parser
from console.auth import AccountError, Users
from console.demo import demo_sign_in
from console.forms import FilledForm, place
from console.report import report_csv, report_rows
from console.runs import RunFilter
from console.sessions import Session, SessionCodec
from domain.run_view import (
    CallAttempt,
    ModerationRecord,
    Notification,
    PersonView,
    PinAttempt,
    RunView,
    StepView,
)
from launching import check_form, prepare, red_button
from tests.support import DEFINITIONS

ROOT = Path(__file__).resolve().parent.parent
FAST_HASHES = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def users(tmp_path: Path) -> Users:
    return Users(tmp_path / "users.json", FAST_HASHES)


def test_accounts_hold_argon2_hashes_only_and_verify_passwords(tmp_path: Path) -> None:
    accounts = users(tmp_path)
    accounts.add("lea", "launcher", "correct horse battery")
    stored = (tmp_path / "users.json").read_text()
    assert "correct horse" not in stored and "$argon2id$" in stored
    assert stat.S_IMODE(os.stat(tmp_path / "users.json").st_mode) == 0o600
    assert accounts.verify("lea", "correct horse battery") is not None
    assert accounts.verify("lea", "wrong horse battery") is None
    assert accounts.verify("nobody", "correct horse battery") is None
    with pytest.raises(AccountError, match="exists"):
        accounts.add("lea", "viewer", "another long one")
    with pytest.raises(AccountError, match="role"):
        accounts.add("max", "boss", "another long one")
    with pytest.raises(AccountError, match="at least 10"):
        accounts.add("max", "viewer", "short")


def test_an_account_removed_or_changed_in_the_file_is_seen_at_once(tmp_path: Path) -> None:
    console_view, cli_view = users(tmp_path), users(tmp_path)
    cli_view.add("lea", "launcher", "correct horse battery")
    assert console_view.get("lea") is not None and console_view.get("lea").can_launch  # type: ignore[union-attr]
    cli_view.remove("lea")
    assert console_view.get("lea") is None


def test_a_weak_old_hash_is_upgraded_on_sign_in(tmp_path: Path) -> None:
    users(tmp_path).add("lea", "viewer", "correct horse battery")
    stronger = Users(tmp_path / "users.json", PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    before = stronger.get("lea").password_hash  # type: ignore[union-attr]
    assert stronger.verify("lea", "correct horse battery") is not None
    after = stronger.get("lea").password_hash  # type: ignore[union-attr]
    assert after != before and "t=2" in after


def test_users_command_adds_lists_and_removes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts = users(tmp_path)

    def command(*args: str, stdin: str = "") -> tuple[int, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = manage_users(accounts, parser().parse_args(["users", *args]))
        return code, capsys.readouterr().out

    assert command(
        "add", "ops", "--role", "administrator", "--password-stdin", stdin="a long password\n"
    ) == (0, f"added ops (administrator) to {accounts.path}\n")
    assert command("add", "ops", "--role", "viewer", "--password-stdin", stdin="x" * 12)[0] == 2
    assert command("list")[1].split() == ["ops", "administrator"]
    assert accounts.verify("ops", "a long password") is not None
    assert command("remove", "ops") == (0, "removed ops\n")
    assert command("remove", "ops")[0] == 2


def test_python_m_console_users_runs_on_the_configured_file(tmp_path: Path) -> None:
    users(tmp_path).add("lea", "launcher", "correct horse battery")
    env = {**os.environ, "RALLYCALL_USERS_FILE": str(tmp_path / "users.json")}
    listed = subprocess.run([sys.executable, "-m", "console", "users", "list"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (listed.returncode, listed.stdout.split()) == (0, ["lea", "launcher"])


def test_demo_account_only_while_no_real_account_exists(tmp_path: Path) -> None:
    accounts = users(tmp_path)
    first = demo_sign_in(accounts)
    assert first is not None and first[0] == "demo"
    second = demo_sign_in(accounts)
    assert second is not None and second[1] != first[1], "a fresh password at every start"
    assert accounts.verify("demo", second[1]) is not None and accounts.verify("demo", first[1]) is None
    assert accounts.get("demo").role == "launcher"  # type: ignore[union-attr]
    accounts.add("lea", "launcher", "correct horse battery")
    assert demo_sign_in(accounts) is None


def test_sessions_are_signed_and_expire_from_sign_in() -> None:
    now = [1_000_000.0]
    codec = SessionCodec("secret", lifetime=timedelta(hours=12), clock=lambda: now[0])
    session = Session()
    session.sign_in("lea", codec.now())
    cookie = codec.dumps(session)
    assert codec.loads(cookie).user == "lea"
    assert codec.loads(cookie).csrf == session.csrf
    assert codec.loads(cookie[:-2] + "xx").user is None, "an altered cookie is a new anonymous session"
    assert SessionCodec("another secret").loads(cookie).user is None
    now[0] += 12 * 3600 + 1
    expired = codec.loads(cookie)
    assert expired.user is None and expired.expired and expired.csrf != session.csrf
    stale = SessionCodec("secret", lifetime=timedelta(seconds=-1))
    assert stale.loads(codec.dumps(session)).expired, "a cookie past its signature's age too"
    assert not stale.loads(codec.dumps(Session())).expired, "an anonymous one simply starts again"


def test_signing_in_changes_the_csrf_token() -> None:
    session = Session()
    before = session.csrf
    session.sign_in("lea", 0.0)
    assert session.csrf != before


RED = DEFINITIONS.procedure("conference-call")


def filled(*inputs: tuple[str, str]) -> FilledForm:
    """The red button's form as a browser posts it: (input name, value) pairs."""
    return FilledForm.read(RED, MultiDict(inputs))


def problems_of(form: FilledForm, tmp_path: Path, contacts: Path) -> list[str]:
    request = red_button(
        RED,
        DEFINITIONS.schemes,
        form.destinations("Contacts.S001"),
        form.text.get("body", ""),
        contacts_file=contacts,
    )
    try:
        prepare(request, Settings(_env_file=None, data_dir=tmp_path), pin="000000")
    except ValueError as exc:
        return list(getattr(exc, "problems", [str(exc)]))
    return []


def test_the_launchers_refusals_are_shown_beside_their_fields(tmp_path: Path, contacts_file: Path) -> None:
    form = filled(("c:Contacts.S001", "alice"), ("n:Contacts.S001", "+41 12\nzoe"), ("f:body", "fire"))
    assert form.destinations("Contacts.S001") == ["alice", "+41 12", "zoe"]
    placed = place(RED, form, problems_of(form, tmp_path, contacts_file))
    assert placed.general == []
    assert placed.by_field == {
        "Contacts.S001": [
            "destination '+41 12' is not a valid phone number",
            "unknown contact 'zoe' (known ids: alice, bruno, chloe, dan)",
        ]
    }, "the step is implied by the field"

    empty = filled(("f:body", "fire"))
    placed = place(RED, empty, check_form(RED, empty.fields()))
    assert placed.by_field == {"Contacts.S001": ["This is required."]}

    long_text = filled(("c:Contacts.S001", "alice"), ("f:body", "x" * 501))
    placed = place(RED, long_text, check_form(RED, long_text.fields()))
    assert placed.by_field == {"body": ["This is 501 characters; at most 500."]}


def test_a_problem_no_field_explains_stays_at_the_top() -> None:
    placed = place(RED, filled(), ["RALLYCALL_DIAL_IN_NUMBER: '+1' is not a valid phone number"])
    assert placed.general == ["RALLYCALL_DIAL_IN_NUMBER: '+1' is not a valid phone number"]


def test_with_two_contacts_fields_a_problem_goes_to_the_field_holding_it() -> None:
    deputies = DEFINITIONS.procedure("crisis-with-deputies")
    form = FilledForm.read(deputies, MultiDict([("c:Contacts.S001", "alice"), ("n:Contacts.S002", "zoe")]))
    placed = place(
        deputies,
        form,
        [
            "step 002: unknown contact 'zoe' (known ids: alice)",
            "destinations 'alice' and 'bruno' share the number +41215550101",
        ],
    )
    assert placed.by_field == {
        "Contacts.S002": ["unknown contact 'zoe' (known ids: alice)"],
        "Contacts.S001": ["destinations 'alice' and 'bruno' share the number +41215550101"],
    }


def test_the_form_survives_the_confirmation_page() -> None:
    form = filled(
        ("c:Contacts.S001", "alice"),
        ("c:Contacts.S001", "bruno"),
        ("n:Contacts.S001", "+41795550199"),
        ("f:body", "x"),
    )
    again = FilledForm.read(RED, MultiDict(form.hidden()))
    assert again == form and again.fields() == {"body": "x", "Contacts.S001": "alice,bruno,+41795550199"}


def a_run() -> RunView:
    alice = PersonView(
        id="alice",
        name="Alice Martin",
        in_conference=True,
        attempts=[
            CallAttempt(
                attempt_id="001/alice/0",
                medium="voice_pro",
                number="+41215550101",
                queued_at=T0,
                placed_at=T0 + timedelta(seconds=1),
                outcome="answered",
                call_sid="CA1",
                outcome_at=T0 + timedelta(seconds=4),
            )
        ],
        notifications=[
            Notification(channel="sms", to="+41795550101", sent_at=T0 + timedelta(minutes=2), step="001")
        ],
        joined_at=T0 + timedelta(seconds=4),
        rejoins=1,
    )
    return RunView(
        workflow_id="conference-1",
        state="ended",
        procedure="conference-call",
        title="Conference call",
        launched_by="lea",
        channel="web",
        ended_by="max",
        started_at=T0,
        ended_at=T0 + timedelta(minutes=5),
        end_reason="drill over",
        dial_in_number="+41215550100",
        steps=[StepView(number="001", objective="conference", percent=100, needed=1, counted=1)],
        people=[alice],
        pin_attempts=[
            PinAttempt(
                from_number="+41795550101",
                at=T0 + timedelta(minutes=3),
                accepted=True,
                participant_id="alice",
            )
        ],
        moderation=[ModerationRecord(at=T0 + timedelta(minutes=4), kind="mute", person_id="alice", by="lea")],
        recording_url="https://example.com/rec.mp3",
    )


def test_the_report_has_every_event_in_time_order() -> None:
    rows = report_rows(a_run())
    assert [row.event for row in rows] == [
        "launched",
        "call",
        "joined",
        "message",
        "pin",
        "moderation",
        "ended",
        "recording",
    ]
    launched, call, joined, message, pin, muted, ended, _ = rows
    assert (launched.by, launched.detail) == ("lea", "channel web")
    assert (call.at, call.medium, call.address, call.outcome, call.outcome_at, call.detail) == (
        T0 + timedelta(seconds=1),
        "work phone",
        "+41215550101",
        "answered",
        T0 + timedelta(seconds=4),
        "call CA1",
    )
    assert joined.detail == "rejoined 1 time(s)"
    assert (message.medium, message.detail) == ("SMS", "PIN invitation, step 001")
    assert (pin.person, pin.outcome) == ("Alice Martin", "accepted")
    assert (muted.outcome, muted.by, muted.person) == ("mute", "lea", "Alice Martin")
    assert (ended.by, ended.detail) == ("max", "drill over")

    table = list(csv.DictReader(io.StringIO(report_csv(a_run()))))
    assert (
        table[0]["at"] == "2026-11-26T09:00:00+00:00" and table[-1]["detail"] == "https://example.com/rec.mp3"
    )


def test_run_filters_make_safe_queries() -> None:
    query = RunFilter.read("running", "conference-call", "lea").query()
    assert query == (
        'WorkflowType="ProcedureRun" AND RallycallState="running" AND ExecutionStatus="Running" '
        'AND RallycallProcedure="conference-call" AND RallycallLaunchedBy="lea"'
    )
    assert "ExecutionStatus!=" in RunFilter.read("ended", "", "").query()
    with pytest.raises(ValueError, match="launched by"):
        RunFilter.read("", "", 'x" OR WorkflowType="PinLease')
    with pytest.raises(ValueError, match="state"):
        RunFilter.read("paused", "", "")
