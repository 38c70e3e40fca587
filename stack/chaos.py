"""`make chaos` (`python -m stack.chaos`): the production topology (`stack.prod_like`, each piece
its own process) runs four conferences at once while it is broken on purpose, then the outside
world's records are compared, person by person, with what each person was owed.

    +0 s     conference A (10 people)              and throughout, from +5 s to +390 s: 24 worker
    +40 s    conference B (10 people)              kills (SIGKILL, --worker-kills) at random moments
    +42 s    both callback servers down for 30 s   (--seed), each back 0.5-8 s later
    +85 s    Temporal server killed, back 5 s later
    +100 s   the carrier answers 500 to everything for 60 s
    +170 s   conference C (10 people)
    +200 s   crisis cell D (4 people, then 4 deputies into the same bridge)
    +215 s   Temporal server killed, back 5 s later
    +225 s   the mail server down for 3 minutes
    +275 s   Temporal server killed, back 5 s later

Each conference is the shipped procedure on a clock twice as fast (the home round at +30 s, the
deadline at +60 s), with personal PIN SMS (`#{Contact.Name}`) so the way back after a drop is told
apart. People answer at work, at home, hang up by mistake, are busy, fail, get a machine, have no
home phone, no mobile or no email (`PATTERN`). The verdict: nothing lost and nothing twice (as a
recipient counts: a second delivery of an email's Message-ID is a second email), and `status`
agrees with the carrier's room on who is in the bridge. Exits 1 otherwise. Every piece's log,
the carrier's journal and the mailbox stay in the data folder for the investigation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from carrier.simulator.client import open_fault_windows
from carrier.simulator.scenario import Behaviour, NumberPlan, Scenario
from config import EXAMPLES
from stack.loopback import eventually
from stack.processes import PieceFailed
from stack.prod_like import ProdLike, Topology, clear_previous_run, prod_like
from stack.tally import Outside, Person, Tally, expected, room_members

ROOT = Path(__file__).resolve().parent.parent
HOME_ROUND_AT = 30.0
DEADLINE_AT = 60.0
RING_TIMEOUT = 10.0
RING_SECONDS = 4.0
"""How long the simulated phones ring before their outcome."""
HANGS_UP_AFTER = 8.0
CALLS_PER_SECOND = 2.0
SETTLE_WITHIN = 180.0
"""After the last fault, how long the outside world may take to see everything it is owed."""
QUIET_AFTER = 20.0
"""Once everything is seen, how long to keep looking for a late second copy."""
RESTART_TRIES = 60
CHANNELS = ("work_calls", "home_calls", "pin_sms", "way_back_sms", "emails")


@dataclass(frozen=True)
class Habit:
    """How one person's phones behave: the work phone, the home phone (None: they have none),
    whether the phone that answers is hung up by mistake, and whether they have mobile and email."""

    work: Behaviour | None
    home: Behaviour | None
    hangs_up: bool = False
    mobile: bool = True
    email: bool = True


PATTERN = [
    Habit("answer", "answer"),
    Habit("answer", "answer", hangs_up=True),
    Habit("no-answer", "answer"),
    Habit("busy", "answer", hangs_up=True),
    Habit("machine", "answer"),
    Habit("fail", "machine"),
    Habit("no-answer", "no-answer"),
    Habit(None, "answer"),
    Habit("answer", None, email=False),
    Habit("no-answer", None, mobile=False),
]
"""A conference's ten people: in the bridge at work, at home, dropped out, never reached."""
CRISIS_TEAM = [Habit("answer", "answer"), Habit("no-answer", "answer"), Habit("busy", "no-answer"),
               Habit("answer", "answer", hangs_up=True)]  # fmt: skip
"""The third is never reached: the team's step falls short and the deputies are called."""
DEPUTIES = [Habit("answer", "answer"), Habit("no-answer", "answer"), Habit("busy", "machine"),
            Habit(None, "no-answer")]  # fmt: skip
"""Half of them (the step's 50 %) is reached only in the home round: every home call is placed."""


@dataclass
class Run:
    label: str
    people: list[Person]
    deputies: list[Person] = field(default_factory=list)
    workflow_id: str | None = None

    @property
    def everyone(self) -> list[Person]:
        return self.people + self.deputies


