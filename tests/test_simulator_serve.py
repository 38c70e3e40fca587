"""`python -m carrier.simulator serve`: the simulator as a process of its own, as other programs
start it (like the real carrier, it outlives our servers), stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from tests.test_simulator_support import CALLER_ID, twilio_client

ROOT = Path(__file__).resolve().parent.parent
SWITCHED_OFF = "+41795550109"


async def test_serve_prints_its_url_first_and_runs_until_sigterm(tmp_path: Path) -> None:
    scenario, journal = tmp_path / "scenario.yaml", tmp_path / "carrier.jsonl"
    scenario.write_text(f'sms_undelivered: ["{SWITCHED_OFF}"]\n')
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "carrier.simulator", "serve", "--port", "0",
        "--scenario", str(scenario), "--log", str(journal),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        url = (await asyncio.wait_for(process.stdout.readline(), 10)).decode().strip()
        assert url.startswith("http://127.0.0.1:")
        async with twilio_client(url) as client:
            sent = await client.messages.create_async(to=SWITCHED_OFF, from_=CALLER_ID, body="PIN 1")
            for _ in range(100):
                [listed] = await client.messages.list_async(to=SWITCHED_OFF)
                if listed.status == "undelivered":
                    break
                await asyncio.sleep(0.02)
        assert (listed.sid, listed.status) == (sent.sid, "undelivered"), "the scenario file is the one given"
        assert json.loads(journal.read_text().splitlines()[0])["sid"] == sent.sid
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
