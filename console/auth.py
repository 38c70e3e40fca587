"""Console accounts: a JSON file of names, roles, argon2 password hashes and personal API
tokens' digests, managed with `python -m console users add|remove|list|token|revoke-token`.

The file is read again whenever it changes, so removing an account or changing a role takes
effect on the next request without restarting the console. Passwords are never stored or
logged, only their argon2 hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, Field

from console.files import locked

Role = Literal["viewer", "launcher", "procedure-manager", "administrator"]
ROLES: tuple[Role, ...] = get_args(Role)
LAUNCHING_ROLES: frozenset[Role] = frozenset({"launcher", "procedure-manager", "administrator"})
"""Who may launch, end and moderate a run."""
DEFINITION_ROLES: frozenset[Role] = frozenset({"procedure-manager", "administrator"})
"""Who may read the definitions and schemes as files (they stay files under review)."""
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
"""Account names double as `RallycallLaunchedBy` values, so they stay plain."""
MIN_PASSWORD = 10


def new_session_key() -> str:
    return secrets.token_urlsafe(12)


class AccountError(ValueError):
    """A users-file change that cannot be made; the message says why."""


TOKEN = re.compile(r"^rc_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")
"""`rc_<id>_<secret>`: the ID names the token (to list and revoke it), the secret is 256 bits."""


class ApiToken(BaseModel):
    """A personal token for the CLI through the console's API; only its secret's digest is kept
    (a SHA-256 suffices for 256 random bits: there is nothing to guess)."""

    id: str
    digest: str
    created_at: datetime
    label: str = ""


class Account(BaseModel):
    name: str = Field(pattern=NAME.pattern)
    role: Role
    password_hash: str
    tokens: list[ApiToken] = Field(default_factory=list)
    session_key: str = ""
    """Changes when the account's sessions are revoked and with each new password: a session
    signed in under another key is over, on every console replica (each reads this file)."""

    @property
    def can_launch(self) -> bool:
        return self.role in LAUNCHING_ROLES

    @property
    def can_read_definitions(self) -> bool:
        return self.role in DEFINITION_ROLES


class UsersFile(BaseModel):
    accounts: list[Account] = Field(default_factory=list)


class Users:
    """The accounts in one users file."""

    def __init__(self, path: Path, hasher: PasswordHasher | None = None) -> None:
        self.path = path
        self.hasher = hasher or PasswordHasher()
        self._loaded: tuple[tuple[int, int], UsersFile] | None = None
        self._decoy = self.hasher.hash("no such account")
        """Checked for unknown names, so a refusal takes as long whether or not the name exists."""

    def accounts(self) -> list[Account]:
        return list(self._read().accounts)

    def get(self, name: str) -> Account | None:
        return next((a for a in self._read().accounts if a.name == name), None)

    def verify(self, name: str, password: str) -> Account | None:
        """The account if the password is right; None otherwise, without saying which was wrong."""
        account = self.get(name)
        try:
            self.hasher.verify(account.password_hash if account else self._decoy, password)
        except (VerificationError, InvalidHashError):
            return None
        if account and self.hasher.check_needs_rehash(account.password_hash):
            account = self._replace(account.model_copy(update={"password_hash": self.hasher.hash(password)}))
        return account

    def by_token(self, token: str) -> Account | None:
        """The account a personal token belongs to; None for a malformed, unknown or revoked one."""
        found = TOKEN.match(token)
        if found is None:
            return None
        token_id, secret = found.groups()
        digest = hashlib.sha256(secret.encode()).hexdigest()
        for account in self._read().accounts:
            for kept in account.tokens:
                if kept.id == token_id and hmac.compare_digest(kept.digest, digest):
                    return account
        return None

    def new_token(self, name: str, label: str = "") -> tuple[ApiToken, str]:
        """A new personal token for the account: its record, and the token itself, shown once."""
        token_id, secret = secrets.token_hex(4), secrets.token_urlsafe(32)
        record = ApiToken(id=token_id, digest=hashlib.sha256(secret.encode()).hexdigest(),
                          created_at=datetime.now(UTC), label=label[:64])  # fmt: skip
        with locked(self.path):
            self._loaded = None
            account = self.get(name)
            if account is None:
                raise AccountError(f"no account {name!r}")
            self._replace(account.model_copy(update={"tokens": [*account.tokens, record]}))
        return record, f"rc_{token_id}_{secret}"

    def revoke_tokens(self, name: str, token_id: str | None = None) -> int:
        """Revoke one of the account's tokens (by ID), or all of them; how many were revoked."""
        with locked(self.path):
            self._loaded = None
            account = self.get(name)
            if account is None:
                raise AccountError(f"no account {name!r}")
            kept = [t for t in account.tokens if token_id is not None and t.id != token_id]
            if len(kept) != len(account.tokens):
                self._replace(account.model_copy(update={"tokens": kept}))
        return len(account.tokens) - len(kept)

    def add(self, name: str, role: str, password: str) -> Account:
        if not NAME.match(name):
            raise AccountError(f"account name {name!r}: use letters, digits and . _ @ + - (at most 64)")
        if role not in ROLES:
            raise AccountError(f"role {role!r}: one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"password: at least {MIN_PASSWORD} characters")
        if self.get(name) is not None:
            raise AccountError(f"account {name!r} exists: remove it first to change its role or password")
        account = Account(name=name, role=role, password_hash=self.hasher.hash(password),
                          session_key=new_session_key())  # fmt: skip
        self._write(UsersFile(accounts=[*self._read().accounts, account]))
        return account

    def set_password(self, name: str, role: Role, password: str) -> Account:
        """Create the account or give it a new password and role (the embedded stack's demo)."""
        account = Account(name=name, role=role, password_hash=self.hasher.hash(password),
                          session_key=new_session_key())  # fmt: skip
        others = [a for a in self._read().accounts if a.name != name]
        self._write(UsersFile(accounts=[*others, account]))
        return account

    def revoke_sessions(self, name: str) -> bool:
        """Sign the account out everywhere: every session it holds is over at its next request."""
        with locked(self.path):
            self._loaded = None
            account = self.get(name)
            if account is None:
                return False
            self._replace(account.model_copy(update={"session_key": new_session_key()}))
        return True

    def remove(self, name: str) -> bool:
        accounts = self._read().accounts
        kept = [a for a in accounts if a.name != name]
        if len(kept) == len(accounts):
            return False
        self._write(UsersFile(accounts=kept))
        return True

    def _replace(self, account: Account) -> Account:
        accounts = [account if a.name == account.name else a for a in self._read().accounts]
        self._write(UsersFile(accounts=accounts))
        return account

    def _read(self) -> UsersFile:
        try:
            found = self.path.stat()
            stamp = (found.st_ino, found.st_mtime_ns)  # each write is a new file: two in one tick differ
        except FileNotFoundError:
            return UsersFile()
        if self._loaded is None or self._loaded[0] != stamp:
            self._loaded = (stamp, UsersFile.model_validate_json(self.path.read_bytes()))
        return self._loaded[1]

    def _write(self, users: UsersFile) -> None:
        """Atomically, readable by its owner only: the hashes are still worth protecting."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".users-")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(users.model_dump(mode="json"), out, indent=2)
        os.chmod(temporary, 0o600)
        os.replace(temporary, self.path)
        self._loaded = None