def people_of(label: str, index: int, habits: list[Habit], scenario: dict[str, Behaviour | NumberPlan],
              first: int = 1) -> list[Person]:  # fmt: skip
    """Numbers unique across the drill (`+41 21 555 RNNN` work, `22` home, `79` mobile), each one's
    behaviour written into the carrier's scenario."""
    found = []
    for n, habit in enumerate(habits, start=first):
        pid, tail = f"{label.lower()}{n:02d}", f"555{index}{n:03d}"
        work = f"+4121{tail}" if habit.work else None
        home = f"+4122{tail}" if habit.home else None
        for number, behaviour in ((work, habit.work), (home, habit.home)):
            if number and behaviour:
                hangs_up = habit.hangs_up and behaviour == "answer"
                scenario[number] = NumberPlan(
                    answer=behaviour, hangup_after_s=HANGS_UP_AFTER if hangs_up else None
                )
        found.append(Person(pid, f"Person {label}{n:02d}", work=work, home=home,
                            mobile=f"+4179{tail}" if habit.mobile else None,
                            email=f"{pid}@example.com" if habit.email else None))  # fmt: skip
    return found


def compressed_definitions(
    folder: Path, home_round_at: float, deadline_at: float, ring_timeout: float
) -> Path:
    """The shipped procedures on a faster clock: CONFCALL's home round and every deadline moved,
    each PIN SMS personal (`#{Contact.Name}: …`), so that the way back after a drop is the plain
    one and the carrier's journal tells the two apart."""
    media = [{"medium": "voice_pro"}, {"medium": "voice_home", "after": f"{home_round_at:g}s"}]
    confcall = {"name": "CONFCALL", "ring_timeout": f"{ring_timeout:g}s", "media": media}
    schemes = {"default": "CONFCALL", "schemes": [confcall]}
    (folder / "procedures").mkdir(parents=True, exist_ok=True)
    (folder / "schemes.yaml").write_text(yaml.safe_dump(schemes), encoding="utf-8")
    for shipped in sorted((EXAMPLES / "procedures").glob("*.yaml")):
        procedure = yaml.safe_load(shipped.read_text(encoding="utf-8"))
        for step in procedure["steps"]:
            step["deadline"] = f"{deadline_at:g}s"
            post = step.get("post_objective", {})
            for version in [post] if "subject" in post else post.values():  # one, or one per language
                if "sms" in version:
                    version["sms"] = "#{Contact.Name}: " + version["sms"]
        (folder / "procedures" / shipped.name).write_text(yaml.safe_dump(procedure, allow_unicode=True),
                                                           encoding="utf-8")  # fmt: skip
    return folder


