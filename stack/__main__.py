"""`python -m stack [--demo]`: run the embedded stack until Ctrl-C.

With --demo (what `make run` does) it also launches the demo conference from `examples/`, or
picks up the one still running from a previous run, and prints its timeline live.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
import signal
import sys
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client

from carrier.simulator.client import place_inbound_call
from config import EXAMPLES, Settings, checked_settings, ui_url
from launching import LaunchRequest, launch, red_button
from procedures.definitions import load_definitions
from stack import second_carrier
from stack.embedded import RunningStack, running_stack
from watch import follow

DEMO_DIAL_IN_FROM = "+41795550101"
"""Alice's mobile: the number she dials back in from."""
DEMO_WELCOME = "Major incident on the payment platform"


def demo_request(config: Settings) -> LaunchRequest:
    """The red button, pressed for Alice, Bruno and Chloé from the example contacts."""
    definitions = load_definitions(config.definitions_dir)
    procedure = definitions.procedure(config.red_button)
    return red_button(procedure, definitions.schemes, ["alice", "bruno", "chloe"], DEMO_WELCOME,
                      contacts_file=EXAMPLES / "contacts.yaml", launched_by="demo")  # fmt: skip


def say(text: str) -> None:
    print(text, flush=True)


def carriers_file(config: Settings) -> Path:
    """`export RALLYCALL_CARRIERS=…` as the stack runs them (dev secrets only): a launch from
    another terminal freezes both carriers into its run, as the demo's does."""
    accounts = [account.model_dump(mode="json") for account in config.carrier_accounts()]
    for dumped, account in zip(accounts, config.carrier_accounts(), strict=True):
        dumped["auth_token"] = account.auth_token.get_secret_value()
    path = config.data_dir / "carriers.env"
    path.write_text(f"export RALLYCALL_CARRIERS={shlex.quote(json.dumps(accounts))}\n")
    return path


def banner(stack: RunningStack, config: Settings) -> None:
    say("rallycall embedded stack is up (Ctrl-C to stop)")
    say(f"  Temporal          {stack.temporal_address}   Web UI {ui_url()}")
    say(f"  codec server      {stack.codec_url} (the Web UI decrypts payloads through it)")
    say(f"  callback server   {config.callback_addr} (carrier reaches it at {config.public_url})")
    if stack.simulator_url:
        say(f"  carrier simulator {stack.simulator_url}   scenario {config.scenario}")
        say(f"                    log {config.carrier_log}")
    if stack.second_carrier_url:
        say(f"  second carrier    {stack.second_carrier_url} (simulated Telnyx, {second_carrier.NUMBER})")
        say(f"                    log {config.data_dir / 'carrier-telnyx.jsonl'}")
        say(f"                    other terminals launch with both after `. {carriers_file(config)}`")
    else:
        say(f"  carrier           {stack.twilio_api_url}")
    say(f"  mailbox           smtp 127.0.0.1:{stack.smtp_port} -> {config.mail_dir}/")
    say(f"  console           {stack.console_url}")
    if stack.console_demo:
        name, password = stack.console_demo
        say(f"                    sign in as {name} / {password} (a launcher; this demo account is for the "
            "embedded stack only)")  # fmt: skip
    else:
        say("                    sign in with your account (python -m console users add|remove|list)")
    say("  CLI in another terminal: export RALLYCALL_ENVIRONMENT=development (the stack's dev secrets)")


async def running_demo(client: Client) -> str | None:
    query = 'WorkflowType="ProcedureRun" AND RallycallState="running" AND ExecutionStatus="Running"'
    async for execution in client.list_workflows(query):
        return execution.id
    return None


background: set[asyncio.Task[None]] = set()


async def dial_back_in(simulator_url: str, pin: str, after: timedelta) -> None:
    """Alice hung up by mistake; once the PIN has gone out she dials the conference number."""
    await asyncio.sleep((after + timedelta(seconds=10)).total_seconds())
    say(f"(demo) Alice dials {DEMO_DIAL_IN_FROM} into the conference line and keys in the PIN")
    await place_inbound_call(simulator_url, DEMO_DIAL_IN_FROM, [pin])


async def demo(stack: RunningStack, config: Settings) -> None:
    workflow_id = await running_demo(stack.client)
    if workflow_id:
        say(f"\nresuming conference {workflow_id} (still running from last time)")
    else:
        request = demo_request(config)
        launched = await launch(stack.client, config, request)
        workflow_id = launched.workflow_id
        say(f"\nlaunched demo conference {workflow_id}")
        say(f"  dial-in {launched.dial_in_number}   PIN {launched.pin}")
        say(
            f"  dial in from another terminal: .venv/bin/python -m carrier.simulator dial "
            f"--from +41795550103 --digits {launched.pin}"
        )
        if stack.simulator_url:
            alice_dials_back = dial_back_in(
                stack.simulator_url, launched.pin or "", request.procedure.steps[0].deadline
            )
            background.add(asyncio.create_task(alice_dials_back))
    say(f"  follow it in the console: {stack.console_url.rstrip('/')}/runs/{workflow_id}")
    say(f"  watch it in the Web UI: {ui_url(workflow_id)}\n")
    await follow(stack.client, workflow_id, say)


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    parser.add_argument("--demo", action="store_true", help="launch and follow the demo conference")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = checked_settings("embedded stack")  # its dev secrets are fine in development only
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    async with running_stack(config) as stack:
        banner(stack, stack.config)
        if args.demo:
            await demo(stack, stack.config)
            say("\nthe stack stays up for starter.py commands; Ctrl-C to stop")
        await asyncio.Event().wait()


def run() -> int:
    try:
        asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 0
    except OSError as exc:
        print(f"cannot start the stack: {exc} (another stack running? ports are settable, see README)")
        return 1
    return 0


if __name__ == "__main__":
    code = run()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # avoid the SDK's abort at interpreter exit (sdk-python #300)
