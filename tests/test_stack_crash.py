"""The embedded stack (`python -m stack`: its own file-backed dev server, worker, callback server,
mailbox) killed with SIGKILL, dev server and all, three times in one conference: just after the
first calls, just before the home round and just before the deadline; each time started again
on the same data and ports. The carrier is a separate simulator process that keeps its calls and
rooms meanwhile, as Twilio would, and tells nobody what happened while the stack was down.

Counted from the carrier's journal and the mailbox, not from the roster (`stack.tally`): each work
phone called once, home phones only of those not reached, one PIN SMS and one email each, the way
back by SMS after a hang-up; and `status` says who is in the carrier's room. On a compressed
CONFCALL: the home round at +20 s, the deadline at +45 s."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from temporalio.client import Client

from callbacks import urls
from callbacks.urls import callback_url
from carrier.simulator import Scenario
from carrier.simulator.scenario import NumberPlan
from stack import health
from stack.chaos import compressed_definitions
from stack.loopback import eventually
from stack.ports import free_port
from stack.processes import Piece, Probe, Supervisor
from stack.tally import Outside, Person, Tally, room_members

ROOT = Path(__file__).resolve().parent.parent
HOME_ROUND_AT = 20.0
DEADLINE_AT = 45.0
BEFORE = 3.0
"""How long before the home round and the deadline the stack is killed."""
DIAL_IN = "+41215550100"
PEOPLE = [
    Person("alice", "Alice Martin", work="+41215550101", home="+41215550111", mobile="+41795550101",
           email="alice@example.com"),
    Person("bruno", "Bruno Keller", work="+41215550102", home="+41215550112", mobile="+41795550102",
           email="bruno@example.com"),
    Person("chloe", "Chloé Rochat", work="+41215550103", home="+41215550113", mobile="+41795550103",
           email="chloe@example.com"),
    Person("dan", "Dan Home-Only", home="+41215550114", mobile="+41795550104"),
]  # fmt: skip
ALICE, BRUNO, CHLOE, DAN = PEOPLE
DAN_HANGS_UP_AFTER = 24.0
"""Answered at home at about +22..+33 s: he hangs up once the stack is down before the deadline."""
SCENARIO = Scenario(
    ring_seconds=2,
    numbers={
        "+41215550101": "answer",  # Alice answers at work while the stack is down
        "+41215550102": "no-answer",
        "+41215550112": "answer",  # Bruno at home
        "+41215550103": "busy",
        "+41215550113": "machine",  # Chloé is never reached
        "+41215550114": NumberPlan(answer="answer", hangup_after_s=DAN_HANGS_UP_AFTER),
    },
)


@dataclass(frozen=True)
class Site:
    """Where everything lives, fixed before the first start so that every restart finds the same
    data and ports; its files (contacts, definitions, scenario) are written once."""

    root: Path
    ports: dict[str, int]

    @classmethod
    def prepared(cls, root: Path) -> Site:
        contacts = {"contacts": [person.contact() for person in PEOPLE]}
        (root / "contacts.yaml").write_text(yaml.safe_dump(contacts, allow_unicode=True), encoding="utf-8")
        compressed_definitions(root / "definitions", HOME_ROUND_AT, DEADLINE_AT, ring_timeout=5)
        (root / "scenario.yaml").write_text(
            yaml.safe_dump(SCENARIO.model_dump(mode="json", exclude_none=True))
        )
        (root / "data").mkdir()
        names = ("temporal", "ui", "callbacks", "console", "smtp", "simulator")
        return cls(root, {name: free_port() for name in names})

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def journal(self) -> Path:
        return self.root / "carrier.jsonl"

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.ports['temporal']}"

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['callbacks']}"

    @property
    def simulator_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['simulator']}"

    def environment(self) -> dict[str, str]:
        """The stack's and the CLI's settings, and nothing of the shell's."""
        inherited = {
            k: v for k, v in os.environ.items() if not k.startswith(("RALLYCALL_", "TEMPORAL_", "TWILIO_"))
        }
        return {
            **inherited,
            "PYTHONUNBUFFERED": "1",
            "TEMPORAL_ADDRESS": self.temporal_address,
            "RALLYCALL_ENVIRONMENT": "development",
            "RALLYCALL_DATA_DIR": str(self.data_dir),
            "RALLYCALL_UI_PORT": str(self.ports["ui"]),
            "RALLYCALL_CALLBACK_ADDR": f"127.0.0.1:{self.ports['callbacks']}",
            "RALLYCALL_PUBLIC_URL": self.public_url,
            "RALLYCALL_CONSOLE_ADDR": f"127.0.0.1:{self.ports['console']}",
            "RALLYCALL_SMTP_PORT": str(self.ports["smtp"]),
            "RALLYCALL_TWILIO_API_URL": self.simulator_url,
            "RALLYCALL_DIAL_IN_NUMBER": DIAL_IN,
            "RALLYCALL_CALLS_PER_SECOND": "20",
            "RALLYCALL_DEFINITIONS_DIR": str(self.root / "definitions"),
            "RALLYCALL_CONTACTS_FILE": str(self.root / "contacts.yaml"),
        }

    def simulator(self) -> Piece:
        """The outside carrier: started once, it outlives every crash of the stack."""
        voice_url = callback_url(self.public_url, urls.VOICE_INBOUND)
        argv = [sys.executable, "-m", "carrier.simulator", "serve", "--port", str(self.ports["simulator"]),
                "--scenario", str(self.root / "scenario.yaml"), "--log", str(self.journal),
                "--dial-in-number", DIAL_IN, "--voice-url", voice_url]  # fmt: skip
        listening = health.listening("127.0.0.1", self.ports["simulator"])
        return Piece("simulator", argv, self.environment(), listening, cwd=self.root)

    def stack(self) -> Piece:
        """The whole embedded stack in one process group: a SIGKILL takes the dev server too."""
        argv = [sys.executable, "-m", "stack"]
        return Piece("stack", argv, self.environment(), self.stack_ready(), cwd=self.data_dir)

    def stack_ready(self) -> Probe:
        """Its callback server answers and its own worker (by pid) polls the task queue."""
        callbacks_up = health.http_ok(f"{self.public_url}/healthz")
        clients: list[Client] = []

        async def probe(pid: int) -> bool:
            if not await callbacks_up(pid):
                return False
            if not clients:
                clients.append(await Client.connect(self.temporal_address))  # reconnects after restarts
            return await health.polling(clients[0], "rallycall")(pid)

        return probe


