"""AES-256-GCM over whole payloads, so Temporal stores ciphertext only: the PIN, numbers, names
and emails of a run, and even which type a payload holds.

Each encrypted payload names its key in clear (`encryption-key-id`), so keys can rotate: the
first key encrypts, every listed key decrypts. What a payload holds is bound to how it is
labelled: the key ID is the cipher's associated data (relabelled, it does not open), the inner
payload's own encoding and metadata are inside the ciphertext, and only the one outer encoding
this codec writes is ever opened.

A payload this codec did not seal is refused: whoever can write to Temporal without the key
could otherwise send a run a forged `end`, `rejoin` or bridge event. Temporal's own constants
pass: the server writes a few payloads itself, in clear, such as `"ACTIVITY_ID_NOT_STARTED"` in
the failure of an activity cancelled before it started (a call withdrawn before its turn); a
bare constant cannot pass for any of our signals' or updates' arguments, which are objects.
For a refused payload the SDK gets an inert one, which its converter cannot read, so a forged
signal is dropped and a forged update rejected while the run goes on (raising here would fail
the run's workflow task over and over). `accept_unsealed` lets histories written before
encryption be read; it is off unless RALLYCALL_ACCEPT_UNSEALED_PAYLOADS says otherwise.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

log = logging.getLogger("rallycall.codec")

ENCODING = b"binary/encrypted"
REFUSED = b"binary/refused-unsealed"
"""The encoding of what stands in for a refused payload: no converter reads it."""
KEY_ID = "encryption-key-id"
KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
SERVER_CONSTANT = re.compile(rb'"[A-Z][A-Z0-9_]{0,63}"')
"""What the server itself writes in clear: a JSON string of one upper-case name."""


class BadKeys(ValueError):
    """A key list that cannot be used; the message never contains key material."""


class UndecryptablePayload(ValueError):
    """A payload encrypted with a key we do not hold, or altered since it was encrypted."""


class UnsealedPayload(UndecryptablePayload):
    """A payload this codec did not seal (clear text, or an encoding it does not write)."""


@dataclass(frozen=True, repr=False)
class EncryptionKey:
    key_id: str
    secret: bytes

    def __repr__(self) -> str:  # keys end up in tracebacks and debuggers: never show the secret
        return f"EncryptionKey({self.key_id!r})"


def parse_keys(text: str) -> tuple[EncryptionKey, ...]:
    """`kid1:base64key,kid2:base64key` (the first encrypts) into keys; raises BadKeys naming
    the entry that is wrong and what was expected."""
    keys: list[EncryptionKey] = []
    for position, entry in enumerate((e.strip() for e in text.split(",") if e.strip()), start=1):
        key_id, colon, encoded = entry.partition(":")
        if not colon or not KEY_ID_PATTERN.fullmatch(key_id):
            raise BadKeys(
                f"key {position}: expected ID:BASE64KEY with an ID of letters, digits, '.', '_' or '-'"
            )
        try:
            secret = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise BadKeys(f"key {key_id!r}: not valid base64") from None
        if len(secret) != KEY_BYTES:
            raise BadKeys(f"key {key_id!r}: {len(secret)} bytes, expected {KEY_BYTES} (AES-256)")
        if any(k.key_id == key_id for k in keys):
            raise BadKeys(f"key {key_id!r} is listed twice")
        keys.append(EncryptionKey(key_id, secret))
    if not keys:
        raise BadKeys("no key: expected ID:BASE64KEY[,ID:BASE64KEY...]")
    return tuple(keys)


def new_key(key_id: str) -> str:
    """A fresh random key in the form `parse_keys` reads."""
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise BadKeys(f"key ID {key_id!r}: use letters, digits, '.', '_' or '-'")
    return f"{key_id}:{base64.b64encode(os.urandom(KEY_BYTES)).decode()}"


def server_constant(payload: Payload) -> bool:
    plain_json = dict(payload.metadata) == {"encoding": b"json/plain"}
    return plain_json and SERVER_CONSTANT.fullmatch(payload.data) is not None


class AesGcmCodec(PayloadCodec):
    """Encrypts every payload with the first key; decrypts with whichever key a payload names."""

    def __init__(self, keys: Sequence[EncryptionKey], accept_unsealed: bool = False) -> None:
        if not keys:
            raise BadKeys("no key to encrypt with")
        self._current = keys[0].key_id
        self._ciphers = {key.key_id: AESGCM(key.secret) for key in keys}
        self._accept_unsealed = accept_unsealed

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._open(payload) for payload in payloads]

    def _open(self, payload: Payload) -> Payload:
        try:
            return self.decrypt(payload)
        except UnsealedPayload as exc:
            log.warning("refused: %s", exc)
            return Payload(metadata={"encoding": REFUSED})

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        key_id = self._current.encode()
        sealed = self._ciphers[self._current].encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        """The payload as it was before `encrypt`; raises UnsealedPayload for one it did not
        seal (unless unsealed payloads are accepted), UndecryptablePayload for a wrong key."""
        encoding = payload.metadata.get("encoding", b"")
        if encoding != ENCODING:
            if self._accept_unsealed or server_constant(payload):
                return payload
            raise UnsealedPayload(
                f"a payload that was not encrypted (encoding {encoding.decode(errors='replace')!r}): "
                "forged, or written before encryption (RALLYCALL_ACCEPT_UNSEALED_PAYLOADS)"
            )
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UndecryptablePayload(
                f"payload encrypted with key {key_id!r}, which is not among the configured keys"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            return Payload.FromString(cipher.decrypt(nonce, sealed, key_id.encode()))
        except InvalidTag:
            raise UndecryptablePayload(f"payload under key {key_id!r} was altered or is corrupt") from None
