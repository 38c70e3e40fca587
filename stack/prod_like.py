"""The production topology, run here: every piece its own OS process, as in a deployment.

    carrier simulator (the outside carrier) ──> proxy (the load balancer: RALLYCALL_PUBLIC_URL)
                                                  ├─> callback server 1 ─┐
                                                  └─> callback server 2 ─┼─> Temporal dev server
    mailbox (the outside SMTP server) <── worker 1, worker 2 ────────────┤   (standing in for a
                                          console 1, console 2 ────────┘    cluster)

The callback servers and the consoles share nothing in memory: what they know lives in Temporal
(and the consoles' accounts in one users file). Every piece is
told where the others are through the environment only, as a deployment would tell it, and runs
in the data folder (so no `.env` of the checkout leaks in). `make prod-like` runs it until
Ctrl-C; `tests/test_prod_like.py` kills a worker and a callback server under a live conference.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.common import SearchAttributeKey

import rallycall_cli
from callbacks import urls
from callbacks.urls import callback_url
from codec.server import ui_origins
from config import EXAMPLES, Settings, data_converter
from stack import health
from stack.binaries import temporal_cli
from stack.dev_server import ONE_PARTITION
from stack.ports import free_port
from stack.processes import Piece, PieceFailed, Probe, Supervisor
from workflows import search_attributes

LOOPBACK = "127.0.0.1"
NOT_INHERITED = ("RALLYCALL_", "TEMPORAL_", "TWILIO_")
"""The pieces' settings come from the topology alone, never from the shell that started it."""


@dataclass(frozen=True)
class Topology:
    """Every address, decided before anything starts, so each piece can be told where the
    others are. `on_free_ports` picks free loopback ports."""

    data_dir: Path
    scenario: Path | None
    temporal_port: int
    ui_port: int
    smtp_port: int
    simulator_port: int
    proxy_port: int
    callback_ports: tuple[int, ...]
    console_ports: tuple[int, ...]
    """The console replicas; people and call-me links use the first (no balancer in front:
    the stand-in proxy buffers whole responses, which the live pages' streams cannot use)."""
    codec_port: int
    workers: int = 2
    calls_per_second: float = 1.0

    @classmethod
    def on_free_ports(
        cls,
        data_dir: Path,
        scenario: Path | None,
        *,
        workers: int = 2,
        callback_servers: int = 2,
        consoles: int = 2,
        calls_per_second: float = 1.0,
    ) -> Topology:
        return cls(
            data_dir=data_dir.resolve(),
            scenario=scenario.resolve() if scenario else None,
            temporal_port=free_port(),
            ui_port=free_port(),
            smtp_port=free_port(),
            simulator_port=free_port(),
            proxy_port=free_port(),
            callback_ports=tuple(free_port() for _ in range(callback_servers)),
            console_ports=tuple(free_port() for _ in range(consoles)),
            codec_port=free_port(),
            workers=workers,
            calls_per_second=calls_per_second,
        )

    @property
    def temporal_address(self) -> str:
        return f"{LOOPBACK}:{self.temporal_port}"

    @property
    def public_url(self) -> str:
        """Where the carrier reaches the callback servers: the proxy."""
        return f"http://{LOOPBACK}:{self.proxy_port}"

    @property
    def simulator_url(self) -> str:
        return f"http://{LOOPBACK}:{self.simulator_port}"

    @property
    def console_url(self) -> str:
        return self.console_urls[0]

    @property
    def console_urls(self) -> list[str]:
        return [f"http://{LOOPBACK}:{port}" for port in self.console_ports]

    @property
    def codec_url(self) -> str:
        """The codec server the Web UI decrypts payloads through."""
        return f"http://{LOOPBACK}:{self.codec_port}"

    @property
    def journal(self) -> Path:
        """The carrier's JSON-lines log of calls, texts and webhooks."""
        return self.data_dir / "carrier.jsonl"

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    def settings(self) -> Settings:
        """What every piece is configured with, for clients in this process (a launch, a drill)."""
        return Settings(
            _env_file=None,
            data_dir=self.data_dir,
            public_url=self.public_url,
            twilio_api_url=self.simulator_url,
            smtp_host=LOOPBACK,
            smtp_port=self.smtp_port,
            calls_per_second=self.calls_per_second,
            console_url=self.console_url,
            users_file=self.data_dir / "users.json",
            ui_port=self.ui_port,
        )

    def environment(self, **extra: str) -> dict[str, str]:
        """The environment of a rallycall piece: the topology's settings and nothing inherited."""
        config = self.settings()
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(NOT_INHERITED)}
        return {
            **inherited,
            "PYTHONUNBUFFERED": "1",
            "TEMPORAL_ADDRESS": self.temporal_address,
            "RALLYCALL_ENVIRONMENT": "development",  # the simulator and the embedded dev secrets
            "RALLYCALL_DATA_DIR": str(config.data_dir),
            "RALLYCALL_TASK_QUEUE": config.task_queue,
            "RALLYCALL_PUBLIC_URL": config.public_url,
            "RALLYCALL_TWILIO_API_URL": self.simulator_url,
            "RALLYCALL_DIAL_IN_NUMBER": config.dial_in_number,
            "RALLYCALL_CALLS_PER_SECOND": str(config.calls_per_second),
            "RALLYCALL_PIN_SECRET": config.pin_secret,
            "RALLYCALL_ENCRYPTION_KEYS": config.encryption_keys.get_secret_value(),
            "RALLYCALL_SMTP_HOST": config.smtp_host,
            "RALLYCALL_SMTP_PORT": str(config.smtp_port),
            "RALLYCALL_CONSOLE_URL": config.console_url,
            "RALLYCALL_CONSOLE_SECRET": config.console_secret,
            "RALLYCALL_USERS_FILE": str(config.users_path),
            "RALLYCALL_UI_PORT": str(config.ui_port),
            **extra,
        }


