"""All of rallycall's parts on loopback around a Temporal client you bring (the time-skipping
server, a dev server): carrier simulator, callback server, mailbox, settings, and the worker on
demand. What the tests, the benchmarks and drills share; `stack.embedded` is the same with a
dev server of its own and fixed ports, for people.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, overload

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from callbacks import urls
from callbacks.server import build_app, serve
from callbacks.urls import callback_url
from carrier.accounts import Carriers
from carrier.simulator import CarrierSimulator, Scenario
from carrier.twilio import TwilioCarrier
from config import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, DEV_ENCRYPTION_KEYS, EXAMPLES, Settings, data_converter
from directory import pin_lease_id
from domain.run_view import RunView
from launching import Launched, LaunchRequest, launch, red_button
from localmail.server import Mailbox
from procedures.definitions import Definitions, load_definitions
from stack import second_carrier
from stack.binaries import temporal_test_server
from stack.ports import free_port
from watch import NoWorker, read_view
from worker import running_workers, smtp_settings
from workflows import search_attributes
from workflows.procedure_run import ProcedureRun

T = TypeVar("T")
SHIPPED = load_definitions(EXAMPLES)
"""The shipped definitions: the red button is `conference-call` with the CONFCALL scheme."""


@contextlib.asynccontextmanager
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server from PyPI, with rallycall's search attributes registered."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_test_server(),
        data_converter=data_converter(Settings(_env_file=None, encryption_keys=DEV_ENCRYPTION_KEYS)),
    )
    try:
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={
                    key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
                    for key in search_attributes.ALL
                },
            )
        )
        yield env
    finally:
        await env.shutdown()


@dataclass(frozen=True)
class Bridged:
    """A launched run with a bridge: its PIN is known."""

    workflow_id: str
    pin: str
    dial_in_number: str


@dataclass
class Harness:
    """One conference setup: simulator, callback server, mailbox and settings on loopback."""

    client: Client
    settings: Settings
    simulator: CarrierSimulator
    simulator_url: str
    mailbox: Mailbox
    carrier_log: Path
    contacts_file: Path
    launched: list[str] = field(default_factory=list)
    journal: list[dict[str, Any]] = field(default_factory=list)
    """The carrier's journal read so far: tests and the bench poll it every 50 ms, and reading
    all of it each time was a fifth of the bench process's CPU at 1,000 people."""
    journal_read: int = 0
    backup: CarrierSimulator | None = None
    """A second carrier, `telnyx` (the simulator speaking Telnyx's API), after the first
    (`twilio`): its own account, number, journal, faults and bridges."""
    backup_url: str = ""

    def carriers(self) -> Carriers:
        """The adapters a worker or callback server of this setup talks to, in order."""
        if self.backup is None:
            return Carriers({"twilio": TwilioCarrier(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, self.simulator_url)})
        return Carriers.of(self.settings.carrier_accounts())

    def backup_entries(self, kind: str) -> list[dict[str, Any]]:
        """What the second carrier recorded of this kind (read whole: drills of a few people)."""
        log = self.carrier_log.with_name("carrier-telnyx.jsonl")
        lines = log.read_text().splitlines() if log.exists() else []
        return [e for e in map(json.loads, lines) if e["kind"] == kind]

    async def launch(
        self, *to: str, welcome: str = "", definitions: Definitions = SHIPPED, **options: Any
    ) -> Bridged:
        """Press the red button (the `conference-call` procedure) for these destinations."""
        red = definitions.procedure("conference-call")
        request = red_button(
            red, definitions.schemes, list(to), welcome, contacts_file=self.contacts_file, **options
        )
        launched = await self.start(request)
        assert launched.pin is not None, "a conference has a PIN"
        return Bridged(launched.workflow_id, launched.pin, launched.dial_in_number)

    async def launch_procedure(
        self, name: str, fields: dict[str, str], definitions: Definitions = SHIPPED, **options: Any
    ) -> Launched:
        procedure = definitions.procedure(name)
        return await self.start(
            LaunchRequest(procedure, definitions.schemes, fields, contacts_file=self.contacts_file, **options)
        )

    async def start(self, request: LaunchRequest) -> Launched:
        launched = await launch(self.client, self.settings, request)
        self.launched.append(launched.workflow_id)
        if launched.pin:
            self.launched.append(pin_lease_id(launched.pin, self.settings.pin_secret))
        return launched

    async def terminate_leftovers(self) -> None:
        """A test that failed half-way leaves its runs (and their PIN leases) running without a
        worker: stop them, or the time-skipping server would wait for them forever."""
        for workflow_id in self.launched:
            with contextlib.suppress(RPCError):
                await self.client.get_workflow_handle(workflow_id).terminate("test over")

    def worker_environment(self) -> dict[str, str]:
        """The variables for `worker.py` in a process of its own, serving this setup."""
        return {
            **os.environ,
            "TEMPORAL_ADDRESS": self.client.service_client.config.target_host,
            "RALLYCALL_TASK_QUEUE": self.settings.task_queue,
            "RALLYCALL_TWILIO_API_URL": self.simulator_url,
            "RALLYCALL_PUBLIC_URL": self.settings.public_url,
            "RALLYCALL_SMTP_HOST": "127.0.0.1",
            "RALLYCALL_SMTP_PORT": str(self.mailbox.port),
            "RALLYCALL_CALLS_PER_SECOND": str(self.settings.calls_per_second),
        }

    def handle(self, launched: Launched | Bridged) -> WorkflowHandle[Any, RunView]:
        return self.client.get_workflow_handle_for(ProcedureRun.run, launched.workflow_id)

    async def roster(self, launched: Launched | Bridged) -> RunView:
        """The run's view, its batches' people included."""
        return await read_view(self.client, launched.workflow_id)

    def carrier_entries(self, kind: str) -> list[dict[str, Any]]:
        """What the carrier recorded of this kind: the journal is append-only, so only what was
        added since the last look is read (whole lines)."""
        if self.carrier_log.exists():
            with self.carrier_log.open("rb") as journal:
                journal.seek(self.journal_read)
                added = journal.read()
            complete = added[: added.rfind(b"\n") + 1]
            self.journal_read += len(complete)
            self.journal.extend(json.loads(line) for line in complete.splitlines())
        return [e for e in self.journal if e["kind"] == kind]

    def called_numbers(self) -> list[str]:
        return [e["to"] for e in self.carrier_entries("call")]

    def texted_numbers(self) -> list[str]:
        return [e["to"] for e in self.carrier_entries("sms")]

    @contextlib.asynccontextmanager
    async def worker(self, smtp_port: int | None = None, calls_too: bool = True) -> AsyncIterator[None]:
        """The worker; `smtp_port` sends its email elsewhere (a dead port: mail is down);
        without `calls_too`, no worker places calls (they wait on the calls queue)."""
        carriers = self.carriers()
        smtp = smtp_settings(self.settings, smtp_port or self.mailbox.port)
        try:
            async with running_workers(self.client, self.settings, carriers, smtp, calls_too=calls_too):
                yield
        finally:
            await carriers.close()