async def cli(site: Site, *args: str) -> Any:
    """`starter.py … --json`, as an operator runs it against the stack."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "starter.py"), *args, "--json", cwd=site.root, env=site.environment(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, f"starter.py {' '.join(args)}: {err.decode()}"
    return json.loads(out)


async def test_the_stack_killed_three_times_loses_nothing_and_sends_nothing_twice(tmp_path: Path) -> None:
    site = Site.prepared(tmp_path)

    def outside() -> Outside:
        return Outside(site.journal, site.data_dir / "mail", (tmp_path / "logs" / "stack.log").read_text())

    loop = asyncio.get_running_loop()
    async with Supervisor(tmp_path / "logs") as supervisor:
        await supervisor.start(site.simulator(), site.stack())
        launched = await cli(site, "conference", *(f"--to={p.id}" for p in PEOPLE))
        started = loop.time()
        run = launched["workflow_id"]

        # 1. just after the first calls: Alice answers at work while nobody listens
        await eventually(lambda: outside().of("call"), lambda calls: len(calls) == 3, seconds=15)
        await supervisor.kill("stack")
        (alice_at_work,) = outside().calls_to(ALICE.work)
        await eventually(outside, lambda seen: "call in-progress" in seen.untold(alice_at_work))
        await supervisor.restart("stack")

        # 2. just before the home round (+20 s)
        await asyncio.sleep(started + HOME_ROUND_AT - BEFORE - loop.time())
        assert {e["to"] for e in outside().of("call")} == {ALICE.work, BRUNO.work, CHLOE.work}
        await supervisor.restart("stack")

        # 3. just before the deadline (+45 s): Dan hangs up while nobody listens
        await asyncio.sleep(started + DEADLINE_AT - BEFORE - loop.time())
        assert not outside().texts_to(ALICE.mobile), "no PIN before the deadline"
        await supervisor.kill("stack")
        (dan_at_home,) = outside().calls_to(DAN.home)
        await eventually(outside, lambda seen: "participant-leave" in seen.untold(dan_at_home), seconds=20)
        await supervisor.restart("stack")

        invitations = len([p for p in PEOPLE if p.mobile]) + len([p for p in PEOPLE if p.email])
        await eventually(outside, lambda seen: seen.invitations() >= invitations, seconds=40)
        status = await cli(site, "status", run)
        tally = Tally()
        tally.add(run, PEOPLE, SCENARIO, outside(), await room_members(site.simulator_url, run),
                  {p["id"]: p["in_conference"] for p in status["people"]})  # fmt: skip
        assert not tally.problems(), "\n" + tally.table()
        print(f"\n{tally.table()}\n{loop.time() - started:.0f} s")