def temporal_server(topology: Topology) -> Piece:
    """The dev server on a file, standing in for a cluster, with rallycall's search attributes."""
    argv = [temporal_cli(), "server", "start-dev", "--ip", LOOPBACK, "--port", str(topology.temporal_port),
            "--ui-port", str(topology.ui_port), "--db-filename", str(topology.data_dir / "temporal.db"),
            "--ui-codec-endpoint", topology.codec_url, "--log-level", "warn", *ONE_PARTITION]  # fmt: skip
    for key in search_attributes.ALL:
        argv += ["--search-attribute", f"{key.name}={cli_type(key)}"]
    return Piece("temporal", argv, topology.environment(), health.temporal_serving(topology.temporal_address),
                 cwd=topology.data_dir)  # fmt: skip


def cli_type(key: SearchAttributeKey[Any]) -> str:
    """The CLI's name of an attribute's type: INDEXED_VALUE_TYPE_KEYWORD_LIST is KeywordList."""
    words = key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_").split("_")
    return "".join(word.capitalize() for word in words)


def rallycall(topology: Topology, name: str, module: str, *args: str, healthy: Probe,
              **extra: str) -> Piece:  # fmt: skip
    """A piece run as `python -m module`, exactly as the `rallycall` command runs it."""
    argv = [sys.executable, "-m", module, *args]
    return Piece(name, argv, topology.environment(**extra), healthy, cwd=topology.data_dir)


def outside_world(topology: Topology) -> list[Piece]:
    """The carrier and the mail server, which a deployment does not run: their stand-ins."""
    simulator = ["serve", "--port", str(topology.simulator_port), "--log", str(topology.journal),
                 "--dial-in-number", topology.settings().dial_in_number,
                 "--voice-url", callback_url(topology.public_url, urls.VOICE_INBOUND)]  # fmt: skip
    simulator += ["--scenario", str(topology.scenario)] if topology.scenario else []
    return [
        rallycall(topology, "mailbox", "localmail", "--port", str(topology.smtp_port),
                  "--folder", str(topology.mail_dir), healthy=health.listening(LOOPBACK, topology.smtp_port)),
        rallycall(topology, "simulator", "carrier.simulator", *simulator,
                  healthy=health.listening(LOOPBACK, topology.simulator_port)),
    ]  # fmt: skip


def callback_servers(topology: Topology) -> list[Piece]:
    return [
        rallycall(topology, f"callbacks-{n}", "callbacks", RALLYCALL_CALLBACK_ADDR=f"{LOOPBACK}:{port}",
                  healthy=health.http_ok(f"http://{LOOPBACK}:{port}/healthz"))
        for n, port in enumerate(topology.callback_ports, start=1)
    ]  # fmt: skip


def codec(topology: Topology) -> Piece:
    """The codec server for the Web UI, as an operator runs it next to a cluster's UI."""
    origins = [arg for origin in ui_origins(topology.ui_port) for arg in ("--origin", origin)]
    return rallycall(topology, "codec", "codec", "serve", "--port", str(topology.codec_port), *origins,
                     healthy=health.listening(LOOPBACK, topology.codec_port))  # fmt: skip


def load_balancer(topology: Topology) -> Piece:
    upstreams = [
        arg for port in topology.callback_ports for arg in ("--upstream", f"http://{LOOPBACK}:{port}")
    ]
    return rallycall(topology, "proxy", "stack.proxy", "--port", str(topology.proxy_port), *upstreams,
                     healthy=health.http_ok(f"{topology.public_url}/healthz"))  # fmt: skip


def workers(topology: Topology, client: Client) -> list[Piece]:
    polling = health.polling(client, topology.settings().task_queue)
    return [
        rallycall(topology, f"worker-{n}", "worker", healthy=polling) for n in range(1, topology.workers + 1)
    ]


def consoles(topology: Topology) -> list[Piece]:
    """The console replicas, in a version that has a console."""
    if not rallycall_cli.runnable("console"):
        return []
    return [
        rallycall(topology, f"console-{n}", "console", RALLYCALL_CONSOLE_ADDR=f"{LOOPBACK}:{port}",
                  healthy=health.http_ok(f"http://{LOOPBACK}:{port}/healthz"))
        for n, port in enumerate(topology.console_ports, start=1)
    ]  # fmt: skip


