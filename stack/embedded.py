"""Start and stop the pieces of the embedded stack together, in one event loop."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from callbacks import urls
from callbacks.server import build_app, serve
from callbacks.urls import callback_url
from carrier.accounts import Carriers
from carrier.simulator import CarrierSimulator, load_scenario
from codec import server as codec_server
from codec.aes import AesGcmCodec
from config import Settings, data_converter, temporal_target
from console.app import build_app as console_app
from console.app import listen_address
from console.app import serve as serve_console
from console.auth import Users
from console.demo import demo_sign_in
from localmail.server import Mailbox
from stack import second_carrier
from stack.binaries import temporal_cli
from stack.dev_server import ONE_PARTITION
from worker import running_workers, smtp_settings
from workflows import search_attributes

log = logging.getLogger("rallycall.stack")


@dataclass
class RunningStack:
    client: Client
    temporal_address: str
    simulator_url: str | None
    twilio_api_url: str
    second_carrier_url: str | None
    """The simulated Telnyx, when the stack simulates its carriers (its journal beside the first's)."""
    config: Settings
    """The settings the stack runs on: the simulated carriers in them."""
    smtp_port: int
    mailbox: Mailbox
    console_url: str
    codec_url: str
    """Where the Web UI (and `temporal --codec-endpoint`) has payloads decrypted."""
    console_demo: tuple[str, str] | None
    """The demo account's name and password, when the users file has no real account."""


@contextlib.asynccontextmanager
async def running_stack(config: Settings) -> AsyncIterator[RunningStack]:
    """Everything a conference needs, on loopback; torn down in reverse order on exit."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    host, port = temporal_target().rsplit(":", 1)
    async with contextlib.AsyncExitStack() as stack:
        codec, codec_url = await codec_server.serve(
            AesGcmCodec(config.encryption_key_ring), codec_server.ui_origins(config.ui_port)
        )
        stack.push_async_callback(codec.cleanup)
        env = await WorkflowEnvironment.start_local(
            ip="127.0.0.1" if host in ("localhost", "127.0.0.1") else host,
            port=int(port),
            ui=True,
            ui_port=config.ui_port,
            search_attributes=search_attributes.ALL,
            data_converter=data_converter(config),
            dev_server_existing_path=temporal_cli(),
            dev_server_database_filename=str(config.data_dir / "temporal.db"),
            dev_server_log_level="error",
            dev_server_extra_args=["--ui-codec-endpoint", codec_url, *ONE_PARTITION],
        )
        stack.push_async_callback(env.shutdown)

        mailbox = Mailbox(
            config.mail_dir, port=config.smtp_port if "smtp_port" in config.model_fields_set else 0
        )
        mailbox.start()
        stack.callback(mailbox.stop)

        simulator_url = second_url = None
        api_url = config.twilio_api_url
        if not api_url and not config.carriers:
            scenario = load_scenario(config.scenario)
            simulator = CarrierSimulator(
                config.twilio_account_sid,
                config.twilio_auth_token,
                scenario.with_account_rate(config.calls_per_second, config.sms_per_second),
                config.carrier_log,
                dial_in_number=config.dial_in_number,
                voice_url=callback_url(config.public_url, urls.VOICE_INBOUND),
            )
            runner = await serve(simulator.app(), "127.0.0.1", config.simulator_port)
            stack.push_async_callback(runner.cleanup)
            simulator_url = api_url = _url_of(runner)
            (config.data_dir / "simulator.url").write_text(simulator_url)
            second = second_carrier.simulator(config, scenario, config.data_dir / "carrier-telnyx.jsonl")
            second_runner = await serve(second.app(), "127.0.0.1", 0)
            stack.push_async_callback(second_runner.cleanup)
            second_url = _url_of(second_runner)
            config = config.model_copy(
                update={"carriers": second_carrier.carriers(config, simulator_url, second_url)}
            )

        carriers = Carriers.of(config.carrier_accounts())
        stack.push_async_callback(carriers.close)
        callbacks = await serve(
            build_app(carriers, env.client, config), config.callback_host, config.callback_port
        )
        stack.push_async_callback(callbacks.cleanup)

        await stack.enter_async_context(
            running_workers(env.client, config, carriers, smtp_settings(config, port=mailbox.port))
        )
        users = Users(config.users_path)
        console_demo = demo_sign_in(users)
        console = await serve_console(console_app(env.client, config, users), *listen_address(config))
        stack.push_async_callback(console.cleanup)

        yield RunningStack(
            client=env.client,
            temporal_address=f"{host}:{port}",
            simulator_url=simulator_url,
            twilio_api_url=api_url or "",
            second_carrier_url=second_url,
            config=config,
            smtp_port=mailbox.port,
            mailbox=mailbox,
            console_url=config.console_url,
            codec_url=codec_url,
            console_demo=console_demo,
        )


def _url_of(runner: web.AppRunner) -> str:
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"
