"""Email over SMTP with aiosmtplib. The Message-ID is derived from the activity's identity and a
message's place in its batch, so the one email a worker's death can leave in doubt goes again
with the same ID (some mail systems then drop the copy; a recipient whose system does not sees
it twice, and the chaos drill counts it so)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, parseaddr
from functools import lru_cache, partial
from typing import Any

import aiosmtplib
from pydantic import BaseModel
from temporalio import activity

from activities.heartbeats import heartbeating
from activities.in_flight import InFlight
from activities.message_batches import BatchProgress, MessageOutcome, finish, progress_so_far
from domain.messages import Outgoing, email_html


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 20.0

    def connection(self) -> dict[str, Any]:
        """How aiosmtplib reaches the server, for one message or a connection kept for many."""
        return {
            "hostname": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "start_tls": self.starttls,
            "timeout": self.timeout,
        }


class SendEmail(BaseModel):
    to: str
    message: Outgoing


MAIL_CONNECTIONS = 4
"""Connections one batch sends over at once: SMTP sends one message at a time per connection."""


class EmailBatch(BaseModel):
    messages: list[SendEmail]


def idempotent_message_id(index: int | None = None) -> str:
    info = activity.info()
    key = f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"
    if index is not None:
        key += f"/{index}"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@rallycall>"


@dataclass(frozen=True)
class Composed:
    sender: str
    """The envelope's (the bare address of the From header)."""
    to: str
    data: bytes | EmailMessage


def composed(request: SendEmail, sender: str, message_id: str) -> Composed:
    """The message as the server gets it. Its content (both parts, encoded) is built once per
    text and only the four headers that differ are written per recipient: built whole for each
    of 50,000 residents, composing was most of a worker's time. A non-ASCII address takes the
    slow path (the library's SMTPUTF8 handling)."""
    envelope = parseaddr(sender)[1] or sender
    if not (sender.isascii() and request.to.isascii()):
        return Composed(envelope, request.to, compose(request, sender, message_id))
    subject, body = request.message.rendered()
    shared, content = _content(subject, body, request.message.language)
    own = [
        f"From: {sender}",
        f"To: {request.to}",
        f"Date: {formatdate(usegmt=True)}",
        f"Message-ID: {message_id}",
    ]
    return Composed(envelope, request.to, "\r\n".join([*own, ""]).encode() + shared + b"\r\n\r\n" + content)


@lru_cache(maxsize=32)
def _content(subject: str, body: str, language: str) -> tuple[bytes, bytes]:
    """The headers that are the same for every recipient of this text, and the MIME content."""
    head, _, content = _message(subject, body, language).as_bytes(policy=SMTP).partition(b"\r\n\r\n")
    return head, content


def compose(request: SendEmail, sender: str, message_id: str) -> EmailMessage:
    """The whole message, for an address `composed` leaves to the library (SMTPUTF8)."""
    subject, body = request.message.rendered()
    message = _message(subject, body, request.message.language)
    message["From"] = sender
    message["To"] = request.to
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id
    return message


def _message(subject: str, body: str, language: str) -> EmailMessage:
    """The text as plain and as HTML alternatives, under its subject, saying its language
    (RFC 3282) so a mail client can read it aloud or offer to translate it rightly."""
    message = EmailMessage()
    message["Subject"] = subject
    message.set_content(body, cte="quoted-printable")
    message.add_alternative(email_html(subject, body, language), subtype="html", cte="quoted-printable")
    if language:  # after the content: setting it clears the Content- headers
        message["Content-Language"] = language
    return message


class MailActivities:
    def __init__(self, smtp: SmtpSettings) -> None:
        self._smtp = smtp
        self._in_flight = InFlight()

    @activity.defn
    async def send_email_batch(self, batch: EmailBatch) -> list[MessageOutcome]:
        """Send the messages over MAIL_CONNECTIONS connections at once. An address refused for
        good is an outcome; a login refused settles them all; a server that is down, or drops
        a connection, fails the try, and the next sends the rest (a message under way when the
        try stopped goes again, with the same Message-ID)."""
        progress, _ = progress_so_far()  # a message that may have gone keeps its Message-ID
        pending = [i for i in range(len(batch.messages)) if i not in progress.settled]
        problems: list[str] = []
        lanes = [pending[lane::MAIL_CONNECTIONS] for lane in range(MAIL_CONNECTIONS)]
        async with heartbeating(lambda: progress.model_dump(mode="json")):
            await asyncio.gather(
                *(self._send_over_one_connection(batch, lane, progress, problems) for lane in lanes)
            )
        return finish(progress, len(batch.messages), "MailUnavailable", problems[0] if problems else "")

    async def _send_over_one_connection(
        self, batch: EmailBatch, indexes: list[int], progress: BatchProgress, problems: list[str]
    ) -> None:
        """These messages one after another; what could not be sent stays unsettled (and why)."""
        if not indexes:
            return
        smtp = aiosmtplib.SMTP(**self._smtp.connection())
        try:
            await smtp.connect()
            for index in indexes:
                message_id = idempotent_message_id(index)
                message = composed(batch.messages[index], self._smtp.sender, message_id)
                progress.begin(index)
                sending = partial(refused_for_good, smtp, message)
                try:
                    refused = await self._in_flight.once(f"mail{index}", sending)
                except asyncio.CancelledError:  # the message under way ends before its connection
                    await self._in_flight.once(f"mail{index}", sending)
                    raise
                progress.settle(
                    index,
                    MessageOutcome(error_type="MailRejected", error=refused)
                    if refused
                    else MessageOutcome(sent=message_id),
                )
        except aiosmtplib.SMTPAuthenticationError as exc:
            refusal = MessageOutcome(
                error_type="MailMisconfigured", error=f"SMTP login refused: {exc.message}"
            )
            for index in indexes:
                progress.settled.setdefault(index, refusal)
        except (aiosmtplib.SMTPException, OSError) as exc:
            problems.append(f"the mail server failed: {exc}")
        finally:
            if smtp.is_connected:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                    await smtp.quit()


async def refused_for_good(smtp: aiosmtplib.SMTP, message: Composed) -> str | None:
    """Send one message: None when accepted, why when the server refused it for good (a 5xx);
    a 4xx or a broken connection is raised, to be tried again."""
    try:
        if isinstance(message.data, EmailMessage):
            await smtp.send_message(message.data)
        else:
            await smtp.sendmail(message.sender, [message.to], message.data)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [refusal.code for refusal in exc.recipients]
        if all(code >= 500 for code in codes):
            return f"SMTP server refused the address: {codes[0]}"  # its words often echo the address
        raise
    except aiosmtplib.SMTPResponseException as exc:
        if exc.code >= 500:
            return f"SMTP server refused the message: {exc.code}"
        raise
    return None
