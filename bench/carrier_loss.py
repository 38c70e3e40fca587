"""`make chaos`, second drill (`python -m bench.carrier_loss`): the first carrier lost in the
middle of a conference, on the embedded dev server with two carriers on loopback, `twilio` (A)
first and `telnyx` (B, the simulator speaking Telnyx's API) second, each at 1 call a second.

    +0 s     the red button (the shipped definitions: home round at +1 min, deadline at +2 min)
             for 20 people, 19 answering their work phone on either carrier (ringing 4 s);
             the 20th answers nowhere, so the step runs to its deadline
    +30 s    A answers 503 to every API request (calls, conferences, SMS) and loses its bridge
    +330 s   A is back (the window ends); the drill watches for a minute more

The 20th person never answers, so the step's objective (100 %) is not reached before the
deadline: the PIN invitation (SMS and email) goes at +2 min, while A is down, as the issue's
drill wants it (a step whose objective is reached sends it then, and ends early).

Every figure comes from the outside world's records: each carrier's journal (`at`, `kind`) and
the mailbox; never from what the run wrote down. Only the last lines quote `status`, the run's
problems. The goals: the first call through B at most 10 s after A's first fault; everyone who
was in A's bridge in B's within 60 s (at B's rate); nobody called or messaged twice on the same
medium for the same purpose (the same SMS text, or email subject, to one recipient counts as
twice); every SMS with the PIN while A fails through B, with B's number. Exits 1 if a goal is
missed, someone is lost or something came twice. The journals, the mailbox, the drill's log and
the run's history (`history.json`) stay in the data folder.

The run asks its bridge's carrier at once when anyone drops out of the bridge, and every 10 s
while nobody does: the lost room's drops make it ask within a second, whenever the fault comes
(`--fault-at` moves it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import phonenumbers

from bench import population as pop
from launching import DEFAULT_WAY_BACK
from stack.dev_server import start_dev_env
from stack.loopback import BACKUP_NUMBER, Bridged, Harness, harness
from watch import NoWorker, read_view

PEOPLE = 20
ANSWERING = PEOPLE - 1
"""The last answers nowhere: the step waits for its deadline, where the PIN SMS go."""
CALLS_PER_SECOND = 1.0
"""Each carrier account's rate, the real default: B calls everyone back at this pace."""
RING_SECONDS = 4.0
"""How long each phone rings before it is answered."""
FAULT_AT = 30.0
OUTAGE = 300.0
WATCH_AFTER = 60.0
"""After A is back, how long the drill keeps watching."""
FIRST_CALL_GOAL = 10.0
EVERYONE_BACK_GOAL = 60.0
JOIN, LEAVE = "participant-join", "participant-leave"

Entry = dict[str, Any]


def read_journal(path: Path) -> list[Entry]:
    """A carrier's journal, whole lines only (it may be written to as it is read)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]


def at(entry: Entry) -> datetime:
    return datetime.fromisoformat(entry["at"])


def of(entries: Iterable[Entry], kind: str, since: datetime | None = None) -> list[Entry]:
    return [e for e in entries if e["kind"] == kind and (since is None or at(e) >= since)]


def numbers_called(entries: list[Entry]) -> dict[str, str]:
    """Each call's SID and the number it called."""
    return {e["sid"]: e["to"] for e in of(entries, "call")}


def in_bridge_at(entries: list[Entry], moment: datetime) -> set[str]:
    """The numbers in the carrier's bridge at `moment`, by its participant-join and -leave
    webhooks (a drill runs one bridge a carrier)."""
    inside: set[str] = set()
    for entry in of(entries, "webhook"):
        if at(entry) <= moment and entry["event"] == JOIN:
            inside.add(entry["sid"])
        elif at(entry) <= moment and entry["event"] == LEAVE:
            inside.discard(entry["sid"])
    called = numbers_called(entries)
    return {called.get(sid, sid) for sid in inside}


def first_joins(entries: list[Entry], since: datetime) -> dict[str, datetime]:
    """When each number first joined the carrier's bridge from `since`."""
    called, joined = numbers_called(entries), dict[str, datetime]()
    for entry in of(entries, "webhook", since):
        if entry["event"] == JOIN:
            joined.setdefault(called.get(entry["sid"], str(entry["sid"])), at(entry))
    return joined


