"""Place a simulated call to the dial-in number of a running embedded stack:

    python -m carrier.simulator dial --from +41795550103 --digits 123456 [--digits ...]
                                     [--hangup-after 30] [--simulator URL]

The call goes through the dial-in number's Voice URL (`/twilio/voice/inbound`) exactly as a
phone call through Twilio would: each `--digits` answers one PIN prompt. Prints what the caller
heard and whether they joined the conference.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import aiohttp

from carrier.simulator.client import place_inbound_call
from config import settings


async def dial(simulator: str, caller: str, digits: list[str], hangup_after: float | None) -> int:
    try:
        result = await place_inbound_call(simulator, caller, digits, hangup_after)
    except (RuntimeError, aiohttp.ClientError) as exc:
        print(f"error: {exc}")
        return 1
    for line in result["transcript"]:
        print(f"  {line}")
    print(
        f"call {result['call_sid']}: "
        + (f"in conference {result['joined']}" if result["joined"] else "not joined")
    )
    return 0 if result["joined"] else 3


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m carrier.simulator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    dial_cmd = commands.add_parser("dial", help="dial the conference number and key in a PIN")
    dial_cmd.add_argument("--from", dest="caller", required=True, metavar="E164")
    dial_cmd.add_argument("--digits", action="append", default=[], help="keyed at each prompt, in order")
    dial_cmd.add_argument("--hangup-after", type=float, metavar="SECONDS")
    dial_cmd.add_argument("--simulator", help="simulator URL (default: the one the stack wrote)")
    args = parser.parse_args()
    url_file = settings().data_dir / "simulator.url"
    simulator = args.simulator or (url_file.read_text().strip() if url_file.exists() else None)
    if not simulator:
        sys.exit(f"no simulator URL: is the embedded stack running? ({url_file} not found)")
    sys.exit(asyncio.run(dial(simulator, args.caller, args.digits, args.hangup_after)))


if __name__ == "__main__":
    main()
