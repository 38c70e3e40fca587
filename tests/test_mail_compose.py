"""An email as the mail server gets it: the fast path (content built once per text, four
headers per recipient) says what the library's whole message says, and an address the fast
path cannot write (non-ASCII) goes the library's way."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP

from activities.mail import SendEmail, compose, composed
from domain.messages import Outgoing

SENDER = "rallycall <alerts@example.com>"
TEXT = Outgoing(
    subject="Coupure d'eau à Lausanne: quartier de l'Ouest, ce soir", body="Coupure 22:00-23:00.\nÉtape 2."
)


def test_the_fast_path_writes_what_the_library_writes() -> None:
    request = SendEmail(to="anna@example.com", message=TEXT)
    fast = composed(request, SENDER, "<id1@rallycall>")
    assert (fast.sender, fast.to) == ("alerts@example.com", "anna@example.com") and isinstance(
        fast.data, bytes
    )
    ours = message_from_bytes(fast.data, policy=SMTP)
    theirs = message_from_bytes(
        compose(request, SENDER, "<id1@rallycall>").as_bytes(policy=SMTP), policy=SMTP
    )
    for header in ("From", "To", "Subject", "Message-ID", "MIME-Version"):
        assert str(ours[header]) == str(theirs[header]), header
    assert [p.get_content() for p in ours.iter_parts()] == [p.get_content() for p in theirs.iter_parts()]
    assert [p.get_content_type() for p in ours.iter_parts()] == ["text/plain", "text/html"]


def test_each_recipient_gets_its_own_headers_around_the_same_content() -> None:
    first = composed(SendEmail(to="anna@example.com", message=TEXT), SENDER, "<id1@rallycall>")
    second = composed(SendEmail(to="bruno@example.com", message=TEXT), SENDER, "<id2@rallycall>")
    a, b = (message_from_bytes(m.data, policy=SMTP) for m in (first, second) if isinstance(m.data, bytes))
    assert (a["To"], a["Message-ID"], b["To"], b["Message-ID"]) == (
        "anna@example.com", "<id1@rallycall>", "bruno@example.com", "<id2@rallycall>",
    )  # fmt: skip
    texts = [m.get_body(("plain",)) for m in (a, b)]
    assert None not in texts and len({t.get_content() for t in texts if t is not None}) == 1


def test_a_non_ascii_address_goes_the_librarys_way() -> None:
    message = composed(SendEmail(to="zoé@exemple.ch", message=TEXT), SENDER, "<id3@rallycall>")
    assert isinstance(message.data, EmailMessage) and message.data["To"] == "zoé@exemple.ch"
