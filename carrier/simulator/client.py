"""Asking a running simulator to place an inbound call to the dial-in number."""

from __future__ import annotations

from typing import Any

import aiohttp


async def place_inbound_call(
    simulator_url: str, caller: str, digits: list[str], hangup_after_s: float | None = None
) -> dict[str, Any]:
    """Returns the call's `call_sid`, the conference it `joined` (or None), its `status`, and the
    `transcript` of what the caller heard and keyed."""
    order = {"from": caller, "digits": digits, "hangup_after_s": hangup_after_s}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{simulator_url.rstrip('/')}/simulator/inbound", json=order) as response,
    ):
        if response.status != 200:
            raise RuntimeError(f"the simulator answered {response.status}: {await response.text()}")
        result: dict[str, Any] = await response.json()
        return result
