"""The production topology, each piece its own process: a conference survives one worker and one
callback server killed with SIGKILL mid-timeline. The carrier's journal and the mailbox are the
outside world's word: each call placed once, home calls only for those not reached at work, one
PIN SMS and one email per person; every callback accepted by a callback server but the one the
killed server may have had in hand, and `status` agrees with the carrier's room all the same.

One confirmation sent to both console replicas at once starts one conference: the carrier calls
each person once.

Also the supervisor itself, on a throwaway HTTP server: a crash while starting is reported with
the piece's log, and a killed piece restarts as a new process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from argon2 import PasswordHasher

from console.auth import Users
from launching import launch, red_button
from localmail.server import read_eml
from stack import health
from stack.ports import free_port
from stack.processes import Piece, PieceFailed, Supervisor
from stack.prod_like import Topology, prod_like
from stack.tally import room_members
from tests.support import SCENARIO, confcall_in_seconds, eventually
from watch import read_view

TIMELINE = confcall_in_seconds(home_after=3, deadline=26)
"""Room for the kill: the killed worker's sticky workflow tasks wait out their schedule-to-start
timeout (3 s) and its activities their heartbeat timeout (10 s) before the other worker takes
them, and the home round must still come before the deadline."""
WORK = ["+41215550101", "+41215550102", "+41215550103"]
HOME = ["+41215550112", "+41215550113", "+41215550114"]
"""Bruno (no answer at work), Chloé (busy at work), Dan (no work phone); Alice answered at work."""
MOBILES = ["+41795550101", "+41795550102", "+41795550103", "+41795550104"]
EMAILS = ["alice@example.com", "bruno@example.com", "chloe@example.com"]


def journal(topology: Topology, kind: str) -> list[dict[str, Any]]:
    if not topology.journal.exists():
        return []
    entries = [json.loads(line) for line in topology.journal.read_text().splitlines()]
    return [entry for entry in entries if entry["kind"] == kind]


def recipients(topology: Topology) -> list[str]:
    return [str(read_eml(path)["To"]) for path in topology.mail_dir.glob("*.eml")]


async def test_a_conference_survives_a_killed_worker_and_callback_server(
    tmp_path: Path, contacts_file: Path
) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO.model_dump(mode="json")))
    topology = Topology.on_free_ports(tmp_path / "prod-like", scenario, calls_per_second=100)
    async with prod_like(topology) as running:
        red = TIMELINE.procedure("conference-call")
        request = red_button(red, TIMELINE.schemes, ["alice", "bruno", "chloe", "dan"], "Fire drill",
                             contacts_file=contacts_file)  # fmt: skip
        launched = await launch(running.client, topology.settings(), request)
        await eventually(
            lambda: read_view(running.client, launched.workflow_id),
            lambda view: (
                len([a for p in view.people for a in p.attempts]) == 3
                and all(a.outcome != "pending" for p in view.people for a in p.attempts)
            ),
            seconds=15,
        )
        holder = await running.worker_holding(launched.workflow_id)
        await running.supervisor.kill(holder)
        killed_at = datetime.now(UTC)
        await running.supervisor.kill("callbacks-1")

        await eventually(
            lambda: read_view(running.client, launched.workflow_id),
            lambda view: sum(len(p.notifications) for p in view.people) == 7,
            seconds=40,
        )
        # read while the carrier and the callback servers are up: stopping them ends calls, and so on
        calls = Counter(entry["to"] for entry in journal(topology, "call"))
        assert calls == Counter(WORK + HOME), "each call placed once, home calls only for those not reached"
        assert Counter(e["to"] for e in journal(topology, "sms")) == Counter(MOBILES), "one PIN SMS each"
        assert sorted(recipients(topology)) == EMAILS, "one email each"
        # a callback the killed server had in hand is lost (a 502, not sent to the other replica:
        # it may have been handled); every other one reached a callback server that took it
        refused = [e for e in journal(topology, "webhook") if e["status"] != 200]
        assert all(
            e["status"] == 502 and abs(datetime.fromisoformat(e["at"]) - killed_at) < timedelta(seconds=2)
            for e in refused
        ), refused
        assert len(refused) <= 1, refused
        # and the roster converges to the carrier's room all the same
        room = await room_members(topology.simulator_url, launched.workflow_id)
        view = await read_view(running.client, launched.workflow_id)
        assert {p.id for p in view.people if p.in_conference} == {
            p.id for p in view.people if any(a.call_sid in room for a in p.attempts)
        }, "status says who is really in the bridge"
        assert room, "those who answered are in the bridge"
        assert "duplicate delivery" not in running.supervisor.log("mailbox").read_text()


async def form_token(http: aiohttp.ClientSession, url: str, name: str) -> str:
    async with http.get(url) as page:
        found = re.search(rf'name="{name}" value="([^"]+)"', await page.text())
    assert found, f"no {name} on {url}"
    return found[1]


async def test_a_confirmation_sent_to_both_console_replicas_starts_one_conference(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO.model_dump(mode="json")))
    topology = Topology.on_free_ports(tmp_path / "prod-like", scenario, workers=1, callback_servers=1,
                                      calls_per_second=100)  # fmt: skip
    topology.data_dir.mkdir(parents=True)
    Users(topology.data_dir / "users.json", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)).add(
        "lea", "launcher", "a long enough password"
    )
    first, second = topology.console_urls
    browser = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # one session, either replica
    async with prod_like(topology) as running, browser as http:
        sign_in = {"csrf": await form_token(http, f"{first}/sign-in", "csrf"), "name": "lea",
                   "password": "a long enough password"}  # fmt: skip
        async with http.post(f"{first}/sign-in", data=sign_in) as signed:
            assert signed.status == 200
        form = {"csrf": await form_token(http, f"{first}/red-button", "csrf"), "c:Contacts.S001": "alice",
                "f:body": "Two replicas"}  # fmt: skip
        async with http.post(f"{first}/red-button", data=form) as review:
            key = re.search(r'name="key" value="([^"]+)"', await review.text())
        assert key, "the confirmation page carries the launch's key"

        async def confirm(console: str) -> str:
            async with http.post(f"{console}/red-button/launch", data={**form, "key": key[1]},
                                 allow_redirects=False) as sent:  # fmt: skip
                assert sent.status == 303, await sent.text()
                return sent.headers["Location"]

        locations = await asyncio.gather(confirm(first), confirm(second))
        assert locations[0] == locations[1], "both replicas answer with the same run"
        run_id = locations[0].removeprefix("/launched/")
        async with http.get(f"{second}/launched/{run_id}") as page:
            shown = await page.text()
            assert page.status == 200 and re.search(r'id="pin">\d{6,}<', shown), (
                "the other replica shows the PIN: read from the run, not from a replica's memory"
            )
        runs = [r async for r in running.client.list_workflows('WorkflowType="ProcedureRun"')]
        assert [r.id for r in runs] == [run_id], "one conference"

        async def calls() -> list[dict[str, Any]]:
            return journal(topology, "call")

        await eventually(calls, lambda placed: len(placed) >= 1)
        await asyncio.sleep(2)  # a second conference's calls would have come by now, at 100 calls/s
        assert [entry["to"] for entry in journal(topology, "call")] == ["+41215550101"], "Alice called once"


async def test_the_supervisor_reports_a_crash_while_starting_and_restarts_a_killed_piece(
    tmp_path: Path,
) -> None:
    port = free_port()
    serve = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    web = Piece(
        "web", serve, dict(os.environ), health.http_serving(f"http://127.0.0.1:{port}/"), cwd=tmp_path
    )
    broken = Piece("broken", [sys.executable, "-c", "raise SystemExit('no configuration')"], dict(os.environ),
                   health.http_ok("http://127.0.0.1:9/"))  # fmt: skip
    async with Supervisor(tmp_path / "logs") as supervisor:
        with pytest.raises(PieceFailed, match=r"(?s)broken exited with 1 while starting.*no configuration"):
            await supervisor.start(broken)
        (first,) = await supervisor.start(web)
        await supervisor.kill("web")
        assert first.process.returncode == -signal.SIGKILL
        second = await supervisor.restart("web")
        assert second.alive and second.pid != first.pid
    assert not second.alive, "stopped when the supervisor's block ends"