@dataclass(frozen=True)
class Repeat:
    """One recipient who got the same thing more than once: each copy's carrier and moment."""

    medium: str
    to: str
    what: str
    """The SMS's text, the email's subject, the carrier a call went through."""
    copies: tuple[tuple[str, datetime | None], ...]


def repeats(a: list[Entry], b: list[Entry], mails: list[EmailMessage]) -> list[Repeat]:
    """Who got the same thing twice: a call to one number on one carrier, one SMS text to one
    number (on either carrier), one email subject to one address."""
    sent: dict[tuple[str, str, str], list[tuple[str, datetime | None]]] = {}
    for carrier, entries in (("A", a), ("B", b)):
        for e in of(entries, "call"):
            sent.setdefault(("call", e["to"], f"through {carrier}"), []).append((carrier, at(e)))
        for e in of(entries, "sms"):
            sent.setdefault(("SMS", e["to"], e["body"]), []).append((carrier, at(e)))
    for mail in mails:
        sent.setdefault(("email", str(mail["To"]), str(mail["Subject"])), []).append(("mail", dated(mail)))
    return [Repeat(*key, tuple(copies)) for key, copies in sent.items() if len(copies) > 1]


def dated(mail: EmailMessage) -> datetime | None:
    return parsedate_to_datetime(str(mail["Date"])) if mail["Date"] else None


def spoken(number: str) -> str:
    """A number as a message writes it (`+41 21 555 02 00`)."""
    return phonenumbers.format_number(
        phonenumbers.parse(number), phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )


@dataclass
class Outside:
    """What the two carriers and the mailbox recorded, read at once."""

    a: list[Entry]
    b: list[Entry]
    mails: list[EmailMessage]
    mail_deliveries: int

    @classmethod
    def read(cls, h: Harness) -> Outside:
        return cls(
            read_journal(h.carrier_log),
            read_journal(h.carrier_log.with_name("carrier-telnyx.jsonl")),
            h.mailbox.messages(),
            h.mailbox.handler.deliveries,
        )


@dataclass(frozen=True)
class Breakage:
    """When A failed, lost its bridge and came back, by its own journal."""

    first_fault: datetime
    dropped: datetime
    back: datetime

    @classmethod
    def of(cls, a: list[Entry]) -> Breakage | None:
        opened = [e for e in of(a, "fault-window") if e["server_errors_for_s"] > 0]
        faults, drops = of(a, "fault"), of(a, "room-dropped")
        if not (opened and faults and drops):
            return None
        return cls(
            at(faults[0]), at(drops[0]), at(opened[0]) + timedelta(seconds=opened[0]["server_errors_for_s"])
        )


def pin_texts(
    entries: list[Entry], pin: str, since: datetime | None = None, until: datetime | None = None
) -> list[Entry]:
    """The SMS that carry the PIN (the invitation, the way back after a drop), in a span."""
    return [e for e in of(entries, "sms", since) if pin in e["body"] and (until is None or at(e) < until)]


