"""`python -m codec`: encryption keys and the codec server.

    python -m codec new-key ID        a fresh key, to put first in RALLYCALL_ENCRYPTION_KEYS
    python -m codec serve [--port P] [--origin URL ...]

`serve` decrypts with RALLYCALL_ENCRYPTION_KEYS on 127.0.0.1 for the Web UI of your cluster or
Temporal Cloud: run it on your own machine and set the UI's codec endpoint to its address.
The embedded stack runs one of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from codec.aes import AesGcmCodec, BadKeys, new_key
from codec.server import serve as serve_codec
from codec.server import ui_origins
from config import checked_settings, settings

DEFAULT_PORT = 8234


async def serve(port: int, origins: list[str]) -> None:
    runner, url = await serve_codec(AesGcmCodec(settings().encryption_key_ring), origins, port)
    logging.getLogger("rallycall.codec").info("codec server on %s for %s", url, ", ".join(origins))
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m codec", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = top.add_subparsers(dest="command", required=True)
    key = commands.add_parser("new-key", help="print a fresh ID:BASE64KEY")
    key.add_argument("key_id", metavar="ID", help="a name for the key, e.g. 2026-01")
    server = commands.add_parser("serve", help="the codec server, on 127.0.0.1")
    server.add_argument("--port", type=int, default=DEFAULT_PORT)
    server.add_argument("--origin", action="append", metavar="URL",
                        help="the Web UI's origin, e.g. https://cloud.temporal.io (repeatable; "
                        "default: this machine's dev server UI on RALLYCALL_UI_PORT)")  # fmt: skip
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "new-key":
        try:
            print(new_key(args.key_id))
        except BadKeys as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    checked_settings("codec server")
    try:
        asyncio.run(serve(args.port, args.origin or ui_origins(settings().ui_port)))
    except OSError as exc:
        print(f"cannot start the codec server: {exc} (is port {args.port} free?)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
