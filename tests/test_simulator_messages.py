"""Texts through the simulator with the real `twilio` SDK: accepted as queued, then each later
status told, signed, to the message's StatusCallback, as Twilio does."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta
from pathlib import Path

from carrier.simulator import Scenario
from tests.test_simulator_support import CALLER_ID, bench, until

MOBILE, SWITCHED_OFF = "+41795550101", "+41795550109"
SCENARIO = Scenario(ring_seconds=0.05, sms_undelivered=[SWITCHED_OFF])


async def test_a_text_is_told_sent_then_delivered(tmp_path: Path) -> None:
    async with bench(tmp_path, SCENARIO) as b:
        message = await b.client.messages.create_async(
            to=MOBILE, from_=CALLER_ID, body="PIN 123456", status_callback=b.hook("/sms")
        )
        assert message.status == "queued", "the answer to the request, with no callback for it"

        await until(lambda: len(b.hooks.at("/sms")) == 2)

        told = b.hooks.at("/sms")
        assert [(p["MessageStatus"], p["SmsStatus"]) for p in told] == [
            ("sent", "sent"),
            ("delivered", "delivered"),
        ]
        assert all(
            (p["MessageSid"], p["To"], p["From"], p["AccountSid"])
            == (message.sid, MOBILE, CALLER_ID, message.account_sid)
            for p in told
        )
        [listed] = await b.client.messages.list_async(to=MOBILE)
        assert listed.status == "delivered" and listed.date_sent is not None


async def test_a_text_to_an_unreachable_handset_ends_undelivered_with_error_30003(tmp_path: Path) -> None:
    async with bench(tmp_path, SCENARIO) as b:
        message = await b.client.messages.create_async(
            to=SWITCHED_OFF, from_=CALLER_ID, body="PIN 123456", status_callback=b.hook("/sms")
        )
        await until(lambda: len(b.hooks.at("/sms")) == 2)

        sent, undelivered = b.hooks.at("/sms")
        assert sent["MessageStatus"] == "sent" and "ErrorCode" not in sent
        assert (undelivered["MessageStatus"], undelivered["ErrorCode"]) == ("undelivered", "30003")
        [listed] = await b.client.messages.list_async(to=SWITCHED_OFF)
        assert (listed.sid, listed.status, listed.error_code) == (message.sid, "undelivered", 30003)


async def test_texts_beyond_the_accounts_rate_wait_in_the_carriers_queue(tmp_path: Path) -> None:
    """Twilio accepts a burst at once and sends it at the account's rate: the journal says how
    long each waited (`queue_ms`), and `sent` is told only then."""
    async with bench(tmp_path, SCENARIO.model_copy(update={"sms_per_second": 20})) as b:
        accepted = await asyncio.gather(
            *(
                b.client.messages.create_async(to=f"+417955502{n:02d}", from_=CALLER_ID, body="x")
                for n in range(10)
            )
        )
        assert {m.status for m in accepted} == {"queued"}, "all accepted at once"
        sent = sorted(
            datetime.fromisoformat(e["at"]) + timedelta(milliseconds=e["queue_ms"]) for e in b.entries("sms")
        )
        gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(sent)]
        # the journal's clock reads a few ms after the queue's: each gap is 50 ms give or take that
        assert min(gaps) >= 0.04 and (sent[-1] - sent[0]).total_seconds() >= 0.44, gaps
        assert b.entries("sms")[-1]["queue_ms"] > 0, "the last of the burst waited its turn"
