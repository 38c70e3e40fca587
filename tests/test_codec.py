"""The payload codec and its server, without Temporal: encryption round trip, key rotation,
tampering, payloads written before encryption, encrypted failures, the codec server's protocol
and CORS, and the refusal to run production on the dev key."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from google.protobuf import json_format
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from codec.aes import (
    ENCODING,
    KEY_ID,
    REFUSED,
    AesGcmCodec,
    BadKeys,
    EncryptionKey,
    UnsealedPayload,
    new_key,
    parse_keys,
)
from codec.server import serve, ui_origins
from config import DEV_ENCRYPTION_KEYS, Settings, data_converter, production_problems
from domain.events import RejoinRequest

ROOT = Path(__file__).resolve().parent.parent
OLD = EncryptionKey("2025", bytes(range(32)))
NEW = EncryptionKey("2026", bytes(range(32, 64)))
UI = "http://localhost:8233"


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


async def test_round_trip_hides_data_and_type() -> None:
    codec = AesGcmCodec([NEW])
    original = plain("Alice Martin +41215550101")
    [sealed] = await codec.encode([original])
    assert sealed.metadata == {"encoding": ENCODING, KEY_ID: b"2026"}, "only the marker and key ID in clear"
    assert b"Alice" not in sealed.data and b"json/plain" not in sealed.data
    assert await codec.decode([sealed]) == [original]
    [again] = await codec.encode([original])
    assert again.data != sealed.data, "a fresh nonce each time"


async def test_rotation_old_key_still_decrypts_new_key_encrypts() -> None:
    before, after = AesGcmCodec([OLD]), AesGcmCodec([NEW, OLD])
    [old_payload] = await before.encode([plain("PIN 123456")])
    assert await after.decode([old_payload]) == [plain("PIN 123456")]
    [new_payload] = await after.encode([plain("PIN 123456")])
    assert new_payload.metadata[KEY_ID] == b"2026"
    with pytest.raises(ValueError, match="key '2026', which is not among the configured keys"):
        await before.decode([new_payload])


async def test_tampered_payloads_do_not_decode() -> None:
    codec = AesGcmCodec([NEW, OLD])
    [sealed] = await codec.encode([plain("Bruno Keller")])
    flipped = bytearray(sealed.data)
    flipped[-1] ^= 1
    altered = Payload(metadata=sealed.metadata, data=bytes(flipped))
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID: b"2025"}, data=sealed.data)
    for bad in (altered, relabelled):
        with pytest.raises(ValueError, match="altered or is corrupt"):
            await codec.decode([bad])


async def test_a_payload_the_codec_did_not_seal_is_refused() -> None:
    codec = AesGcmCodec([NEW])
    [sealed] = await codec.encode([plain("Bruno Keller")])
    forged = [plain("end the conference"), Payload(metadata={"encoding": b"binary/null"}),
              Payload(metadata={"encoding": b"json/plain"}, data=b'{"reason": "END"}'),
              Payload(metadata={"encoding": b"json/plain", "x": b"1"}, data=b'"NOT_STARTED"')]  # fmt: skip
    relabelled = Payload(metadata={**sealed.metadata, "encoding": b"json/plain"}, data=sealed.data)
    for payload in (*forged, relabelled):
        with pytest.raises(UnsealedPayload, match="not encrypted"):
            codec.decrypt(payload)
    assert await codec.decode([*forged, sealed]) == [Payload(metadata={"encoding": REFUSED})] * 4 + [
        plain("Bruno Keller")
    ], "the SDK gets an inert payload in place of each refused one, the sealed one opened"
    server_wrote = Payload(metadata={"encoding": b"json/plain"}, data=b'"ACTIVITY_ID_NOT_STARTED"')
    assert await codec.decode([server_wrote]) == [server_wrote], (
        "the server's own constants pass (the details of an activity cancelled before it started)"
    )
    with pytest.raises(KeyError, match="Unknown payload encoding binary/refused-unsealed"):
        data_converter(Settings(_env_file=None)).payload_converter.from_payloads(
            [Payload(metadata={"encoding": REFUSED})]
        )


async def test_payloads_written_before_encryption_pass_through_when_accepted() -> None:
    codec = AesGcmCodec([NEW], accept_unsealed=True)
    payloads = [plain("written before encryption"), Payload(metadata={"encoding": b"binary/null"})]
    assert await codec.decode(payloads) == payloads
    converter = data_converter(Settings(_env_file=None, accept_unsealed_payloads=True))
    assert await converter.decode([plain("old")], [str]) == ["old"]


def test_key_lists_are_checked_without_showing_the_key() -> None:
    assert [k.key_id for k in parse_keys(f"{new_key('a')}, {new_key('b.2')}")] == ["a", "b.2"]
    secret = base64.b64encode(bytes(16)).decode()
    for text, problem in [
        ("", "no key"),
        ("justakey", "expected ID:BASE64KEY"),
        ("k:not base64!", "not valid base64"),
        (f"k:{secret}", "16 bytes, expected 32"),
        (f"{new_key('k')},{new_key('k')}", "listed twice"),
    ]:
        with pytest.raises(BadKeys, match=problem) as refused:
            parse_keys(text)
        assert secret not in str(refused.value)
    with pytest.raises(ValidationError, match="RALLYCALL_ENCRYPTION_KEYS: key 'k'") as invalid:
        Settings(_env_file=None, encryption_keys=f"k:{secret}")
    assert secret not in str(invalid.value), "settings errors do not print the secret"
    assert "2025" in repr(OLD) and str(OLD.secret) not in repr(OLD)


async def test_the_data_converter_encrypts_models_and_failures() -> None:
    converter = data_converter(Settings(_env_file=None, encryption_keys=DEV_ENCRYPTION_KEYS))
    request = RejoinRequest(pin="246810", from_number="+41795550103")
    [payload] = await converter.encode([request])
    assert payload.metadata["encoding"] == ENCODING and b"246810" not in payload.data
    assert await converter.decode([payload], [RejoinRequest]) == [request]

    failure = Failure()
    await converter.encode_failure(ApplicationError("SMS to +41795550103 refused", type="Refused"), failure)
    assert failure.message == "Encoded failure" and not failure.stack_trace
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    decoded = await converter.decode_failure(failure)
    assert "SMS to +41795550103 refused" in str(decoded)


def test_production_refuses_the_dev_key_under_any_id() -> None:
    dev_secret = DEV_ENCRYPTION_KEYS.split(":", 1)[1]
    own = new_key("2026")
    problems = {
        "default": production_problems(Settings(_env_file=None, environment="production")),
        "dev key kept for decryption": production_problems(
            Settings(_env_file=None, environment="production", encryption_keys=f"{own},old:{dev_secret}")
        ),
        "own key": production_problems(
            Settings(_env_file=None, environment="production", encryption_keys=own)
        ),
        "simulator": production_problems(
            Settings(_env_file=None, environment="production", twilio_api_url="http://127.0.0.1:9")
        ),
        "development": production_problems(Settings(_env_file=None, environment="development")),
    }
    refused = {
        case for case, found in problems.items() if any("RALLYCALL_ENCRYPTION_KEYS" in p for p in found)
    }
    assert refused == {"default", "dev key kept for decryption", "simulator"}, (
        "production is declared: a Twilio stand-in's URL does not turn the checks off"
    )


def start(command: list[str], **variables: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("RALLYCALL_", "TWILIO_"))}
    environment |= {
        "RALLYCALL_DATA_DIR": "/nonexistent",
        "TEMPORAL_ADDRESS": "127.0.0.1:9",
        "TWILIO_AUTH_TOKEN": "a-real-token",
        "RALLYCALL_PIN_SECRET": "a-real-pin-secret",
        "RALLYCALL_CONSOLE_SECRET": "a-real-console-secret",
        **variables,
    }
    return subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("command", [["worker.py"], ["-m", "callbacks"], ["-m", "console"]],
                         ids=["worker", "callbacks", "console"])  # fmt: skip
def test_entry_points_refuse_the_real_twilio_without_a_key_of_their_own(command: list[str]) -> None:
    refused = start(command)
    assert refused.returncode == 2, refused.stderr
    assert "RALLYCALL_ENCRYPTION_KEYS is the embedded dev value" in refused.stderr
    assert "python -m codec new-key" in refused.stderr


def test_an_own_key_lets_the_worker_start() -> None:
    started = start(["worker.py"], RALLYCALL_ENCRYPTION_KEYS=new_key("2026"))
    assert "refusing to start" not in started.stderr, "it goes on (and fails to reach Temporal)"


@pytest.fixture
async def codec_url() -> AsyncIterator[str]:
    runner, url = await serve(AesGcmCodec([NEW, OLD]), ui_origins(8233))
    yield url
    await runner.cleanup()


def as_json(*payloads: Payload) -> dict[str, object]:
    return {"payloads": [json_format.MessageToDict(p) for p in payloads]}


def from_json(body: dict[str, list[dict[str, object]]]) -> list[Payload]:
    return [json_format.ParseDict(p, Payload()) for p in body["payloads"]]


async def test_the_codec_server_decodes_for_the_web_ui(codec_url: str) -> None:
    [sealed] = await AesGcmCodec([OLD]).encode([plain("Chloé Rochat")])
    unknown = Payload(metadata={"encoding": ENCODING, KEY_ID: b"lost"}, data=b"\0" * 40)
    unsealed = plain("never encrypted")
    headers = {"Origin": UI, "X-Namespace": "default"}
    async with aiohttp.ClientSession() as http:
        page = as_json(sealed, unknown, unsealed)
        async with http.post(f"{codec_url}/decode", json=page, headers=headers) as resp:
            assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == UI
            assert from_json(await resp.json()) == [plain("Chloé Rochat"), unknown, unsealed], (
                "a payload under a lost key or never sealed comes back as it was; the others are decoded"
            )
        async with http.post(f"{codec_url}/some/prefix/encode", json=as_json(plain("x"))) as resp:
            [encoded] = from_json(await resp.json())
            assert encoded.metadata[KEY_ID] == b"2026" and "Access-Control-Allow-Origin" not in resp.headers
        async with http.post(f"{codec_url}/decode", json=as_json(encoded)) as resp:
            assert from_json(await resp.json()) == [plain("x")], "the CLI (no Origin) is served too"


async def test_the_codec_server_answers_only_the_ui_origins(codec_url: str) -> None:
    preflight = {
        "Origin": "http://127.0.0.1:8233",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
        "Access-Control-Request-Private-Network": "true",
    }
    async with aiohttp.ClientSession() as http:
        async with http.options(f"{codec_url}/decode", headers=preflight) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8233"
            assert "X-Namespace" in resp.headers["Access-Control-Allow-Headers"]
            assert resp.headers["Access-Control-Allow-Private-Network"] == "true"
        elsewhere = {**preflight, "Origin": "https://evil.example"}
        async with http.options(f"{codec_url}/decode", headers=elsewhere) as resp:
            assert resp.status == 403 and "Access-Control-Allow-Origin" not in resp.headers
        async with http.post(
            f"{codec_url}/decode", json=as_json(), headers={"Origin": elsewhere["Origin"]}
        ) as resp:
            assert resp.status == 403
        async with http.post(f"{codec_url}/decode", data=b"{not json", headers={"Origin": UI}) as resp:
            assert resp.status == 400
        async with http.post(f"{codec_url}/decrypt-everything", json=as_json()) as resp:
            assert resp.status == 404
        async with http.get(f"{codec_url}/decode") as resp:
            assert resp.status == 405
