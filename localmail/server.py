"""aiosmtpd on loopback, storing each message as `<hash of Message-ID>.eml` in a folder.

A retried send carries the same Message-ID (see `activities.mail`), so it lands on the same
file; `deliveries` still counts every DATA received, for tests that check exactly-once.
"""

from __future__ import annotations

import hashlib
import logging
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from stack.ports import free_port

log = logging.getLogger("rallycall.mailbox")
logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every recipient's address at INFO


class MailboxHandler:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.deliveries = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.deliveries += 1
        content = envelope.original_content or b""
        parsed = message_from_bytes(content, policy=policy.default)
        key = str(parsed.get("Message-ID") or self.deliveries)
        path = self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.eml"
        if path.exists():
            log.warning("duplicate delivery of %s dropped", key)
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        return "250 Message accepted for delivery"


class Mailbox:
    """Start with `start()`, stop with `stop()`; `port` is known once started."""

    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = MailboxHandler(folder)
        self.folder = folder
        self._controller = Controller(self.handler, hostname=host, port=port or free_port(host))

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def messages(self) -> list[EmailMessage]:
        """Stored messages, oldest first."""
        files = sorted(self.folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
        return [read_eml(p) for p in files]


def read_eml(path: Path) -> EmailMessage:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message
