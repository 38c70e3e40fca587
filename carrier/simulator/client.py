"""Asking a running simulator, from another process, to do what only its controls can: place
an inbound call to the dial-in number, or open fault windows for a chaos drill."""

from __future__ import annotations

from typing import Any

import aiohttp


async def place_inbound_call(
    simulator_url: str, caller: str, digits: list[str], hangup_after_s: float | None = None
) -> dict[str, Any]:
    """Returns the call's `call_sid`, the conference it `joined` (or None), its `status`, and the
    `transcript` of what the caller heard and keyed."""
    order = {"from": caller, "digits": digits, "hangup_after_s": hangup_after_s}
    result: dict[str, Any] = await _post(simulator_url, "/simulator/inbound", order)
    return result


async def open_fault_windows(
    simulator_url: str,
    *,
    server_errors_for_s: float | None = None,
    webhooks_paused_for_s: float | None = None,
) -> dict[str, float]:
    """For that many seconds from now (0 closes a window), every REST API request answers 500,
    or every webhook is lost. Returns the seconds left in each window."""
    windows = {"server_errors_for_s": server_errors_for_s, "webhooks_paused_for_s": webhooks_paused_for_s}
    given = {name: seconds for name, seconds in windows.items() if seconds is not None}
    left: dict[str, float] = await _post(simulator_url, "/simulator/faults", given)
    return left


async def _post(simulator_url: str, path: str, order: dict[str, Any]) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{simulator_url.rstrip('/')}{path}", json=order) as response,
    ):
        if response.status != 200:
            raise RuntimeError(f"the simulator answered {response.status}: {await response.text()}")
        return await response.json()
