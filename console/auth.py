"""Console accounts: a JSON file of names, roles and argon2 password hashes, managed with
`python -m console users add|remove|list`.

The file is read again whenever it changes, so removing an account or changing a role takes
effect on the next request without restarting the console. Passwords are never stored or
logged, only their argon2 hashes.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, Field

Role = Literal["viewer", "launcher", "procedure-manager", "administrator"]
ROLES: tuple[Role, ...] = get_args(Role)
LAUNCHING_ROLES: frozenset[Role] = frozenset({"launcher", "procedure-manager", "administrator"})
"""Who may launch, end and moderate a run."""
DEFINITION_ROLES: frozenset[Role] = frozenset({"procedure-manager", "administrator"})
"""Who may read the definitions and schemes as files (they stay files under review)."""
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
"""Account names double as `RallycallLaunchedBy` values, so they stay plain."""
MIN_PASSWORD = 10


class AccountError(ValueError):
    """A users-file change that cannot be made; the message says why."""


class Account(BaseModel):
    name: str = Field(pattern=NAME.pattern)
    role: Role
    password_hash: str

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
        self._loaded: tuple[float, UsersFile] | None = None
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

    def add(self, name: str, role: str, password: str) -> Account:
        if not NAME.match(name):
            raise AccountError(f"account name {name!r}: use letters, digits and . _ @ + - (at most 64)")
        if role not in ROLES:
            raise AccountError(f"role {role!r}: one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"password: at least {MIN_PASSWORD} characters")
        if self.get(name) is not None:
            raise AccountError(f"account {name!r} exists: remove it first to change its role or password")
        account = Account(name=name, role=role, password_hash=self.hasher.hash(password))
        self._write(UsersFile(accounts=[*self._read().accounts, account]))
        return account

    def set_password(self, name: str, role: Role, password: str) -> Account:
        """Create the account or give it a new password and role (the embedded stack's demo)."""
        account = Account(name=name, role=role, password_hash=self.hasher.hash(password))
        others = [a for a in self._read().accounts if a.name != name]
        self._write(UsersFile(accounts=[*others, account]))
        return account

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
            stamp = self.path.stat().st_mtime_ns
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