@contextlib.asynccontextmanager
async def harness(
    client: Client,
    tmp_path: Path,
    contacts_file: Path,
    scenario: Scenario,
    calls_per_second: float = 100,
    backup: Scenario | None = None,
    **settings: Any,
) -> AsyncIterator[Harness]:
    """`settings` override the loopback's (e.g. the dial-in line's limits); with `backup`, a
    second carrier (`telnyx`) after the first, answering as that scenario says."""
    carrier_log = tmp_path / "carrier.jsonl"
    port = free_port()
    mailbox = Mailbox(tmp_path / "mail")
    mailbox.start()
    config = Settings(
        _env_file=None,
        task_queue=f"tests-{uuid.uuid4().hex[:8]}",
        public_url=f"http://127.0.0.1:{port}",
        smtp_port=mailbox.port,
        data_dir=tmp_path,
        calls_per_second=calls_per_second,
        **settings,
    )
    simulator = CarrierSimulator(
        DEV_ACCOUNT_SID,
        DEV_AUTH_TOKEN,
        scenario.with_account_rate(calls_per_second, config.sms_per_second),
        carrier_log,
        dial_in_number=config.dial_in_number,
        voice_url=callback_url(config.public_url, urls.VOICE_INBOUND),
    )
    sim_runner = await serve(simulator.app(), "127.0.0.1", 0)
    simulator_url = "http://{}:{}".format(*sim_runner.addresses[0][:2])
    h = Harness(client, config, simulator, simulator_url, mailbox, carrier_log, contacts_file)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(sim_runner.cleanup)
        if backup is not None:
            h.backup = second_carrier.simulator(config, backup, carrier_log.with_name("carrier-telnyx.jsonl"))
            backup_runner = await serve(h.backup.app(), "127.0.0.1", 0)
            stack.push_async_callback(backup_runner.cleanup)
            h.backup_url = "http://{}:{}".format(*backup_runner.addresses[0][:2])
            h.settings = config = config.model_copy(
                update={"carriers": second_carrier.carriers(config, simulator_url, h.backup_url)}
            )
        relay = h.carriers()
        stack.push_async_callback(relay.close)
        callbacks = await serve(build_app(relay, client, config), "127.0.0.1", port)
        stack.push_async_callback(callbacks.cleanup)
        stack.callback(mailbox.stop)
        try:
            yield h
        finally:
            await h.terminate_leftovers()


BACKUP_NUMBER = second_carrier.NUMBER


@overload
async def eventually(
    probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], seconds: float = 10, every: float = 0.05
) -> T: ...
@overload
async def eventually(
    probe: Callable[[], T], check: Callable[[T], bool], seconds: float = 10, every: float = 0.05
) -> T: ...
async def eventually(
    probe: Callable[[], Any], check: Callable[[Any], bool], seconds: float = 10, every: float = 0.05
) -> Any:
    """Poll `probe` (in real time, `every` seconds) until `check` holds; fail with the last value
    otherwise. A run whose worker is not answering yet (restarting) is polled again."""
    deadline = asyncio.get_running_loop().time() + seconds
    value: Any = None
    while True:
        try:
            value = probe()
            if inspect.isawaitable(value):
                value = await value
        except NoWorker as exc:
            value = exc
        else:
            if check(value):
                return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {seconds}s; last value: {value!r}")
        await asyncio.sleep(every)
