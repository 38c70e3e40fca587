"""`python -m callbacks`: the callback server alone, for deployments where the carrier is real.

Listens on RALLYCALL_CALLBACK_ADDR and checks signatures against RALLYCALL_PUBLIC_URL."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from callbacks.server import build_app, serve
from carrier.accounts import Carriers
from config import checked_settings, connect_temporal
from key_checks import problems_with_workers


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = checked_settings("callback server")
    client = await connect_temporal()
    mismatched = await problems_with_workers(client, config)
    if mismatched:  # its signals unreadable, or every right PIN refused: better not to serve
        lines = ["callback server: refusing to start:", *(f"  - {problem}" for problem in mismatched)]
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2)
    carriers = Carriers.of(config.carrier_accounts())
    runner = await serve(build_app(carriers, client, config), config.callback_host, config.callback_port)
    logging.getLogger("rallycall.callbacks").info(
        "listening on %s for %s", config.callback_addr, config.public_url
    )
    stop = asyncio.Event()  # SIGTERM, as a rolling upgrade sends it: finish the callbacks in hand first
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await carriers.close()


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__).parse_args()  # --help; settings come from the environment
    asyncio.run(main())
