"""`python -m localmail`: the local mailbox alone, standing in for an outside SMTP server (the
prod-like topology, drills). Prints `smtp://HOST:PORT` on its first line; SIGTERM or Ctrl-C
stops it."""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path

from config import settings
from localmail.server import Mailbox

STOP = {signal.SIGTERM, signal.SIGINT}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (the default): any free port")
    parser.add_argument("--folder", type=Path, help="where .eml files go (default: RALLYCALL_DATA_DIR/mail)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP)  # before the server's thread starts, so it inherits it
    mailbox = Mailbox(args.folder or settings().mail_dir, host=args.host, port=args.port)
    mailbox.start()
    print(f"smtp://{args.host}:{mailbox.port}", flush=True)
    signal.sigwait(STOP)
    mailbox.stop()


if __name__ == "__main__":
    main()
