"""Be the operator of a deployment's pieces, each its own OS process: start one with its own
environment and wait until it is healthy, kill it with SIGKILL as a crash would, restart it, stop
them all. The prod-like topology runs on it, and so can crash and chaos tests.

Each piece gets a session of its own (so a Ctrl-C in the terminal reaches the supervisor, which
stops the pieces in order) and a log file, `<logs>/<name>.log`, appended to across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

Probe = Callable[[int], Awaitable[bool]]
"""Is the piece running as this process id healthy yet? Asked again until it says yes; it must
answer quickly and never raise (see `stack.health`)."""

PROBE_INTERVAL = 0.1
LOG_TAIL_LINES = 30


class PieceFailed(Exception):
    """A piece exited, or stayed unhealthy, while starting. The message ends with its log's tail."""


@dataclass(frozen=True)
class Piece:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    """The whole environment of the process: nothing is inherited that is not here."""
    healthy: Probe
    cwd: Path | None = None


@dataclass(frozen=True)
class Running:
    piece: Piece
    process: asyncio.subprocess.Process

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.returncode is None


class Supervisor:
    """`async with Supervisor(logs) as supervisor:` stops every piece still running on exit."""

    def __init__(self, logs: Path, start_timeout: float = 60, stop_grace: float = 5) -> None:
        self.logs = logs
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self._running: dict[str, Running] = {}

    async def __aenter__(self) -> Supervisor:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.stop_all()

    def __getitem__(self, name: str) -> Running:
        return self._running[name]

    def names(self) -> list[str]:
        """The pieces, in the order they were first started."""
        return list(self._running)

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    async def start(self, *pieces: Piece) -> list[Running]:
        """Start these pieces side by side; returns once each is healthy, raises `PieceFailed`
        (after killing it) if one exits first or is not healthy within `start_timeout`."""
        return list(await asyncio.gather(*(self._start(piece) for piece in pieces)))

    async def kill(self, name: str) -> None:
        """SIGKILL, as a crash or an OOM killer would: no cleanup, no goodbye."""
        running = self._running[name]
        _signal(running, signal.SIGKILL)
        await running.process.wait()

    async def restart(self, name: str) -> Running:
        """Kill the piece if it still runs, then start it again as it was first started."""
        await self.kill(name)
        return await self._start(self._running[name].piece)

    async def stop(self, name: str) -> None:
        """SIGTERM, then SIGKILL if the piece is still there after `stop_grace` seconds."""
        running = self._running[name]
        _signal(running, signal.SIGTERM)
        try:
            async with asyncio.timeout(self.stop_grace):
                await running.process.wait()
        except TimeoutError:
            await self.kill(name)

    async def stop_all(self) -> None:
        """Stop the pieces in the reverse order of their first start."""
        for name in reversed(self.names()):
            await self.stop(name)

    async def _start(self, piece: Piece) -> Running:
        previous = self._running.get(piece.name)
        if previous is not None and previous.alive:
            raise ValueError(f"{piece.name} is already running (pid {previous.pid})")
        self.logs.mkdir(parents=True, exist_ok=True)
        with self.log(piece.name).open("ab") as log:
            log.write(f"--- rallycall supervisor starts {piece.name}: {' '.join(piece.argv)}\n".encode())
            log.flush()
            process = await asyncio.create_subprocess_exec(
                *piece.argv,
                env=dict(piece.env),
                cwd=piece.cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        running = self._running[piece.name] = Running(piece, process)
        await self._until_healthy(running)
        return running

    async def _until_healthy(self, running: Running) -> None:
        name = running.piece.name
        exited = asyncio.ensure_future(running.process.wait())
        try:
            async with asyncio.timeout(self.start_timeout):
                while not exited.done():
                    if await running.piece.healthy(running.pid):
                        return
                    await asyncio.wait({exited}, timeout=PROBE_INTERVAL)  # wakes at once if it exits
        except TimeoutError:
            await self.kill(name)
            raise PieceFailed(
                f"{name} not healthy after {self.start_timeout} s\n{self._tail(name)}"
            ) from None
        finally:
            exited.cancel()
        raise PieceFailed(
            f"{name} exited with {running.process.returncode} while starting\n{self._tail(name)}"
        )

    def _tail(self, name: str) -> str:
        lines = self.log(name).read_text(errors="replace").splitlines()
        return "\n".join(f"  {name}| {line}" for line in lines[-LOG_TAIL_LINES:])


def _signal(running: Running, signum: int) -> None:
    """Signal the piece's whole session: the piece and anything it started."""
    if running.alive:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(running.pid, signum)
