"""The `rallycall` command the wheel installs: the CLI of `starter.py` (conference, procedure,
status, rejoin, end, list) and the long-running pieces of a deployment. Each piece runs exactly
as `python -m <module>` runs it, so the installed command and the checkout cannot drift apart.
"""

from __future__ import annotations

import importlib.util
import runpy
import sys
from dataclasses import dataclass

import starter


@dataclass(frozen=True)
class Service:
    module: str
    help: str


SERVICES = {
    "worker": Service("worker", "run a worker: the workflows and their activities"),
    "callbacks": Service("callbacks", "run a callback server: the carrier's webhooks, the dial-in line"),
    "console": Service("console", "run the web console"),
    "codec": Service("codec", "the codec server the Web UI decrypts payloads through; new encryption keys"),
    "stack": Service("stack", "run the embedded stack on loopback (--demo: and the demo conference)"),
    "simulator": Service("carrier.simulator", "the carrier simulator: serve it, or dial into a running one"),
    "mailbox": Service("localmail", "run the local SMTP mailbox (each email becomes an .eml file)"),
}


def runnable(module: str) -> bool:
    """`python -m module` would find something to run (a package needs its `__main__`)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.submodule_search_locations is None:
        return spec is not None
    return importlib.util.find_spec(f"{module}.__main__") is not None


def run_service(name: str, argv: list[str]) -> None:
    service = SERVICES[name]
    if not runnable(service.module):
        raise SystemExit(f"rallycall {name}: {service.module} is not part of this installation")
    sys.argv = [f"rallycall {name}", *argv]
    runpy.run_module(service.module, run_name="__main__")


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] in SERVICES:
        run_service(argv[0], argv[1:])
    else:
        starter.main(argv, prog="rallycall", services={name: s.help for name, s in SERVICES.items()})
