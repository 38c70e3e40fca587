"""Finding a running conference from what a caller gives: the PIN they key in, or the number
they call from. Neither is stored in clear: both are keyed HMACs (RALLYCALL_PIN_SECRET)."""

from __future__ import annotations

import hashlib
import hmac

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from workflows import search_attributes as sa


def _digest(secret: str, value: str, length: int) -> str:
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()[:length]


def pin_lease_id(pin: str, secret: str) -> str:
    """The ID of the workflow that holds a PIN while its conference runs."""
    return f"pin-lease-{_digest(secret, pin, 24)}"


def caller_key(number: str, secret: str) -> str:
    """What the `RallycallCallerKeys` search attribute holds for each participant's number."""
    return _digest(secret, number, 20)


async def conference_with_pin(client: Client, secret: str, pin: str) -> str | None:
    """The running conference holding this PIN, if any."""
    handle = client.get_workflow_handle(pin_lease_id(pin, secret))
    try:
        description = await handle.describe()
    except RPCError:
        return None
    if description.status != WorkflowExecutionStatus.RUNNING:
        return None
    return await description.memo_value("conference", type_hint=str)


async def conferences_of_caller(client: Client, secret: str, number: str) -> list[str]:
    """Running conferences in which this number belongs to a participant."""
    query = (
        f'WorkflowType="ProcedureRun" AND ExecutionStatus="Running" '
        f'AND {sa.CALLER_KEYS.name}="{caller_key(number, secret)}"'
    )
    return [execution.id async for execution in client.list_workflows(query)]
