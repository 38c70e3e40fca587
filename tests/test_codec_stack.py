"""Nothing personal in clear in Temporal, on the embedded stack as `make stack` runs it.

One conference runs through everything that writes payloads: calls, a carrier refusal (a
failure), home calls, the PIN by SMS and email, a wrong and a right PIN dialled in (updates,
signals, the dial-in guard, the caller index), moderation's end. Then every workflow of the
namespace, as `temporal workflow show` and `describe` print it, holds no PIN, number, name or
email; the same CLI through the stack's codec server, and the Web UI in headless Chromium, read
them. The logs of the whole run never print the PIN, a whole number or an email.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.async_api import async_playwright, expect
from twilio.base.exceptions import TwilioRestException

from carrier.simulator.client import place_inbound_call
from carrier.twilio import classify
from codec.aes import ENCODING
from config import Settings
from domain.events import EndRequest
from launching import launch, red_button
from stack.binaries import temporal_cli
from stack.embedded import RunningStack, running_stack
from stack.ports import free_port
from tests.support import CONTACTS, FAST, eventually
from watch import read_view
from workflows.procedure_run import ProcedureRun

CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
PEOPLE = CONTACTS["contacts"]
NUMBERS = {p[f] for p in PEOPLE for f in ("voice_pro", "voice_home", "mobile") if f in p}
NAMES = {word for p in PEOPLE for word in p["name"].split() if len(word) > 3} | {"Chlo"}
EMAILS = {p["email"] for p in PEOPLE if "email" in p}
SCENARIO = {
    "ring_seconds": 0.05,
    "default": "no-answer",
    "numbers": {"+41215550101": "answer", "+41215550112": "answer", "+41215550114": "answer"},
    "faults": {"+41215550103": ["21614"]},  # Chloé's work phone: refused by the carrier
}
CLEAR_BY_DESIGN = r"searchAttributes|indexedFields|patch-data|markerRecordedEventAttributes\.details\.data\."
"""Search attributes (indexed, so never encoded), `workflow.patched` markers (the SDK writes the
patch's name, ours are code words) and local activities' bookkeeping (sequence, attempt, times,
activity type: the SDK writes it unencoded; the local activity's result is encrypted)."""
OPERATOR = "operator7"
"""RallycallLaunchedBy: the operator's login stays in clear, the console and `list` filter on it."""


@dataclass
class Drill:
    stack: RunningStack
    config: Settings
    run_id: str
    pin: str
    contacts: Path
    logs: list[str] = field(default_factory=list)

    def personal(self) -> set[str]:
        """What must never appear in clear: every number (with and without +), name, email, PIN."""
        return {self.pin} | NUMBERS | {n.lstrip("+") for n in NUMBERS} | NAMES | EMAILS


class Capture(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.INFO)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(self.format(record))  # with the traceback, as a log file would have it


@pytest.fixture(scope="module")
async def drill(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Drill]:
    folder = tmp_path_factory.mktemp("codec-stack")
    (folder / "contacts.yaml").write_text(yaml.safe_dump(CONTACTS, allow_unicode=True), encoding="utf-8")
    (folder / "scenario.yaml").write_text(yaml.safe_dump(SCENARIO))
    callback_port = free_port()
    config = Settings(
        _env_file=None,
        data_dir=folder / "data",
        ui_port=free_port(),
        callback_addr=f"127.0.0.1:{callback_port}",
        public_url=f"http://127.0.0.1:{callback_port}",
        console_addr=f"127.0.0.1:{free_port()}",
        calls_per_second=50,
        pin_digits=12,  # no chance of meeting it among timestamps and IDs
        scenario=folder / "scenario.yaml",
    )
    logs: list[str] = []
    root = logging.getLogger()
    capture, level = Capture(logs), root.level
    root.addHandler(capture)
    root.setLevel(logging.INFO)  # as the worker and the callback server log in production
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")
            async with running_stack(config) as stack:
                yield await run_conference(stack, config, folder / "contacts.yaml", logs)
    finally:
        root.removeHandler(capture)
        root.setLevel(level)


async def run_conference(stack: RunningStack, config: Settings, contacts: Path, logs: list[str]) -> Drill:
    red = FAST.procedure("conference-call")
    request = red_button(red, FAST.schemes, ["alice", "bruno", "chloe", "dan"], "Flood in hall B",
                         contacts_file=contacts, launched_by=OPERATOR)  # fmt: skip
    launched = await launch(stack.client, config, request)
    assert launched.pin and stack.simulator_url
    await eventually(
        lambda: read_view(stack.client, launched.workflow_id),
        lambda view: sum(len(p.notifications) for p in view.people) == 7,  # 4 SMS, 3 emails
        seconds=20,
    )
    wrong = str((int(launched.pin) + 1) % 10**12).zfill(12)
    dialled = await place_inbound_call(stack.simulator_url, "+41795550103", [wrong, launched.pin])
    assert dialled["joined"] == launched.workflow_id, dialled
    handle = stack.client.get_workflow_handle_for(ProcedureRun.run, launched.workflow_id)
    await handle.execute_update(ProcedureRun.end, EndRequest(reason="drill over"))
    await handle.result()
    return Drill(stack, config, launched.workflow_id, launched.pin, contacts, logs)


async def temporal(drill: Drill, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        temporal_cli(), *args, "--address", drill.stack.temporal_address,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


def payloads(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every payload in the CLI's JSON (metadata and data in base64), with where it is."""
    if isinstance(node, dict):
        if isinstance(node.get("metadata"), dict) and "encoding" in node["metadata"]:
            yield path, node
            return
        for key, value in node.items():
            yield from payloads(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from payloads(value, f"{path}[{index}]")


def in_clear(text: str, secrets: set[str]) -> set[str]:
    """Each secret as a word of its own: not inside base64 ciphertext, where four letters such as
    'chlo' turned up by chance (once, in a `.ci/run`), nor inside a longer run of digits."""
    return {s for s in secrets if re.search(rf"(?<![A-Za-z0-9]){re.escape(s)}(?![0-9])", text)}


async def test_temporal_shows_ciphertext_only(drill: Drill) -> None:
    listing = await temporal(drill, "workflow", "list", "-o", "json")
    assert not in_clear(listing, drill.personal()), "memos, summaries and search attributes of the list"
    listed = json.loads(listing)
    ids = sorted({w["execution"]["workflowId"] for w in listed})
    kinds = {w["type"]["name"] for w in listed}
    assert {"ProcedureRun", "PinLease", "DialInGuard", "CallerIndex"} <= kinds, kinds
    commands = [
        (workflow_id, command)
        for workflow_id in ids
        for command in (["show", "--detailed"], ["show", "-o", "json"], ["describe", "-o", "json"])
    ]
    outputs = await asyncio.gather(*(temporal(drill, "workflow", *c, "-w", w) for w, c in commands))
    encrypted, clear_attributes = 0, set()
    for (workflow_id, command), output in zip(commands, outputs, strict=True):
        assert not in_clear(output, drill.personal()), (workflow_id, command)
        if "json" not in command:
            continue
        for path, payload in payloads(json.loads(output)):
            encoding = base64.b64decode(payload["metadata"]["encoding"])
            if encoding == ENCODING:
                encrypted += 1
                continue
            value = base64.b64decode(payload.get("data", "")).decode()
            assert re.search(CLEAR_BY_DESIGN, path), (workflow_id, path, value)
            assert not in_clear(value, drill.personal()), (workflow_id, path)
            clear_attributes.add(value)
    assert encrypted > 100, "inputs, results, signals, updates, memos, summaries and failures"
    assert f'"{OPERATOR}"' in clear_attributes, "RallycallLaunchedBy is kept in clear, for filtering"


async def test_the_cli_reads_the_run_through_the_codec_server(drill: Drill) -> None:
    show = ["workflow", "show", "--detailed", "-w", drill.run_id]
    decoded = await temporal(drill, *show, "--codec-endpoint", drill.stack.codec_url)
    expected = {"Alice Martin", drill.pin, "+41215550101", "alice@example.com", "Twilio error 21614"}
    assert in_clear(decoded, expected) == expected, "inputs, updates, activity inputs, failures decoded"


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (Debian: apt-get install chromium)")
async def test_an_operator_reads_the_roster_in_the_web_ui(drill: Drill) -> None:
    """A running run: its input, summary, details and roster (the current details, a query's
    encrypted result) are shown decoded, through the codec server the dev server's UI was given."""
    assert CHROMIUM is not None
    red = FAST.procedure("conference-call")
    request = red_button(red, FAST.schemes, ["alice", "bruno"], "Gas leak in lab 3",
                         contacts_file=drill.contacts, launched_by=OPERATOR)  # fmt: skip
    running = await launch(drill.stack.client, drill.config, request)
    handle = drill.stack.client.get_workflow_handle_for(ProcedureRun.run, running.workflow_id)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1400, "height": 1400})
            await page.goto(
                f"http://localhost:{drill.config.ui_port}/namespaces/default/workflows/{running.workflow_id}"
            )
            await expect(page.get_by_text('"bruno"')).to_be_visible(
                timeout=20_000
            )  # the input's destinations
            await page.get_by_role("tab", name="User Metadata").click()
            summary, details, roster = (page.locator("iframe").nth(n).content_frame for n in range(3))
            await expect(summary.get_by_text("Conference call: Alice Martin, Bruno Keller")).to_be_visible()
            await expect(details.get_by_text("Gas leak in lab 3")).to_be_visible()
            await expect(roster.get_by_role("cell", name="Alice Martin", exact=True)).to_be_visible()
            await browser.close()
    finally:
        await handle.execute_update(ProcedureRun.end, EndRequest(reason="seen in the Web UI"))


def test_logs_never_print_the_pin_a_whole_number_or_an_email(drill: Drill) -> None:
    assert any("wrong PIN from +41*****0103" in line for line in drill.logs), "the dial-in was logged"
    assert any("Twilio error 21614" in line for line in drill.logs), "the carrier's refusal was logged"
    leaks = {
        line for line in drill.logs if in_clear(line, {drill.pin} | {n.lstrip("+") for n in NUMBERS} | EMAILS)
    }
    assert not leaks


def test_carrier_errors_mask_the_number_twilio_names() -> None:
    refused = TwilioRestException(
        400, "https://api.twilio.com/Calls.json", "The 'To' number +41215550199 is not valid", code=21211
    )
    assert str(classify(refused)) == "Twilio error 21211: The 'To' number +41*****0199 is not valid"
