"""The command line: launch, watch, rejoin, end and list runs of procedures (the red button's
conference call among them). The launch logic itself is in `launching.py`.

    python starter.py conference --contacts FILE --to ID_OR_E164 [--to ...] [--welcome TEXT]
                                 [--record] [--json] [--wait] [--force] [--idempotency-key KEY]
    python starter.py status WORKFLOW_ID [--json]
    python starter.py rejoin --pin PIN --from E164 [WORKFLOW_ID]
    python starter.py end WORKFLOW_ID [--reason TEXT]
    python starter.py list [--json]
    python starter.py procedure list | show NAME | launch NAME --field NAME=VALUE [...]
    python starter.py carriers check [--json]

Exit codes: 0 done, 2 refused input (nothing launched; also a run the account's call rate
cannot keep in time, unless --force), 3 refused by the conference (wrong PIN, conference
over), 1 anything else (Temporal unreachable...). `carriers check`: 0 every probe of every
carrier passed, 1 one failed, 2 settings that do not parse (or dev secrets in production).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import asdict
from datetime import UTC
from pathlib import Path
from typing import Any, get_args

import aiohttp
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from carrier.check import CarriersFailing, check_carriers, summary
from config import checked_settings, connect_temporal, settings, ui_url
from directory import conference_with_pin
from domain.contacts import to_e164
from domain.errors import InvalidLaunch
from domain.events import EndRequest, RejoinRequest
from domain.run_view import PAGE_AT_MOST, PeopleQuery, PersonState, PersonView, RunView
from i18n.languages import SHIPPED
from launching import LaunchRequest, OverCapacity, launch, red_button
from procedures.definitions import load_definitions
from remote import ConsoleApi, ConsoleRefused, OverCapacityRemote, insecure_url
from rendering.json_stream import view_json
from rendering.terminal import person_line, summary_lines
from roster_pages import every_person, read_page
from watch import NoWorker, Refused, follow, follow_views, read_view, view_once_ended
from workflows import search_attributes as sa
from workflows.procedure_run import ProcedureRun

REFUSED_INPUT = 2
REFUSED_BY_CONFERENCE = 3


def say(text: str) -> None:
    print(text, flush=True)


def fail(args: argparse.Namespace, text: str) -> None:
    """An error in words: on stderr under --json, so stdout stays one JSON document (a refusal
    at launch has already printed its own)."""
    print(text, file=sys.stderr if getattr(args, "json", False) else sys.stdout, flush=True)


def dump(data: Any) -> None:
    say(json.dumps(data, indent=2, default=str))


async def conference(client: Client, args: argparse.Namespace) -> None:
    """The red button: the procedure RALLYCALL_RED_BUTTON (the spec's conference call)."""
    if not args.to:
        raise InvalidLaunch(["no destination given (use --to with a contact id or an E.164 number)"])
    config = settings()
    definitions = load_definitions(config.definitions_dir)
    request = red_button(
        definitions.procedure(config.red_button),
        definitions.schemes,
        args.to or [],
        args.welcome or "",
        contacts_file=args.contacts or config.contacts_file,
        record=args.record or None,
        launched_by=args.launched_by,
        channel=args.channel,
        force=args.force,
        idempotency_key=args.idempotency_key,
        text_language=args.text_language,
    )
    await launch_and_report(client, request, args)


THEIR_CONTACTS = "--contacts: through the console (RALLYCALL_CONSOLE_TOKEN), its contacts are used"
Remote = Callable[[ConsoleApi, argparse.Namespace], Awaitable[None]]


async def conference_remote(api: ConsoleApi, args: argparse.Namespace) -> None:
    """The red button through the console: its contacts, its definitions, the token's account."""
    if args.contacts:
        raise InvalidLaunch([THEIR_CONTACTS])
    body = {"to": args.to or [], "welcome": args.welcome or "", "record": args.record or None,
            "force": args.force, "idempotency_key": args.idempotency_key,
            "text_language": args.text_language}  # fmt: skip
    await launch_remote_and_report(api, body, args)


async def procedure_launch_remote(api: ConsoleApi, args: argparse.Namespace) -> None:
    if args.contacts:
        raise InvalidLaunch([THEIR_CONTACTS])
    body = {"procedure": args.name, "fields": form_fields(args.field), "force": args.force,
            "idempotency_key": args.idempotency_key, "text_language": args.text_language}  # fmt: skip
    await launch_remote_and_report(api, body, args)


async def launch_remote_and_report(api: ConsoleApi, body: dict[str, Any], args: argparse.Namespace) -> None:
    try:
        answer = await api.launch(body)
    except OverCapacityRemote as exc:
        if args.json:
            dump({key: exc.answer.get(key) for key in ("error", "message", "steps")})
        raise
    link = f"{api.url.rstrip('/')}/runs/{answer['workflow_id']}"
    report_launch(answer["title"], answer["workflow_id"], answer["pin"], answer["dial_in_number"], link,
                  answer["over_capacity"], answer["warnings"], answer["already_launched"], args,
                  answer.get("reach"))  # fmt: skip
    if args.wait:
        workflow_id = answer["workflow_id"]

        async def view() -> RunView:
            return RunView.model_validate(await api.status(workflow_id))

        await follow_views(view, say if not args.json else _silent)


async def status_remote(api: ConsoleApi, args: argparse.Namespace) -> None:
    """The same through the console's API: everyone in one answer (the console streams it),
    or one page of it, read page by page for JSON lines and a state without a page."""
    if args.offset is not None or args.limit is not None:
        offset, limit = args.offset or 0, PAGE_LIMIT if args.limit is None else args.limit
        answer = await api.people(args.workflow_id, offset, limit, args.state)
        view = RunView.model_validate(answer)
        await print_status(view, listed(view.people), args, page_of_total=(offset, answer["people_total"]))
        return
    if args.state is None and not args.jsonl:
        view = RunView.model_validate(await api.status(args.workflow_id))
        await print_status(view, listed(view.people), args)
        return
    first = await api.people(args.workflow_id, 0, PAGE_LIMIT, args.state)
    await print_status(
        RunView.model_validate(first), remote_pages(api, args.workflow_id, args.state, first), args
    )


async def remote_pages(
    api: ConsoleApi, workflow_id: str, state: str | None, first: dict[str, Any]
) -> AsyncIterator[PersonView]:
    answer, offset = first, 0
    while True:
        people = [PersonView.model_validate(p) for p in answer["people"]]
        for person in people:
            yield person
        offset += len(people)
        if not people or offset >= answer["people_total"]:
            return
        answer = await api.people(workflow_id, offset, PAGE_LIMIT, state)


async def end_remote(api: ConsoleApi, args: argparse.Namespace) -> None:
    dump(await api.end(args.workflow_id, args.reason))


def report_launch(title: str, workflow_id: str, pin: str | None, dial_in_number: str, link: str,
                  over_capacity: list[Any], warnings: list[str], already: bool,
                  args: argparse.Namespace, reach: list[dict[str, Any]] | None = None) -> None:  # fmt: skip
    if args.json:
        dump({"workflow_id": workflow_id, "pin": pin, "dial_in_number": dial_in_number, "ui_url": link,
              "over_capacity": over_capacity, "already_launched": already,
              "reach": reach or []})  # fmt: skip
        return
    if already:
        say(f"{title}: {workflow_id} was already launched with this key")
    else:
        say(f"{title}: {workflow_id} launched")
    for warning in warnings:
        say(f"  WARNING (--force) {warning}")
    for step in reach or []:
        say(f"  reach           {step['says']}")
    if pin:
        say(f"  dial-in number  {dial_in_number}")
        say(f"  PIN             {pin}")
    say(f"  Web UI          {link}")


async def launch_and_report(client: Client, request: LaunchRequest, args: argparse.Namespace) -> None:
    try:
        launched = await launch(client, settings(), request)
    except OverCapacity as exc:
        if args.json:
            dump(
                {"error": "over_capacity", "message": str(exc), "steps": [asdict(load) for load in exc.loads]}
            )
        raise
    report_launch(request.procedure.title, launched.workflow_id, launched.pin, launched.dial_in_number,
                  ui_url(launched.workflow_id), [asdict(load) for load in launched.over_capacity],
                  [load.describe() for load in launched.over_capacity], launched.already, args,
                  [step.as_json() for step in launched.reach])  # fmt: skip
    if args.wait:
        await follow(client, launched.workflow_id, say if not args.json else _silent)


async def procedure_list(client: Client | None, args: argparse.Namespace) -> None:
    definitions = load_definitions(settings().definitions_dir)
    for procedure in definitions.procedures.values():
        steps = ", ".join(f"{s.number} {s.objective} {s.percent} %" for s in procedure.steps)
        say(f"{procedure.name:<24} {procedure.title}  [{steps}]")


async def procedure_show(client: Client | None, args: argparse.Namespace) -> None:
    procedure = load_definitions(settings().definitions_dir).procedure(args.name)
    say(f"{procedure.name}: {procedure.title}")
    language = procedure.language or settings().language
    written = {
        lang
        for step in procedure.steps
        for lang in (*step.messages(language), *step.post_objectives(language))
    }
    others = f" (also in {', '.join(sorted(written - {language}))})" if written - {language} else ""
    say(f"language: {language}{others}; --text-language says which language your texts are in")
    say("launch form:")
    for form_field in procedure.form:
        need = "required" if form_field.required else "optional"
        kind = "contact ids or E.164 numbers, comma-separated" if form_field.kind == "contacts" else "text"
        say(f"  --field {form_field.name}=…   {form_field.label or form_field.name} ({kind}, {need})")
    say("steps:")
    for step in procedure.steps:
        when = "" if step.run == "always" else ", only if the previous objective was not reached"
        scheme = step.scheme or "each contact's own scheme"
        objective = f"{step.objective} {step.percent} % within {step.deadline}"
        say(f"  {step.number}: {objective}, scheme {scheme}{when}")


async def procedure_launch(client: Client, args: argparse.Namespace) -> None:
    definitions = load_definitions(settings().definitions_dir)
    fields = form_fields(args.field)
    request = LaunchRequest(
        procedure=definitions.procedure(args.name),
        schemes=definitions.schemes,
        fields=fields,
        contacts_file=args.contacts or settings().contacts_file,
        launched_by=args.launched_by,
        channel=args.channel,
        force=args.force,
        idempotency_key=args.idempotency_key,
        text_language=args.text_language,
    )
    await launch_and_report(client, request, args)


def form_fields(items: list[str] | None) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in items or []:
        name, separator, value = item.partition("=")
        if not separator:
            raise InvalidLaunch([f"--field {item!r}: write NAME=VALUE"])
        fields[name.strip()] = value
    return fields


def _silent(_: str) -> None:
    pass


PAGE_LIMIT = PAGE_AT_MOST


def whole(least: int, most: int | None) -> Callable[[str], int]:
    """An argparse type: a whole number in [least, most], or a usage error naming the range."""

    def parse(text: str) -> int:
        if not text.isdigit() or int(text) < least or (most is not None and int(text) > most):
            raise argparse.ArgumentTypeError(
                f"{text!r}: a whole number from {least}" + (f" to {most}" if most is not None else "")
            )
        return int(text)

    return parse


async def status(client: Client, args: argparse.Namespace) -> None:
    """The run's summary, then its people: all of them streamed a batch at a time, or one page
    (`--offset`, `--limit`), optionally only those in one `--state`."""
    summary = await read_view(client, args.workflow_id, with_batches=False)
    if args.offset is not None or args.limit is not None:
        limit = PAGE_LIMIT if args.limit is None else args.limit
        query = PeopleQuery(offset=args.offset or 0, limit=limit, state=args.state)
        page = await read_page(client, summary, query)
        await print_status(summary, listed(page.people), args, page_of_total=(query.offset, page.total))
    else:
        await print_status(summary, every_person(client, summary, args.state), args)


async def listed(people: list[PersonView]) -> AsyncIterator[PersonView]:
    for person in people:
        yield person


async def print_status(
    summary: RunView,
    people: AsyncIterator[PersonView],
    args: argparse.Namespace,
    page_of_total: tuple[int, int] | None = None,
) -> None:
    """As lines, one JSON document (`--json`: the view, its people streamed into it) or JSON
    lines (`--jsonl`: the view without its people, then one line per person)."""
    page: dict[str, Any] = {}
    if page_of_total is not None:
        page = {"people_offset": page_of_total[0], "people_total": page_of_total[1]}
    if args.jsonl:
        say(json.dumps(summary.model_dump(mode="json", exclude={"people"}) | page, default=str))
        async for person in people:
            say(json.dumps(person.model_dump(mode="json"), default=str))
    elif args.json:
        async for part in view_json(summary, people, indent=2, extra=page):
            print(part, end="")
        sys.stdout.flush()
    else:
        for line in summary_lines(summary):
            say(line)
        if page_of_total is not None:
            say(f"  people {page_of_total[0] + 1} and on, of {page_of_total[1]}:")
        async for person in people:
            say(person_line(person))


async def rejoin(client: Client, args: argparse.Namespace) -> None:
    try:
        caller = to_e164(args.from_number)
    except ValueError as exc:
        raise InvalidLaunch([f"--from {exc}"]) from exc
    workflow_id = args.workflow_id or await conference_with_pin(client, settings().pin_secret, args.pin)
    if workflow_id is None:
        raise Refused("no running conference has this PIN")
    handle = client.get_workflow_handle(workflow_id)
    result = await handle.execute_update(ProcedureRun.rejoin, RejoinRequest(pin=args.pin, from_number=caller))
    if not result.accepted:
        raise Refused(f"{result.reason} for conference {workflow_id} (the attempt is recorded)")
    who = "as a guest" if result.guest else f"as {result.participant_id}"
    say(f"{caller} is back in conference {workflow_id} {who}")


async def end(client: Client, args: argparse.Namespace) -> None:
    handle = client.get_workflow_handle_for(ProcedureRun.run, args.workflow_id)
    await handle.execute_update(
        ProcedureRun.end, EndRequest(reason=args.reason, by=getpass.getuser(), channel="cli")
    )
    view = await view_once_ended(client, args.workflow_id)  # the recording's link comes later
    dump(view.model_dump(mode="json"))


async def list_conferences(client: Client, args: argparse.Namespace) -> None:
    rows: list[dict[str, Any]] = []
    async for execution in client.list_workflows('WorkflowType="ProcedureRun"'):
        attributes = execution.typed_search_attributes
        rows.append(
            {
                "workflow_id": execution.id,
                "state": attributes.get(sa.STATE),
                "status": execution.status.name.lower() if execution.status else None,
                "started_at": execution.start_time.astimezone(UTC).isoformat(),
                "participants": attributes.get(sa.PARTICIPANTS),
                "in_conference": attributes.get(sa.IN_CONFERENCE),
            }
        )
    if args.json:
        dump(rows)
        return
    if not rows:
        say("no run yet")
    for row in rows:
        say(
            f"{row['workflow_id']}  {row['state'] or row['status']:<8} started {row['started_at'][:19]}  "
            f"{row['in_conference']}/{row['participants']} in the bridge"
        )


async def carriers_check(client: Client | None, args: argparse.Namespace) -> None:
    """Each carrier in order, its probes ✓/✗ with what to fix, then one line for all; no
    Temporal needed, nothing called or sent."""
    checks = await check_carriers(checked_settings(args.prog))
    if args.json:
        dump({"carriers": [check.as_json() for check in checks]})
    else:
        for check in checks:
            for line in check.lines():
                say(line)
        say(summary(checks))
    if not all(check.ok for check in checks):
        raise CarriersFailing


def launching_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--contacts", type=Path, help="contacts YAML file (default: RALLYCALL_CONTACTS_FILE)"
    )
    command.add_argument(
        "--as", dest="launched_by", default=getpass.getuser(), metavar="NAME", help="who launches"
    )
    command.add_argument("--channel", choices=["cli", "web", "cmc", "procedure"], default="cli")
    command.add_argument("--json", action="store_true")
    command.add_argument("--wait", action="store_true", help="follow progress until the end")
    command.add_argument(
        "--force", action="store_true", help="launch even if the call rate cannot keep the schemes' times"
    )
    command.add_argument(
        "--idempotency-key", metavar="KEY",
        help="launch once per KEY (e.g. the incident's ticket): a repeat prints the run already started",
    )  # fmt: skip
    command.add_argument(
        "--text-language", metavar="TAG",
        help=f"the language you write the texts in (--welcome, --field body=...; {', '.join(SHIPPED)}, or a "
        "tag such as fr-CH): they are spoken in it; default: the procedure's",
    )  # fmt: skip


