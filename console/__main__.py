"""`python -m console`: the console alone (behind a TLS proxy in production, like the callback
server), on RALLYCALL_CONSOLE_ADDR; and its accounts:

    python -m console users add NAME --role viewer|launcher|procedure-manager|administrator
    python -m console users remove NAME
    python -m console users list
    python -m console users revoke NAME     # signs NAME out everywhere (sessions and tokens)
    python -m console users unlock NAME     # forgives NAME's failed sign-ins
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys

from config import checked_settings, connect_temporal, settings
from console.auth import ROLES, AccountError, Users
from console.lockout import SignInFailures

log = logging.getLogger("rallycall.console")


async def run_console() -> None:
    from console.app import build_app, listen_address, serve  # the server, not needed to manage accounts

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = checked_settings("console")
    client = await connect_temporal()
    runner = await serve(build_app(client, config), *listen_address(config))
    log.info("console on %s, reached at %s; accounts in %s", config.console_addr, config.console_url,
             config.users_path)  # fmt: skip
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def new_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise AccountError("the two passwords differ")
    return first


def manage_users(users: Users, args: argparse.Namespace) -> int:
    if args.users_command == "list":
        for account in users.accounts():
            tokens = ", ".join(f"{t.id} {t.label}".strip() for t in account.tokens)
            print(f"{account.name:<24} {account.role:<18} {'tokens: ' + tokens if tokens else ''}".rstrip())
        if not users.accounts():
            print(f"no account yet in {users.path}")
        return 0
    if args.users_command in ("token", "revoke-token"):
        return manage_tokens(users, args)
    if args.users_command == "revoke":
        if not users.revoke_sessions(args.name):
            print(f"error: no account {args.name!r} in {users.path}")
            return 2
        revoked = users.revoke_tokens(args.name)  # a lost laptop: its CLI token goes too
        print(f"signed {args.name} out everywhere: every session of the account has ended, "
              f"and its {revoked} personal token(s) are revoked")  # fmt: skip
        return 0
    if args.users_command == "unlock":
        forgiven = SignInFailures(users.path).unlock(args.name)
        print(f"forgave {forgiven} failed sign-in(s) of {args.name}: the account can sign in again")
        return 0
    if args.users_command == "remove":
        if not users.remove(args.name):
            print(f"error: no account {args.name!r} in {users.path}")
            return 2
        print(f"removed {args.name}")
        return 0
    try:
        account = users.add(args.name, args.role, new_password(args.password_stdin))
    except AccountError as exc:
        print(f"error: {exc}")
        return 2
    print(f"added {account.name} ({account.role}) to {users.path}")
    return 0


def manage_tokens(users: Users, args: argparse.Namespace) -> int:
    """Personal tokens for the CLI through the console (RALLYCALL_CONSOLE_TOKEN)."""
    try:
        if args.users_command == "token":
            record, token = users.new_token(args.name, args.label or "")
            print(token)
            print(f"token {record.id} for {args.name}: shown once; to be set as RALLYCALL_CONSOLE_TOKEN",
                  file=sys.stderr)  # fmt: skip
            return 0
        if args.token_id is None and not args.all:
            raise AccountError("name the token ID to revoke, or --all")
        revoked = users.revoke_tokens(args.name, None if args.all else args.token_id)
    except AccountError as exc:
        print(f"error: {exc}")
        return 2
    if not revoked:
        print(f"error: {args.name} has no token {args.token_id!r}")
        return 2
    print(f"revoked {revoked} token(s) of {args.name}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m console", description="rallycall's web console")
    commands = top.add_subparsers(dest="command")
    users = commands.add_parser("users", help="console accounts")
    users_commands = users.add_subparsers(dest="users_command", required=True)
    add = users_commands.add_parser("add", help="add an account (asks for its password)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    remove = users_commands.add_parser("remove", help="remove an account")
    remove.add_argument("name")
    revoke_sessions = users_commands.add_parser("revoke", help="end all its sessions and tokens")
    revoke_sessions.add_argument("name")
    unlock = users_commands.add_parser("unlock", help="forgive an account's failed sign-ins (its lockout)")
    unlock.add_argument("name")
    users_commands.add_parser("list", help="the accounts, their roles and their tokens' IDs")
    token = users_commands.add_parser("token", help="a new personal token for the CLI (printed once)")
    token.add_argument("name")
    token.add_argument("--label", help="where it is used, e.g. the laptop's name")
    revoke = users_commands.add_parser("revoke-token", help="revoke a personal token (or --all of them)")
    revoke.add_argument("name")
    revoke.add_argument("token_id", nargs="?", metavar="TOKEN_ID")
    revoke.add_argument("--all", action="store_true")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "users":
        return manage_users(Users(settings().users_path), args)
    try:
        asyncio.run(run_console())
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"cannot start the console: {exc} (is RALLYCALL_CONSOLE_ADDR free?)")
        return 1
    except RuntimeError as exc:
        print(f"cannot reach Temporal ({exc}); is the stack or your cluster running?")
        return 1
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # avoid the SDK's abort at interpreter exit (sdk-python #300)