class Drill:
    """The topology, the runs, and the faults, each action said with its time from the start."""

    def __init__(self, running: ProdLike, runs: list[Run], scenario: Scenario, seed: int) -> None:
        self.running = running
        self.topology = running.topology
        self.runs = runs
        self.scenario = scenario
        self.random = random.Random(seed)
        self.started = time.monotonic()
        self.locks: dict[str, asyncio.Lock] = {}
        self.counts = {"worker kills": 0, "Temporal kills": 0}

    def say(self, text: str) -> None:
        print(f"+{time.monotonic() - self.started:6.1f} s  {text}", flush=True)

    async def at(self, offset: float) -> None:
        """Wait for this moment of the drill."""
        await asyncio.sleep(max(0.0, self.started + offset - time.monotonic()))

    def environment(self) -> dict[str, str]:
        return self.topology.environment(
            RALLYCALL_DEFINITIONS_DIR=str(self.topology.data_dir / "definitions"),
            RALLYCALL_CONTACTS_FILE=str(self.topology.data_dir / "contacts.yaml"),
        )

    async def cli(self, *args: str) -> Any:
        """`starter.py …`, as an operator runs it against the topology; its JSON output."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "starter.py"), *args, cwd=self.topology.data_dir,
            env=self.environment(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"starter.py {' '.join(args)} exited {process.returncode}: {err.decode()}")
        return json.loads(out)

    async def launch(self, offset: float, run: Run) -> None:
        await self.at(offset)
        if run.deputies:
            team, deputies = (",".join(p.id for p in group) for group in (run.people, run.deputies))
            launched = await self.cli("procedure", "launch", "crisis-with-deputies", "--field",
                                      f"body=Chaos drill {run.label}", "--field", f"Contacts.S001={team}",
                                      "--field", f"Contacts.S002={deputies}", "--json")  # fmt: skip
        else:
            to = [f"--to={person.id}" for person in run.people]
            launched = await self.cli("conference", *to, f"--welcome=Chaos drill {run.label}", "--json")
        run.workflow_id = launched["workflow_id"]
        self.say(f"conference {run.label} launched: {run.workflow_id} ({len(run.everyone)} people)")

    @contextlib.asynccontextmanager
    async def down(self, *names: str) -> AsyncIterator[None]:
        """These pieces killed with SIGKILL for the block, then started again as they were."""
        locks = [self.locks.setdefault(name, asyncio.Lock()) for name in names]
        for lock in locks:
            await lock.acquire()
        try:
            for name in names:
                await self.running.supervisor.kill(name)
            yield
            await asyncio.gather(*(self.restart(name) for name in names))
        finally:
            for lock in locks:
                lock.release()

    async def restart(self, name: str) -> None:
        """Start it again as a process manager would: once more each second until it is healthy
        (a worker started while Temporal is down exits at once)."""
        for attempt in range(1, RESTART_TRIES + 1):
            try:
                await self.running.supervisor.restart(name)
                return
            except PieceFailed:
                if attempt == RESTART_TRIES:
                    raise
                self.say(f"{name} exited while starting; started again")
                await asyncio.sleep(1)

    async def outage(self, offset: float, names: list[str], seconds: float, what: str) -> None:
        await self.at(offset)
        self.say(f"{what} down (SIGKILL) for {seconds:g} s")
        async with self.down(*names):
            await asyncio.sleep(seconds)
        self.say(f"{what} back")

    async def carrier_errors(self, offset: float, seconds: float) -> None:
        await self.at(offset)
        await open_fault_windows(self.topology.simulator_url, server_errors_for_s=seconds)
        self.say(f"the carrier answers 500 to every request for {seconds:g} s")

    async def temporal_kill(self, offset: float, seconds: float) -> None:
        await self.at(offset)
        self.counts["Temporal kills"] += 1
        await self.outage(
            offset, ["temporal"], seconds, f"Temporal server (kill {self.counts['Temporal kills']})"
        )

    async def worker_kills(self, count: int, between: tuple[float, float]) -> None:
        """`count` kills at random moments; each time a random worker that is up (both may be down
        together), back after a random 0.5-8 s. With both down, the next kill takes the first one
        back, as soon as it polls again."""
        moments = sorted(self.random.uniform(*between) for _ in range(count))
        workers = [name for name in self.running.supervisor.names() if name.startswith("worker-")]
        restarts: list[asyncio.Task[None]] = []
        for moment in moments:
            await self.at(moment)
            up = [name for name in workers if not self.locks.setdefault(name, asyncio.Lock()).locked()]
            victim, pause = self.random.choice(up or workers), self.random.uniform(0.5, 8.0)
            restarts.append(asyncio.create_task(self.kill_worker(victim, pause)))
            await asyncio.sleep(0)  # it holds the worker's lock before the next choice
        await asyncio.gather(*restarts)

    async def kill_worker(self, name: str, seconds: float) -> None:
        async with self.down(name):
            self.counts["worker kills"] += 1
            self.say(f"{name} killed (SIGKILL {self.counts['worker kills']}), back in {seconds:.1f} s")
            await asyncio.sleep(seconds)

    def outside(self) -> Outside:
        mailbox_log = self.running.supervisor.log("mailbox")
        return Outside(self.topology.journal, self.topology.mail_dir,
                       mailbox_log.read_text(errors="replace") if mailbox_log.exists() else "")  # fmt: skip

    def owed_and_seen(self) -> bool:
        """Every person has seen at least what they are owed (not yet: whether anything came twice)."""
        outside = self.outside()
        for run in self.runs:
            for person in run.everyone:
                owed, seen = expected(person, self.scenario), outside.seen(person, set())
                if any(getattr(seen, channel) < getattr(owed, channel) for channel in CHANNELS):
                    return False
        return True

    async def settle(self) -> None:
        """Until everyone has seen what they are owed (bounded), then a quiet while for copies."""
        with contextlib.suppress(AssertionError):
            await eventually(self.owed_and_seen, bool, seconds=SETTLE_WITHIN)
        self.say("everything owed is seen" if self.owed_and_seen() else "gave up waiting: something is lost")
        await asyncio.sleep(QUIET_AFTER)

    async def tally(self) -> Tally:
        """Expected against seen, with the bridge's truth from the carrier and from `status`."""
        tally, outside = Tally(), self.outside()
        for run in self.runs:
            assert run.workflow_id is not None
            room = await room_members(self.topology.simulator_url, run.workflow_id)
            status = await self.cli("status", run.workflow_id, "--json")
            in_status = {person["id"]: person["in_conference"] for person in status["people"]}
            tally.add(run.label, run.everyone, self.scenario, outside, room, in_status)
        return tally

    async def end_all(self) -> None:
        for run in self.runs:
            if run.workflow_id:
                await self.cli("end", run.workflow_id, "--reason", "chaos drill over")


