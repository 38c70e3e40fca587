"""Expected against seen, person by person, for crash tests and chaos drills: what each person
should have got by the plan and the carrier's scenario, and what the outside world recorded.

The outside world's word only: the carrier's journal (every call placed and SMS sent), the
mailbox (one `.eml` per Message-ID, and in its log every copy of one it already had: a
recipient sees a copy as a second email, so it counts as twice) and the carrier's rooms (who is
really in the bridge). The run's own roster is never counted: it is what is being
checked, through the single column that quotes what `status` says.

Expectations follow the CONFCALL scheme in a step with a bridge: the work phone, then the home
phone if the work phone did not answer; the PIN by SMS and email at the step's end; the way
back by SMS after each hang-up (`after_drop: sms`); in the bridge at the end if a call answered
and that person did not hang up. The way back is told from the PIN invitation by its opening,
the plain `DEFAULT_WAY_BACK`: give the PIN SMS a personal field (`#{Contact.Name}`, as
`stack.chaos.compressed_definitions` does), or the way back repeats the invitation's text.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import aiohttp

from carrier.simulator.scenario import Scenario
from config import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN
from launching import DEFAULT_WAY_BACK

WAY_BACK_OPENING = DEFAULT_WAY_BACK.split("#{", 1)[0]
"""How the SMS sent after a drop begins; any other SMS of a run is its PIN invitation."""
DUPLICATE_DELIVERY = re.compile(r"duplicate delivery of (<[^>]*>) dropped")
"""The mailbox's log line for a copy of a Message-ID it already stored (`localmail.server`)."""


@dataclass(frozen=True)
class Person:
    """A destination of a drill: their numbers and email (each unique across the drill)."""

    id: str
    name: str
    work: str | None = None
    home: str | None = None
    mobile: str | None = None
    email: str | None = None

    def contact(self) -> dict[str, str]:
        """As a contacts file entry."""
        entry = {"id": self.id, "name": self.name, "voice_pro": self.work, "voice_home": self.home,
                 "mobile": self.mobile, "email": self.email}  # fmt: skip
        return {key: value for key, value in entry.items() if value}


@dataclass(frozen=True)
class Expected:
    work_calls: int
    home_calls: int
    pin_sms: int
    way_back_sms: int
    emails: int
    in_bridge: bool


def expected(person: Person, scenario: Scenario) -> Expected:
    """What CONFCALL in a bridge step owes this person, given how their phones behave."""
    answers_at_work = person.work is not None and scenario.plan(person.work).answer == "answer"
    home_called = person.home is not None and not answers_at_work
    answered = person.work if answers_at_work else person.home if home_called else None
    answered_plan = scenario.plan(answered) if answered else None
    reached = answered_plan is not None and answered_plan.answer == "answer"
    hangs_up = reached and answered_plan is not None and answered_plan.hangup_after_s is not None
    return Expected(
        work_calls=int(person.work is not None),
        home_calls=int(home_called),
        pin_sms=int(person.mobile is not None),
        way_back_sms=int(hangs_up and person.mobile is not None),
        emails=int(person.email is not None),
        in_bridge=reached and not hangs_up,
    )


@dataclass(frozen=True)
class Seen:
    work_calls: int
    home_calls: int
    pin_sms: int
    way_back_sms: int
    emails: int
    """Emails delivered to them, copies of a Message-ID included: a recipient sees each."""
    email_copies: int
    """Of those, deliveries of a Message-ID already delivered (a retry's copy)."""
    in_bridge: bool
    """In the carrier's room, by one of their calls."""
    in_status: bool | None
    """What `status --json` says (None: not asked)."""


class Outside:
    """The outside world's records, read once: the carrier's journal, the mailbox's folder and
    the mailbox's log (for copies it dropped)."""

    def __init__(self, journal: Path, mail_dir: Path, mailbox_log: str = "") -> None:
        lines = journal.read_text(encoding="utf-8").splitlines() if journal.exists() else []
        self.entries: list[dict[str, Any]] = [json.loads(line) for line in lines if line.strip()]
        self.mail: dict[str, set[str]] = {}
        """Each recipient's Message-IDs, one stored file each."""
        recipient_of: dict[str, str] = {}
        for path in sorted(mail_dir.glob("*.eml")) if mail_dir.exists() else []:
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            recipient_of[str(message["Message-ID"])] = str(message["To"])
            self.mail.setdefault(str(message["To"]), set()).add(str(message["Message-ID"]))
        self.copies: Counter[str] = Counter(
            recipient_of.get(match[1], "?") for match in DUPLICATE_DELIVERY.finditer(mailbox_log)
        )
        """Each recipient's copies the mailbox dropped, having stored their Message-ID already."""

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [entry for entry in self.entries if entry["kind"] == kind]

    def calls_to(self, number: str | None) -> list[str]:
        """SIDs of the calls placed to this number."""
        return [entry["sid"] for entry in self.of("call") if number and entry["to"] == number]

    def texts_to(self, number: str | None) -> list[str]:
        return [entry["body"] for entry in self.of("sms") if number and entry["to"] == number]

    def invitations(self) -> int:
        """PIN invitations out so far: SMS (not the way back) and stored emails."""
        texts = [entry["body"] for entry in self.of("sms")]
        pins = sum(not body.startswith(WAY_BACK_OPENING) for body in texts)
        return pins + sum(len(ids) for ids in self.mail.values())

    def webhooks_not_taken(self) -> list[dict[str, Any]]:
        """Callbacks the carrier could not deliver: refused, failed, or lost in a paused window."""
        failed = [e for e in self.of("webhook") if e["status"] is None or e["status"] >= 400]
        return failed + self.of("webhook-lost")

    def untold(self, sid: str) -> list[str]:
        """The events about this call (or message, or room) that its callback never delivered."""
        return [entry["event"] for entry in self.webhooks_not_taken() if entry["sid"] == sid]

    def seen(self, person: Person, room: set[str], in_status: bool | None = None) -> Seen:
        texts = self.texts_to(person.mobile)
        way_back = sum(body.startswith(WAY_BACK_OPENING) for body in texts)
        their_calls = set(self.calls_to(person.work)) | set(self.calls_to(person.home))
        return Seen(
            work_calls=len(self.calls_to(person.work)),
            home_calls=len(self.calls_to(person.home)),
            pin_sms=len(texts) - way_back,
            way_back_sms=way_back,
            emails=len(self.mail.get(person.email or "", set())) + self.copies[person.email or ""],
            email_copies=self.copies[person.email or ""],
            in_bridge=bool(their_calls & room),
            in_status=in_status,
        )