def parser(prog: str = "starter.py", services: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The CLI's commands; `services` (name: help) are listed too, for the `rallycall` command,
    which runs them itself before this parser sees them."""
    top = argparse.ArgumentParser(prog=prog, description="rallycall: emergency conference calls")
    commands = top.add_subparsers(dest="command", required=True)

    launch_cmd = commands.add_parser("conference", help="launch a conference call (the red button)")
    launch_cmd.add_argument("--to", action="append", metavar="ID_OR_E164", help="destination (repeat)")
    launch_cmd.add_argument("--welcome", help="spoken to each participant before joining")
    launch_cmd.add_argument("--record", action="store_true", help="record the conference")
    launching_options(launch_cmd)
    launch_cmd.set_defaults(run=conference, remote=conference_remote)

    procedure_cmd = commands.add_parser("procedure", help="list, show and launch procedures")
    procedure_commands = procedure_cmd.add_subparsers(dest="procedure_command", required=True)
    list_procedures = procedure_commands.add_parser("list", help="the procedures defined")
    list_procedures.set_defaults(run=procedure_list, needs_temporal=False)
    show_cmd = procedure_commands.add_parser("show", help="a procedure's launch form and steps")
    show_cmd.add_argument("name")
    show_cmd.set_defaults(run=procedure_show, needs_temporal=False)
    run_cmd = procedure_commands.add_parser("launch", help="launch a procedure")
    run_cmd.add_argument("name")
    run_cmd.add_argument(
        "--field", action="append", metavar="NAME=VALUE", help="a launch form field (repeat)"
    )
    launching_options(run_cmd)
    run_cmd.set_defaults(run=procedure_launch, remote=procedure_launch_remote)

    status_cmd = commands.add_parser("status", help="the roster of a run, of any size")
    status_cmd.add_argument("workflow_id")
    output = status_cmd.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON document")
    output.add_argument("--jsonl", action="store_true", help="the view, then one JSON line per person")
    status_cmd.add_argument("--state", choices=get_args(PersonState), help="only the people in this state")
    status_cmd.add_argument(
        "--offset", type=whole(0, None), help="one page: from this person (0 is the first)"
    )
    status_cmd.add_argument(
        "--limit", type=whole(0, PAGE_LIMIT), help=f"one page: this many people (at most {PAGE_LIMIT})"
    )
    status_cmd.set_defaults(run=status, remote=status_remote)

    rejoin_cmd = commands.add_parser("rejoin", help="dial in with the PIN (as the phone line does)")
    rejoin_cmd.add_argument("--pin", required=True)
    rejoin_cmd.add_argument("--from", dest="from_number", required=True, metavar="E164")
    rejoin_cmd.add_argument("workflow_id", nargs="?")
    rejoin_cmd.set_defaults(run=rejoin)

    end_cmd = commands.add_parser("end", help="end a conference; prints the final report")
    end_cmd.add_argument("workflow_id")
    end_cmd.add_argument("--reason", default="ended by the launcher")
    end_cmd.set_defaults(run=end, remote=end_remote)

    list_cmd = commands.add_parser("list", help="list conferences")
    list_cmd.add_argument("--json", action="store_true")
    list_cmd.set_defaults(run=list_conferences)

    carriers_cmd = commands.add_parser("carriers", help="the carriers configured (RALLYCALL_CARRIERS)")
    carriers_commands = carriers_cmd.add_subparsers(dest="carriers_command", required=True)
    check_cmd = carriers_commands.add_parser(
        "check", help="probe each carrier by reads only (nothing called or sent): what works",
        description="Probe each carrier, in order, by reads only: credentials, the dial-in number, "
        "the voice and messaging APIs, the number's voice webhook. Exit codes: 0 all works, "
        "1 a probe failed, 2 invalid settings.",
    )  # fmt: skip
    check_cmd.add_argument("--json", action="store_true", help="one JSON document")
    check_cmd.set_defaults(run=carriers_check, needs_temporal=False)

    for name, service_help in (services or {}).items():
        commands.add_parser(name, help=service_help, add_help=False)
    return top


async def run(args: argparse.Namespace) -> int:
    try:
        await dispatch(args)
    except CarriersFailing:
        return 1  # what failed is printed already
    except ConsoleRefused as exc:
        fail(args, f"error: {exc}")
        return 1
    except InvalidLaunch as exc:
        fail(args, f"error: {exc}")
        return REFUSED_INPUT
    except Refused as exc:
        fail(args, f"error: {exc}")
        return REFUSED_BY_CONFERENCE
    except NoWorker as exc:
        fail(args, f"error: {exc}")
        return 1
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        fail(args, f"error: {getattr(cause, 'message', None) or cause or exc}")
        return REFUSED_BY_CONFERENCE
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            fail(args, f"error: conference not found or already over ({exc.message})")
            return REFUSED_BY_CONFERENCE
        fail(args, f"error: Temporal said {exc.status.name}: {exc.message}")
        return 1
    except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:
        fail(args, f"error: {exc}")
        return 1
    return 0


async def dispatch(args: argparse.Namespace) -> None:
    """Through the console with a personal token when RALLYCALL_CONSOLE_TOKEN is set (no other
    secret needed), else straight to Temporal with the stack's own secrets, checked first."""
    name = getattr(args, "prog", "starter.py")
    needs_temporal = getattr(args, "needs_temporal", True)
    token = settings().console_token if needs_temporal else None
    if token is not None:
        remote: Remote | None = getattr(args, "remote", None)
        if remote is None:
            raise InvalidLaunch([f"{args.command}: needs Temporal; through the console "
                                 "(RALLYCALL_CONSOLE_TOKEN) "
                                 "only conference, procedure launch, status and end"])  # fmt: skip
        problem = insecure_url(settings().console_url)
        if problem and settings().environment == "production":
            raise InvalidLaunch([problem])
        await remote(ConsoleApi(settings().console_url, token.get_secret_value()), args)
        return
    command: Callable[[Client | None, argparse.Namespace], Awaitable[None]] = args.run
    if needs_temporal:
        checked_settings(name)  # dev secrets in production: refused before connecting
    try:
        client = await connect_temporal() if needs_temporal else None
    except RuntimeError as exc:
        raise RuntimeError(f"cannot reach Temporal ({exc}); is the stack running (make stack)?") from exc
    await command(client, args)


def main(
    argv: list[str] | None = None, prog: str = "starter.py", services: Mapping[str, str] | None = None
) -> None:
    args = parser(prog, services).parse_args(argv)
    args.prog = prog
    code = asyncio.run(run(args))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # avoid the SDK's abort at interpreter exit (sdk-python #300)


if __name__ == "__main__":
    main()