def plan(data_dir: Path) -> tuple[list[Run], Scenario]:
    """The drill's people, contacts file, definitions and the carrier's scenario."""
    numbers: dict[str, Behaviour | NumberPlan] = {}
    runs = [Run(label, people_of(label, index, PATTERN, numbers)) for index, label in enumerate("ABC")]
    runs.append(Run("D", people_of("D", 3, CRISIS_TEAM, numbers),
                    people_of("D", 3, DEPUTIES, numbers, first=len(CRISIS_TEAM) + 1)))  # fmt: skip
    scenario = Scenario(ring_seconds=RING_SECONDS, default="no-answer", numbers=numbers)
    contacts = {"contacts": [person.contact() for run in runs for person in run.everyone]}
    (data_dir / "contacts.yaml").write_text(yaml.safe_dump(contacts), encoding="utf-8")
    (data_dir / "scenario.yaml").write_text(
        yaml.safe_dump(scenario.model_dump(mode="json", exclude_none=True))
    )
    compressed_definitions(data_dir / "definitions", HOME_ROUND_AT, DEADLINE_AT, RING_TIMEOUT)
    return runs, scenario


async def drill(data_dir: Path, seed: int, worker_kills: int) -> int:
    runs, scenario = plan(data_dir)
    topology = Topology.on_free_ports(data_dir, data_dir / "scenario.yaml", calls_per_second=CALLS_PER_SECOND)
    clear_previous_run(topology)
    print(f"chaos drill: seed {seed}, data and logs in {data_dir}/", flush=True)
    async with prod_like(topology) as running:
        chaos = Drill(running, runs, scenario, seed)
        chaos.say(f"topology up: {', '.join(running.supervisor.names())}")
        a, b, c, d = runs
        schedule: list[Awaitable[None]] = [
            chaos.launch(0, a),
            chaos.launch(40, b),
            chaos.outage(42, [n for n in running.supervisor.names() if n.startswith("callbacks-")], 30,
                         "both callback servers"),
            chaos.temporal_kill(85, 5),
            chaos.carrier_errors(100, 60),
            chaos.launch(170, c),
            chaos.launch(200, d),
            chaos.temporal_kill(215, 5),
            chaos.outage(225, ["mailbox"], 180, "the mail server"),
            chaos.temporal_kill(275, 5),
            chaos.worker_kills(worker_kills, (5, 390)),
        ]  # fmt: skip
        await asyncio.gather(*schedule)
        await chaos.settle()
        tally = await chaos.tally()
        outside = chaos.outside()
        print("\n" + tally.table(), flush=True)
        summary(chaos, outside)
        await chaos.end_all()
    problems = tally.problems()
    verdict = "NOTHING LOST, NOTHING TWICE" if not problems else f"LOST OR DOUBLED: {len(problems)}"
    print(f"\nverdict: {verdict} ({len(tally.rows)} people, {len(runs)} runs)")
    for problem in problems:
        print(f"  {problem}")
    return 0 if not problems else 1


def summary(chaos: Drill, outside: Outside) -> None:
    """The faults as the outside world counted them, and what it saw in all."""
    refused = sum(entry.get("fault") == "server-error" for entry in outside.of("fault"))
    kills = f"{chaos.counts['worker kills']} worker kills, {chaos.counts['Temporal kills']} Temporal kills"
    print(f"\n{kills}, callback servers down 30 s, mail server down 180 s, carrier 500s for 60 s")
    untold, copies = len(outside.webhooks_not_taken()), sum(outside.copies.values())
    print(f"carrier: {refused} requests answered 500, {untold} callbacks not taken; "
          f"mailbox: {copies} deliveries repeating a Message-ID")  # fmt: skip
    emails = sum(map(len, outside.mail.values()))
    print(f"seen: {len(outside.of('call'))} calls, {len(outside.of('sms'))} SMS, {emails} emails", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m stack.chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--data-dir", type=Path, default=Path(".data/chaos"), help="cleared at start")
    parser.add_argument("--seed", type=int, help="of the worker kills' moments (default: random)")
    parser.add_argument("--worker-kills", type=int, default=24)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 16)
    shutil.rmtree(args.data_dir, ignore_errors=True)
    args.data_dir.mkdir(parents=True)
    try:
        code = asyncio.run(drill(args.data_dir.resolve(), seed, args.worker_kills))
    except PieceFailed as exc:
        sys.exit(f"the topology failed: {exc}")
    sys.exit(code)


if __name__ == "__main__":
    main()
