"""The callback server only lets through what the carrier signed for the URL it really serves."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from temporalio.testing import WorkflowEnvironment
from twilio.request_validator import RequestValidator

from config import DEV_AUTH_TOKEN
from domain.events import EndRequest
from tests.support import Harness, eventually, harness
from workflows.procedure_run import ProcedureRun


@pytest.fixture
async def callback_setup(dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path):
    async with harness(dev_env.client, tmp_path, contacts_file) as h, h.worker():
        yield h


def status_url(h: Harness, workflow_id: str, attempt: str) -> str:
    query = urlencode({"run": workflow_id, "attempt": attempt})
    return f"{h.settings.public_url}/twilio/call-status?{query}"


async def post(url: str, form: dict[str, str], signature: str | None) -> int:
    headers = {"X-Twilio-Signature": signature} if signature is not None else {}
    async with aiohttp.ClientSession() as session, session.post(url, data=form, headers=headers) as response:
        return response.status


async def test_forged_and_unsigned_callbacks_are_refused_and_reach_no_workflow(
    callback_setup: Harness,
) -> None:
    h = callback_setup
    launched = await h.launch("alice", "bruno")
    await eventually(
        lambda: h.roster(launched),
        lambda r: all(p.attempts and p.attempts[0].outcome != "pending" for p in r.people),
    )
    url = status_url(h, launched.workflow_id, "001/bruno/0")
    form = {"CallSid": "CA" + "f" * 32, "CallStatus": "in-progress"}

    assert await post(url, form, None) == 403, "unsigned"
    assert await post(url, form, RequestValidator("not-the-token").compute_signature(url, form)) == 403, (
        "forged"
    )
    signed_elsewhere = RequestValidator(DEV_AUTH_TOKEN).compute_signature(url.replace("bruno", "alice"), form)
    assert await post(url, form, signed_elsewhere) == 403, "signature for another URL"
    tampered = RequestValidator(DEV_AUTH_TOKEN).compute_signature(url, {**form, "CallStatus": "busy"})
    assert await post(url, form, tampered) == 403, "signature over other parameters"

    bruno = next(p for p in (await h.roster(launched)).people if p.id == "bruno")
    assert not bruno.in_conference and bruno.attempts[0].outcome == "no-answer", "nothing reached the roster"

    genuine = RequestValidator(DEV_AUTH_TOKEN).compute_signature(url, form)
    assert await post(url, form, genuine) == 200

    handle = h.handle(launched)
    await handle.execute_update(ProcedureRun.end, EndRequest())
    await handle.result()
    late = {"CallSid": "CA" + "e" * 32, "CallStatus": "completed"}
    signature = RequestValidator(DEV_AUTH_TOKEN).compute_signature(url, late)
    assert await post(url, late, signature) == 200, "a late callback for an ended conference is acknowledged"
