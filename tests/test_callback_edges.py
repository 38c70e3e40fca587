"""Bad input at the callback server's edge: garbage, missing fields, oversized bodies, wrong
content types, wrong methods, unknown runs and forged tokens each get a 4xx (never a 500, never a
crash), and nothing of it reaches a workflow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
import pytest
import yaml
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment
from twilio.request_validator import RequestValidator

from callbacks.dial_in import hold_token
from carrier.port import InboundCall
from config import DEV_AUTH_TOKEN
from tests.support import CONTACTS, Bridged, Harness, eventually, harness

SIGNER = RequestValidator(DEV_AUTH_TOKEN)
CALL = {"CallSid": "CA" + "1" * 32, "CallStatus": "in-progress", "From": "+41797770001", "To": "+41215550100"}


@dataclass
class Edge:
    h: Harness
    run: Bridged
    session: aiohttp.ClientSession

    def url(self, path: str, **query: str) -> str:
        return f"{self.h.settings.public_url}{path}" + (f"?{urlencode(query)}" if query else "")

    async def post(
        self, url: str, form: dict[str, str] | None = None, *, signed: bool = True, **options: object
    ) -> int:
        headers = {"X-Twilio-Signature": SIGNER.compute_signature(url, form or {})} if signed else {}
        async with self.session.post(url, data=form, headers=headers, **options) as response:  # type: ignore[arg-type]
            return response.status


@pytest.fixture(scope="module")
async def edge(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Edge]:

    folder = tmp_path_factory.mktemp("edges")
    contacts = folder / "contacts.yaml"
    contacts.write_text(yaml.safe_dump(CONTACTS, allow_unicode=True))
    async with harness(dev_env.client, folder, contacts) as h, h.worker(), aiohttp.ClientSession() as session:
        run = await h.launch("alice")
        await eventually(lambda: h.roster(run), lambda r: r.person("alice").in_conference)
        yield Edge(h, run, session)


async def signals_received(edge: Edge) -> int:
    history = await edge.h.handle(edge.run).fetch_history()
    return sum(e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED for e in history.events)


CASES: list[tuple[str, str, int]] = [
    ("GET on a callback", "get", 405),
    ("JSON instead of a form", "json", 415),
    ("multipart instead of a form", "multipart", 415),
    ("a 100 KB body", "huge", 413),
    ("no run in the URL", "no-run", 400),
    ("a run ID with a slash and spaces", "bad-run", 400),
    ("no attempt in the URL", "no-attempt", 400),
    ("an attempt ID that is not step/contact/index", "bad-attempt", 400),
    ("unsigned", "unsigned", 403),
    ("signed by another key", "wrong-key", 403),
    ("signed for another URL", "other-url", 403),
    ("signed, without CallSid", "no-callsid", 400),
    ("signed, for a run that never existed", "unknown-run", 404),
    ("conference event without ConferenceSid", "no-conference-sid", 400),
    ("dial-in without From", "no-from", 400),
    ("PIN try 0", "try-0", 400),
    ("PIN try not a number", "try-abc", 400),
    ("PIN try beyond three", "try-9", 400),
    ("a hold with a forged token", "forged-hold", 400),
    ("a hold number beyond three", "hold-9", 400),
    ("40 digits keyed", "long-digits", 400),
    ("an unknown path", "unknown-path", 404),
    ("bytes that are not UTF-8 in the form", "binary", 400),
]


@pytest.mark.parametrize(("what", "case", "status"), CASES, ids=[c[1] for c in CASES])
async def test_bad_input_gets_a_4xx_and_reaches_no_workflow(
    edge: Edge, what: str, case: str, status: int
) -> None:
    before = await signals_received(edge)
    run, attempt = edge.run.workflow_id, "001/alice/0"
    status_url = edge.url("/twilio/call-status", run=run, attempt=attempt)
    got: int
    if case == "get":
        async with edge.session.get(status_url) as response:
            got = response.status
    elif case == "json":
        got = await edge.post(status_url, None, signed=False, json=CALL)
    elif case == "multipart":
        form = aiohttp.FormData(CALL)
        form.add_field("file", b"x", filename="x.bin")
        async with edge.session.post(status_url, data=form) as response:
            got = response.status
    elif case == "huge":
        got = await edge.post(status_url, {**CALL, "Padding": "x" * 100_000})
    elif case == "no-run":
        got = await edge.post(edge.url("/twilio/call-status", attempt=attempt), CALL)
    elif case == "bad-run":
        got = await edge.post(edge.url("/twilio/call-status", run="a/b c", attempt=attempt), CALL)
    elif case == "no-attempt":
        got = await edge.post(edge.url("/twilio/call-status", run=run), CALL)
    elif case == "bad-attempt":
        got = await edge.post(edge.url("/twilio/call-status", run=run, attempt="nonsense"), CALL)
    elif case == "unsigned":
        got = await edge.post(status_url, CALL, signed=False)
    elif case == "wrong-key":
        headers = {"X-Twilio-Signature": RequestValidator("not-ours").compute_signature(status_url, CALL)}
        async with edge.session.post(status_url, data=CALL, headers=headers) as response:
            got = response.status
    elif case == "other-url":
        elsewhere = edge.url("/twilio/call-status", run=run, attempt="001/bruno/0")
        headers = {"X-Twilio-Signature": SIGNER.compute_signature(elsewhere, CALL)}
        async with edge.session.post(status_url, data=CALL, headers=headers) as response:
            got = response.status
    elif case == "no-callsid":
        got = await edge.post(status_url, {"CallStatus": "completed"})
    elif case == "unknown-run":
        got = await edge.post(
            edge.url("/twilio/call-status", run="conference-1-never", attempt=attempt), CALL
        )
    elif case == "no-conference-sid":
        got = await edge.post(edge.url("/twilio/conference-status", run=run), {"StatusCallbackEvent": "join"})
    elif case == "no-from":
        got = await edge.post(edge.url("/twilio/voice/inbound"), {"CallSid": CALL["CallSid"]})
    elif case in ("try-0", "try-abc", "try-9"):
        tries = {"try-0": "0", "try-abc": "abc", "try-9": "9"}[case]
        got = await edge.post(edge.url("/twilio/voice/pin", **{"try": tries}), {**CALL, "Digits": "1"})
    elif case == "forged-hold":
        url = edge.url("/twilio/voice/pin", **{"try": "1", "hold": "1", "t": "not-a-token"})
        got = await edge.post(url, CALL)
    elif case == "hold-9":
        got = await edge.post(edge.url("/twilio/voice/pin", **{"try": "1", "hold": "9", "t": "x"}), CALL)
    elif case == "long-digits":
        got = await edge.post(edge.url("/twilio/voice/pin", **{"try": "1"}), {**CALL, "Digits": "1" * 40})
    elif case == "unknown-path":
        got = await edge.post(edge.url("/twilio/nothing-here"), CALL)
    else:
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"}
        async with edge.session.post(
            status_url, data=b"CallSid=\xff\xfe&CallStatus=%ZZ", headers=headers
        ) as r:
            got = r.status
    assert got == status, what
    assert await signals_received(edge) == before, f"{what}: nothing reached the run"


async def test_a_hold_token_works_for_its_own_call_only(edge: Edge) -> None:
    other_call = InboundCall(call_sid="CA" + "2" * 32, caller="+41797770001", digits="123456")
    token = hold_token(edge.h.settings.pin_secret, other_call)
    url = edge.url("/twilio/voice/pin", **{"try": "1", "hold": "1", "t": token})
    assert await edge.post(url, CALL) == 400, "a token made for another call"