async def room_members(simulator_url: str, room: str) -> set[str]:
    """The call SIDs in the carrier's in-progress room of that name (the run's workflow ID),
    asked of its REST API as any Twilio client would."""
    base = f"{simulator_url.rstrip('/')}/2010-04-01/Accounts/{DEV_ACCOUNT_SID}"
    auth = aiohttp.BasicAuth(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN)
    async with aiohttp.ClientSession(auth=auth, raise_for_status=True) as session:
        query = {"FriendlyName": room, "Status": "in-progress"}
        async with session.get(f"{base}/Conferences.json", params=query) as response:
            conferences = (await response.json())["conferences"]
        members: set[str] = set()
        for conference in conferences:
            async with session.get(f"{base}/Conferences/{conference['sid']}/Participants.json") as response:
                members |= {p["call_sid"] for p in (await response.json())["participants"]}
        return members


COLUMNS = ("run", "person", "work", "home", "PIN SMS", "way back", "email", "bridge plan/carrier/status", "")
"""Counts are expected/seen; "(1 copy)": a delivery repeated a Message-ID (counted in seen)."""


@dataclass(frozen=True)
class Row:
    run: str
    person: Person
    expected: Expected
    seen: Seen

    def cells(self) -> tuple[str, ...]:
        e, s = self.expected, self.seen
        email = f"{e.emails}/{s.emails}" + (f" ({s.email_copies} copy)" if s.email_copies else "")
        bridge = "/".join(_in_out(v) for v in (e.in_bridge, s.in_bridge, s.in_status))
        counts = [(e.work_calls, s.work_calls), (e.home_calls, s.home_calls), (e.pin_sms, s.pin_sms),
                  (e.way_back_sms, s.way_back_sms)]  # fmt: skip
        return (self.run, self.person.id, *(f"{due}/{got}" for due, got in counts), email, bridge,
                "WRONG" if self.problems() else "ok")  # fmt: skip

    def problems(self) -> list[str]:
        """Each thing lost or doubled, in words; empty when this person got exactly their due."""
        found = []
        for what, due, got in (
            ("work call", self.expected.work_calls, self.seen.work_calls),
            ("home call", self.expected.home_calls, self.seen.home_calls),
            ("PIN SMS", self.expected.pin_sms, self.seen.pin_sms),
            ("way-back SMS", self.expected.way_back_sms, self.seen.way_back_sms),
            ("email", self.expected.emails, self.seen.emails),
        ):
            if got < due:
                found.append(f"{what} lost ({got} of {due})")
            elif got > due:
                found.append(f"{what} {'doubled' if due else 'unwanted'} ({got}, expected {due})")
        if self.seen.in_bridge != self.expected.in_bridge:
            found.append(f"carrier's room says {'in' if self.seen.in_bridge else 'out'}, the plan says "
                         f"{'in' if self.expected.in_bridge else 'out'}")  # fmt: skip
        if self.seen.in_status is not None and self.seen.in_status != self.seen.in_bridge:
            found.append(f"status says {'in' if self.seen.in_status else 'out'} of the bridge, the carrier "
                         f"{'in' if self.seen.in_bridge else 'out'}")  # fmt: skip
        return found


@dataclass
class Tally:
    rows: list[Row] = field(default_factory=list)

    def add(
        self,
        run: str,
        people: Iterable[Person],
        scenario: Scenario,
        outside: Outside,
        room: set[str],
        status: Mapping[str, bool] | None = None,
    ) -> None:
        """`status`: each person's `in_conference` as `status --json` printed it."""
        for person in people:
            in_status = status.get(person.id) if status is not None else None
            seen = outside.seen(person, room, in_status)
            self.rows.append(Row(run, person, expected(person, scenario), seen))

    def problems(self) -> list[str]:
        return [f"{row.run} {row.person.id}: {p}" for row in self.rows for p in row.problems()]

    def table(self) -> str:
        """One line per person: expected/seen of each channel, the bridge's truth, a verdict."""
        lines = [COLUMNS] + [row.cells() for row in self.rows]
        widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
        rendered = [
            "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in lines
        ]
        rendered.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
        return "\n".join(rendered)


def _in_out(value: bool | None) -> str:
    return "-" if value is None else "in" if value else "out"