@dataclass(frozen=True)
class ProdLike:
    topology: Topology
    supervisor: Supervisor
    client: Client
    """A client of the topology's Temporal server, for launches, queries and drills."""

    async def worker_holding(self, workflow_id: str) -> str:
        """The worker that ran the workflow's latest task: its cache holds the run, so killing it
        makes the server wait out the sticky queue's timeout before another worker takes over."""
        history = await self.client.get_workflow_handle(workflow_id).fetch_history()
        identity = next(
            event.workflow_task_started_event_attributes.identity
            for event in reversed(history.events)
            if event.HasField("workflow_task_started_event_attributes")
        )
        return next(
            name
            for name in self.supervisor.names()
            if name.startswith("worker-") and identity.startswith(f"{self.supervisor[name].pid}@")
        )


@contextlib.asynccontextmanager
async def prod_like(topology: Topology) -> AsyncIterator[ProdLike]:
    """Start every piece and wait until each is healthy; stop them all on exit."""
    topology.data_dir.mkdir(parents=True, exist_ok=True)
    async with Supervisor(topology.logs) as supervisor:
        await supervisor.start(temporal_server(topology))
        converter = data_converter(topology.settings())
        client = await Client.connect(topology.temporal_address, data_converter=converter)
        rallycall_pieces = [*callback_servers(topology), *workers(topology, client), *consoles(topology)]
        await supervisor.start(
            *outside_world(topology), *rallycall_pieces, codec(topology), load_balancer(topology)
        )
        yield ProdLike(topology, supervisor, client)


def clear_previous_run(topology: Topology) -> None:
    """Ports are new each time, so runs left in Temporal's database would call back to nowhere:
    start from an empty database, journal, mailbox and logs (console accounts are kept)."""
    for path in topology.data_dir.glob("temporal.db*"):
        path.unlink()
    topology.journal.unlink(missing_ok=True)
    for folder in (topology.mail_dir, topology.logs):
        shutil.rmtree(folder, ignore_errors=True)


def shell_exports(topology: Topology) -> str:
    """What a shell needs for `rallycall` commands against this topology (`source` it)."""
    ours = {k: v for k, v in topology.environment().items() if k.startswith(NOT_INHERITED)}
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in sorted(ours.items()))


def banner(running: ProdLike) -> list[str]:
    topology, supervisor = running.topology, running.supervisor
    where = {
        "temporal": f"{topology.temporal_address}, Web UI http://{LOOPBACK}:{topology.ui_port}",
        "mailbox": f"smtp://{LOOPBACK}:{topology.smtp_port} -> {topology.mail_dir}/",
        "simulator": f"{topology.simulator_url}, journal {topology.journal}",
        "proxy": f"{topology.public_url} (RALLYCALL_PUBLIC_URL)",
        "codec": f"{topology.codec_url} (the Web UI decrypts through it)",
    }
    where |= {
        f"callbacks-{n}": f"http://{LOOPBACK}:{port}" for n, port in enumerate(topology.callback_ports, 1)
    }
    where |= {f"console-{n}": url for n, url in enumerate(topology.console_urls, 1)}
    lines = ["rallycall prod-like topology is up (Ctrl-C stops it)"]
    lines += [
        f"  {name:<12} pid {supervisor[name].pid:<8} {where.get(name, '')}" for name in supervisor.names()
    ]
    lines += [
        f"  logs         {topology.logs}/",
        "",
        "in another terminal:",
        f"  source {topology.data_dir / 'env.sh'}",
        "  .venv/bin/rallycall conference --to alice --to bruno --to chloe --wait",
        "  .venv/bin/rallycall simulator dial --from +41795550103 --digits PIN",
        "  kill -9 <pid of worker-1 or callbacks-1>   # the others carry on",
    ]
    return lines


async def run(topology: Topology) -> None:
    async with prod_like(topology) as running:
        (topology.data_dir / "env.sh").write_text(shell_exports(topology))
        (topology.data_dir / "simulator.url").write_text(topology.simulator_url)  # for `simulator dial`
        print("\n".join(banner(running)), flush=True)
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        await stop.wait()
        print("stopping...", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m stack.prod_like", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--data-dir", type=Path, default=Path(".data/prod-like"),
                        help="Temporal's database, logs, mail, journal; cleared at start")  # fmt: skip
    parser.add_argument("--scenario", type=Path, default=EXAMPLES / "scenario.yaml")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--callback-servers", type=int, default=2)
    parser.add_argument("--calls-per-second", type=float, default=1.0)
    args = parser.parse_args()
    shutil.rmtree(
        args.data_dir, ignore_errors=True
    )  # ports are new each time: old runs' callbacks would go astray
    topology = Topology.on_free_ports(args.data_dir, args.scenario, workers=args.workers,
                                      callback_servers=args.callback_servers,
                                      calls_per_second=args.calls_per_second)  # fmt: skip
    clear_previous_run(topology)
    try:
        asyncio.run(run(topology))
    except PieceFailed as exc:
        sys.exit(f"cannot start the topology: {exc}")


if __name__ == "__main__":
    main()
