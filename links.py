"""Signed personal links: the "call me into the conference" link a person gets in their PIN SMS.

A link names one run and one person and is signed with RALLYCALL_CONSOLE_SECRET, so it works
for that person only, cannot be turned into a call to any other number, and is refused once
the run has ended (the console checks the run, the signature cannot expire by itself).
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

SALT = "rallycall-call-me"


@dataclass(frozen=True)
class CallMe:
    run_id: str
    person_id: str


def call_me_token(secret: str, run_id: str, person_id: str) -> str:
    return str(URLSafeSerializer(secret, salt=SALT).dumps([run_id, person_id]))


def call_me_url(console_url: str, secret: str, run_id: str, person_id: str) -> str:
    return f"{console_url.rstrip('/')}/call-me/{call_me_token(secret, run_id, person_id)}"


def read_call_me(secret: str, token: str) -> CallMe | None:
    """Whose link this is, or None for a link not signed with our secret (forged, altered)."""
    try:
        run_id, person_id = URLSafeSerializer(secret, salt=SALT).loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    return CallMe(run_id=str(run_id), person_id=str(person_id))
