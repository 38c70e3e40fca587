"""The embedded stack's demo account, so `make run` can be tried in a browser at once.

Only for the embedded stack: when its users file holds no account but the demo's, the demo
account gets a fresh random password at every start, printed in the banner; once a real
account exists, there is no demo account to print. The embedded stack keeps its accounts in
its data dir, unless RALLYCALL_USERS_FILE says otherwise.
"""

from __future__ import annotations

import secrets

from console.auth import Users

DEMO = "demo"


def demo_sign_in(users: Users) -> tuple[str, str] | None:
    """(name, password) of the demo launcher, or None when real accounts exist."""
    if any(account.name != DEMO for account in users.accounts()):
        return None
    password = secrets.token_urlsafe(9)
    users.set_password(DEMO, "launcher", password)
    return DEMO, password
