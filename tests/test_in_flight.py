"""The table of side effects under way in a worker process: a later try takes an earlier try's
outcome instead of texting again, and the table stays bounded without dropping work in hand."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from temporalio import activity
from temporalio.testing import ActivityEnvironment

from activities import in_flight
from activities.in_flight import InFlight


async def test_a_later_try_takes_the_outcome_instead_of_sending_again() -> None:
    table, sent = InFlight(), []

    async def send() -> str:
        sent.append("sms")
        return "SM1"

    @activity.defn
    async def texting() -> str:
        return await table.once("sms0", send)

    first, second = ActivityEnvironment(), ActivityEnvironment()
    second.info = dataclasses.replace(second.info, attempt=2)
    assert await first.run(texting) == "SM1"
    assert await second.run(texting) == "SM1"
    assert sent == ["sms"], "the second try did not text again"


async def test_kept_outcomes_are_bounded_and_work_in_hand_is_never_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(in_flight, "KEPT_AT_MOST", 100)
    table, release = InFlight(), asyncio.Event()

    async def hanging() -> str:
        await release.wait()
        return "late"

    async def quick() -> str:
        return "done"

    @activity.defn
    async def parts(first: int, count: int, hang: bool) -> None:
        for n in range(first, first + count):
            await table.once(f"part{n}", hanging if hang else quick)

    env = ActivityEnvironment()
    in_hand = asyncio.ensure_future(env.run(parts, 0, 1, True))
    await asyncio.sleep(0)
    await env.run(parts, 1, 1_000, False)
    assert len(table._work) <= 101, "outcomes beyond the bound were dropped, oldest first"
    assert any(key.endswith("/part0") for key in table._work), "the work still in hand was kept"
    release.set()
    await in_hand
