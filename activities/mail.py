"""Email over SMTP with aiosmtplib. The Message-ID is derived from the activity's identity, so a
retry after a crash carries the same ID and mail systems (and our local mailbox) drop the copy."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

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


class SendEmail(BaseModel):
    to: str
    message: Outgoing


def idempotent_message_id() -> str:
    info = activity.info()
    key = f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@rallycall>"


def compose(request: SendEmail, sender: str, message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = request.to
    subject, body = request.message.rendered()
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id
    message.set_content(body, cte="quoted-printable")
    message.add_alternative(email_html(subject, body), subtype="html", cte="quoted-printable")
    return message


class MailActivities:
    def __init__(self, smtp: SmtpSettings) -> None:
        self._smtp = smtp

    @activity.defn
    async def send_email(self, request: SendEmail) -> str:
        """Send one email (text and HTML parts); returns its Message-ID."""
        message_id = idempotent_message_id()
        message = compose(request, self._smtp.sender, message_id)
        try:
            await aiosmtplib.send(
                message,
                hostname=self._smtp.host,
                port=self._smtp.port,
                username=self._smtp.username,
                password=self._smtp.password,
                start_tls=self._smtp.starttls,
                timeout=self._smtp.timeout,
            )
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 535:
                raise ApplicationError(
                    f"SMTP login refused: {exc.message}", type="MailMisconfigured", non_retryable=True
                ) from exc
            if exc.code >= 500:
                raise ApplicationError(
                    f"SMTP server refused the address: {exc.code}", type="MailRejected", non_retryable=True
                ) from None  # the server's words often echo the address, and failures are logged
            raise
        return message_id
