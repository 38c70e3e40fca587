"""The carrier simulator from the command line.

Run it as a separate process, like the real carrier, outliving the servers that use it (the
first line printed is its URL; SIGTERM or Ctrl-C stops it):

    python -m carrier.simulator serve [--port 0] [--host 127.0.0.1] [--scenario FILE]
                                      [--log FILE] [--dial-in-number E164] [--voice-url URL]
                                      [--account-sid AC...] [--auth-token TOKEN]
                                      [--dialect twilio|telnyx] [--signing-key BASE64]

`--dialect telnyx` serves Telnyx's TeXML and Messaging APIs instead of Twilio's: the auth token
is then the API key, and webhooks are signed with the ed25519 private key `--signing-key`
(base64 of its 32-byte seed; the adapter verifies with the matching public key).

Place a simulated call to the dial-in number of a running simulator (by default the one the
embedded stack wrote):

    python -m carrier.simulator dial --from +41795550103 --digits 123456 [--digits ...]
                                     [--hangup-after 30] [--simulator URL]

The call goes through the dial-in number's Voice URL (`/twilio/voice/inbound`) exactly as a
phone call through Twilio would: each `--digits` answers one PIN prompt. Prints what the caller
heard and whether they joined the conference.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

from carrier.simulator.client import place_inbound_call
from carrier.simulator.scenario import load_scenario
from carrier.simulator.server import CarrierSimulator
from config import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, settings


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


async def serve(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT, then stop cleanly (in-flight calls are dropped)."""
    simulator = CarrierSimulator(
        args.account_sid,
        args.auth_token,
        load_scenario(args.scenario).with_account_rate(
            settings().calls_per_second, settings().sms_per_second
        ),
        args.log,
        dial_in_number=args.dial_in_number,
        voice_url=args.voice_url,
        dialect=args.dialect,
        signing_key=args.signing_key,
    )
    runner = web.AppRunner(simulator.app())
    await runner.setup()
    try:
        await web.TCPSite(runner, args.host, args.port).start()
        host, port = runner.addresses[0][:2]
        print(f"http://{host}:{port}", flush=True)
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m carrier.simulator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run the simulator in the foreground")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=0, help="0 (the default): any free port")
    serve_cmd.add_argument("--scenario", type=Path, help="YAML scenario (default: nobody answers)")
    serve_cmd.add_argument("--log", type=Path, help="JSON-lines journal of calls, texts and webhooks")
    serve_cmd.add_argument("--dial-in-number", metavar="E164", help="the conference number callers dial")
    serve_cmd.add_argument("--voice-url", metavar="URL", help="what the dial-in number's calls fetch")
    serve_cmd.add_argument("--account-sid", default=DEV_ACCOUNT_SID)
    serve_cmd.add_argument("--auth-token", default=DEV_AUTH_TOKEN, help="Telnyx: the API key")
    serve_cmd.add_argument("--dialect", choices=["twilio", "telnyx"], default="twilio")
    serve_cmd.add_argument("--signing-key", metavar="BASE64", help="Telnyx: webhooks' ed25519 private key")
    dial_cmd = commands.add_parser("dial", help="dial the conference number and key in a PIN")
    dial_cmd.add_argument("--from", dest="caller", required=True, metavar="E164")
    dial_cmd.add_argument("--digits", action="append", default=[], help="keyed at each prompt, in order")
    dial_cmd.add_argument("--hangup-after", type=float, metavar="SECONDS")
    dial_cmd.add_argument("--simulator", help="simulator URL (default: the one the stack wrote)")
    args = parser.parse_args()
    if args.command == "serve" and args.dialect == "telnyx" and not args.signing_key:
        parser.error("--dialect telnyx needs --signing-key")
    if args.command == "serve":
        sys.exit(asyncio.run(serve(args)))
    url_file = settings().data_dir / "simulator.url"
    simulator = args.simulator or (url_file.read_text().strip() if url_file.exists() else None)
    if not simulator:
        sys.exit(f"no simulator URL: is the embedded stack running? ({url_file} not found)")
    sys.exit(asyncio.run(dial(simulator, args.caller, args.digits, args.hangup_after)))


if __name__ == "__main__":
    main()