class Drill:
    """The run, the breakage and the figures, each said with its time from the launch."""

    def __init__(self, h: Harness, fault_at: float, outage: float) -> None:
        self.h = h
        self.fault_at, self.outage = fault_at, outage
        self.started = time.monotonic()
        self.launched_at = datetime.now(UTC)
        self.missed: list[str] = []

    def say(self, text: str) -> None:
        print(f"+{time.monotonic() - self.started:6.1f} s  {text}", flush=True)

    def offset(self, moment: datetime) -> str:
        return f"+{(moment - self.launched_at).total_seconds():.1f} s"

    async def at(self, offset: float) -> None:
        """Wait for this moment of the drill."""
        await asyncio.sleep(max(0.0, self.started + offset - time.monotonic()))

    def judge(self, met: bool, goal: str, failure: str) -> str:
        if not met:
            self.missed.append(failure)
        return f"goal {goal}: {'met' if met else 'MISSED'}"

    async def launch(self) -> Bridged:
        self.started, self.launched_at = time.monotonic(), datetime.now(UTC)
        launched = await self.h.launch(
            *(pop.person_id(n) for n in range(PEOPLE)), welcome="Carrier-loss drill"
        )
        self.say(f"red button pressed: {launched.workflow_id} ({PEOPLE} people)")
        return launched

    async def lose_carrier_a(self) -> None:
        await self.at(self.fault_at)
        self.say(f"A answers 503 to every request for {self.outage:g} s and loses its bridge")
        self.h.simulator.faults.open_windows(self.outage, None, status=503)
        await self.h.simulator.drop_rooms()
        await self.at(self.fault_at + self.outage)
        self.say("A is back (its 503 window is over)")

    async def follow(self, until: float) -> None:
        """Say the outside world's milestones as they come (the journals read every half second)."""
        said: set[str] = set()

        def once(key: str, text: str) -> None:
            if key not in said:
                said.add(key)
                self.say(text)

        while time.monotonic() < self.started + until:
            seen = Outside.read(self.h)
            for name, entries in (("A", seen.a), ("B", seen.b)):
                if of(entries, "call"):
                    once(f"{name} call", f"{name} places its first call")
                if len(first_joins(entries, self.launched_at)) == ANSWERING:
                    once(f"{name} in", f"{name}'s bridge: all {ANSWERING} who answer have joined it")
                if of(entries, "sms"):
                    once(f"{name} sms", f"{name} sends its first SMS")
            if of(seen.a, "fault"):
                once("fault", f"A's first fault: {of(seen.a, 'fault')[0]['request']}")
            if len(seen.mails) >= PEOPLE:
                once(f"mails {len(seen.mails) // PEOPLE}", f"the mailbox holds {len(seen.mails)} emails")
            await asyncio.sleep(0.5)

    def report(self, seen: Outside, launched: Bridged, problems: list[str]) -> None:
        a, b = seen.a, seen.b
        broke = Breakage.of(a)
        if broke is None:
            self.missed.append("A's journal shows no fault and no dropped room: nothing was broken")
            return
        print(
            f"\nA's first fault {self.offset(broke.first_fault)}, its bridge dropped "
            f"{self.offset(broke.dropped)}, A back {self.offset(broke.back)}"
        )
        self.first_call_through_b(a, b, broke)
        self.everyone_back(a, b, broke, launched)
        self.nothing_twice(seen)
        self.pin_by_sms(seen, launched.pin, broke)
        self.after_a_is_back(a, b, broke, launched, problems)

    def first_call_through_b(self, a: list[Entry], b: list[Entry], broke: Breakage) -> None:
        first = next((e for e in of(b, "call", broke.first_fault)), None)
        print("\n1. from A's first fault to the first call through B")
        asks = [e for e in of(a, "fault", broke.first_fault) if "/Conferences" in e.get("request", "")]
        if asks:
            print(
                f"   A asked for its bridge {len(asks)} times, {self.offset(at(asks[0]))} to "
                f"{self.offset(at(asks[-1]))} (asked at once after the drops, then every 10 s)"
            )
        if first is None:
            print(
                "   no call through B    "
                + self.judge(False, f"≤ {FIRST_CALL_GOAL:g} s", "no call through B")
            )
            return
        seconds = (at(first) - broke.first_fault).total_seconds()
        print(
            f"   {seconds:.1f} s (at {self.offset(at(first))}, to {first['to']})    "
            + self.judge(
                seconds <= FIRST_CALL_GOAL,
                f"≤ {FIRST_CALL_GOAL:g} s",
                f"the first call through B came {seconds:.1f} s after A's first fault",
            )
        )

    def everyone_back(self, a: list[Entry], b: list[Entry], broke: Breakage, launched: Bridged) -> None:
        was_in = in_bridge_at(a, broke.dropped)
        joined = first_joins(b, broke.dropped)
        called_back = Counter(e["to"] for e in of(b, "call", broke.dropped) if e["to"] in was_in)
        never = sorted(was_in - set(joined))
        print(f"\n2. everyone who was in A's bridge ({len(was_in)}) in B's, from the drop")
        if was_in and not never:
            seconds = (max(joined[n] for n in was_in) - broke.dropped).total_seconds()
            print(
                f"   {seconds:.1f} s, {len(called_back)} called back through B    "
                + self.judge(
                    seconds <= EVERYONE_BACK_GOAL,
                    f"≤ {EVERYONE_BACK_GOAL:g} s at B's rate",
                    f"everyone back in B's bridge {seconds:.1f} s after the drop",
                )
            )
        else:
            print(
                f"   {len(was_in) - len(never)} back, {len(called_back)} called back; never back: {never}    "
                + self.judge(False, f"≤ {EVERYONE_BACK_GOAL:g} s", f"never back in B's bridge: {never}")
            )
        room = self.h.backup.rooms.get(launched.workflow_id) if self.h.backup else None
        in_room = sum(p.joined for p in room.participants.values()) if room else 0
        print(f"   B's room now: {in_room} in it; A's live rooms: {len(self.h.simulator.rooms)}")
        if in_room < ANSWERING:
            self.missed.append(f"B's room holds {in_room} of {ANSWERING} at the end: lost")

    def nothing_twice(self, seen: Outside) -> None:
        twice = repeats(seen.a, seen.b, seen.mails)
        copies = seen.mail_deliveries - len(seen.mails)
        print("\n3. nobody called or messaged twice on the same medium for the same purpose")
        print(
            f"   calls A {len(of(seen.a, 'call'))}, B {len(of(seen.b, 'call'))}; "
            f"SMS A {len(of(seen.a, 'sms'))}, B {len(of(seen.b, 'sms'))}; "
            f"emails {len(seen.mails)}, {copies} copies of a Message-ID    "
            + self.judge(
                not twice and not copies, "none twice", f"{len(twice)} repeated, {copies} email copies"
            )
        )
        alike: dict[tuple[str, str, tuple[str, ...]], list[Repeat]] = {}
        for repeat in twice:
            alike.setdefault((repeat.medium, repeat.what, tuple(c for c, _ in repeat.copies)), []).append(
                repeat
            )
        for (medium, what, carriers), group in alike.items():
            when = ", ".join(
                f"{carrier} {self.span([r.copies[i][1] for r in group])}"
                for i, carrier in enumerate(carriers)
            )
            print(f"   TWICE the same {medium} to {len(group)} ({what[:48]!r}): {when}")

    def span(self, moments: list[datetime | None]) -> str:
        known = [m for m in moments if m is not None]
        if not known:
            return "(when unknown)"
        first, last = self.offset(min(known)), self.offset(max(known))
        return first if first == last else f"{first} to {last}"

    def pin_by_sms(self, seen: Outside, pin: str, broke: Breakage) -> None:
        a, b, number = seen.a, seen.b, spoken(BACKUP_NUMBER)
        print(f"\n4. the PIN by SMS while A fails: through B, with B's number ({number})")
        for name, entries in (("A", a), ("B", b)):
            by_text: dict[str, list[datetime]] = {}
            for entry in pin_texts(entries, pin):
                by_text.setdefault(entry["body"], []).append(at(entry))
            for body, moments in by_text.items():
                print(
                    f"   {name}: {len(moments):2d} x {body[:44]!r}... {self.offset(min(moments))} to "
                    f"{self.offset(max(moments))}, B's number in it: {'yes' if number in body else 'NO'}"
                )
        through_a = pin_texts(a, pin, broke.first_fault, broke.back)
        through_b = pin_texts(b, pin, broke.first_fault, broke.back)
        without = [e for e in through_b if number not in e["body"]]
        print(
            f"   while A fails: {len(through_b)} through B, {len(through_a)} through A, "
            f"{len(without)} without B's number    "
            + self.judge(
                bool(through_b) and not through_a and not without,
                "all through B, with its number",
                "a PIN SMS while A failed went through A or without B's number",
            )
        )
        at_deadline = [
            e for e in of(a, "sms") + of(b, "sms") if at(e) >= self.launched_at + timedelta(seconds=115)
        ]
        early = [e for e in pin_texts(a, pin, until=broke.first_fault) if not e["body"].startswith(WAY_BACK)]
        if early and not at_deadline:
            print(
                "   note: nothing at the +120 s deadline: the invitation went "
                f"{self.offset(at(early[0]))} through A, once everyone was in "
                "(the step's objective, reached, ends the step early)"
            )
        mobiles = {pop.mobile(n) for n in range(PEOPLE)}
        emails = {pop.email(n) for n in range(PEOPLE)}
        texted = {e["to"] for e in pin_texts(a, pin) + pin_texts(b, pin)}
        mailed = {str(m["To"]) for m in seen.mails if pin in _text(m)}
        if texted != mobiles or mailed != emails:
            lost = f"no PIN SMS to {sorted(mobiles - texted)}, no PIN email to {sorted(emails - mailed)}"
            self.missed.append(lost)
            print(f"   LOST: {lost}")

    def after_a_is_back(
        self, a: list[Entry], b: list[Entry], broke: Breakage, launched: Bridged, problems: list[str]
    ) -> None:
        print(f"\n5. after A is back ({self.offset(broke.back)} to the end)")
        for name, entries in (("A", a), ("B", b)):
            kinds = Counter(e["kind"] for e in entries if at(e) >= broke.back)
            print(
                f"   {name}: " + (", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "nothing")
            )
        print("   the bridge stays on B by design: moving it back would drop everyone in it again")
        print("   status: " + ("no problem" if not problems else f"{len(problems)} problem(s)"))
        for problem in problems:
            print(f"     PROBLEM: {problem}")
        for name, entries in (("A", a), ("B", b)):
            hooks = of(entries, "webhook")
            refused = [e for e in hooks if not 200 <= (e.get("status") or 0) < 300]
            slow = [e for e in hooks if e.get("ms", 0) > 1000]
            lost = of(entries, "webhook-lost")
            if refused or slow or lost:
                print(
                    f"   {name}'s webhooks: {len(refused)} refused, {len(slow)} slower than 1 s, "
                    f"{len(lost)} lost, of {len(hooks)}"
                )


WAY_BACK = DEFAULT_WAY_BACK.split("#{", 1)[0]
"""How the SMS after a drop begins (the shipped procedure has no drop message of its own)."""


def _text(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    return body.get_content() if isinstance(body, EmailMessage) else ""


async def status_problems(h: Harness, launched: Bridged) -> list[str]:
    """The run's problems, as `status` prints them."""
    try:
        view = await read_view(h.client, launched.workflow_id, with_batches=False)
    except NoWorker as exc:
        return [f"(status could not read the run: {exc})"]
    return list(view.problems)


async def drill(data_dir: Path, fault_at: float = FAULT_AT, outage: float = OUTAGE) -> int:
    contacts = pop.write_contacts(data_dir / "contacts.yaml", pop.contacts(PEOPLE))
    everyone_answers = pop.scenario(
        PEOPLE,
        at_work=lambda n: "answer" if n < ANSWERING else "no-answer",
        at_home=lambda n: "answer" if n < ANSWERING else "no-answer",
        ring_seconds=RING_SECONDS,
    )
    print(f"carrier-loss drill: data and journals in {data_dir}/", flush=True)
    env = await start_dev_env()
    try:
        async with (
            harness(
                env.client,
                data_dir,
                contacts,
                everyone_answers,
                calls_per_second=CALLS_PER_SECOND,
                backup=everyone_answers,
            ) as h,
            h.worker(),
        ):
            loss = Drill(h, fault_at, outage)
            launched = await loss.launch()
            end = fault_at + outage + WATCH_AFTER
            await asyncio.gather(loss.follow(end), loss.lose_carrier_a(), loss.at(end))
            loss.say(f"watched for {WATCH_AFTER:g} s after A came back: the figures")
            problems = await status_problems(h, launched)
            history = await h.handle(launched).fetch_history()
            (data_dir / "history.json").write_text(history.to_json(), encoding="utf-8")
            loss.report(Outside.read(h), launched, problems)
    finally:
        await env.shutdown()
    verdict = (
        "EVERY GOAL MET, NOTHING LOST, NOTHING TWICE"
        if not loss.missed
        else f"{len(loss.missed)} GOAL(S) MISSED, LOST OR DOUBLED"
    )
    print(f"\nverdict: {verdict} ({PEOPLE} people, A lost for {outage:g} s from +{fault_at:g} s)")
    for failure in loss.missed:
        print(f"  {failure}")
    return 0 if not loss.missed else 1


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.carrier_loss",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data-dir", type=Path, default=Path(".data/carrier-loss"), help="cleared at start")
    parser.add_argument("--fault-at", type=float, default=FAULT_AT, help="seconds after the launch A fails")
    parser.add_argument("--outage", type=float, default=OUTAGE, help="seconds A fails for")
    args = parser.parse_args()
    shutil.rmtree(args.data_dir, ignore_errors=True)
    args.data_dir.mkdir(parents=True)
    logging.basicConfig(
        filename=args.data_dir / "drill.log",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    code = asyncio.run(drill(args.data_dir.resolve(), args.fault_at, args.outage))
    sys.stdout.flush()
    os._exit(code)  # a short-lived client can abort at interpreter exit (FIELD-NOTES)


if __name__ == "__main__":
    main()
