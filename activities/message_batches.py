"""What SMS and email batches share: one outcome per message, and the progress a try leaves for
the next. A deadline sends every destination its PIN at the same moment; one activity per
message made that thousands of activity tasks (measured: 100 conferences of 10, 2,000
messages, the last one 19 s late), where a batch is one task and, for email, one connection.

Each message is recorded in the try's heartbeat as it starts and as it is settled (the worker
sends a heartbeat within 200 ms). A try that could not send everything fails (a retryable
error); the next try, or one taking over from a dead worker, sends only the rest. For an SMS
that was under way when the previous try stopped (after a dead worker: any not surely unsent),
it looks first; an email goes again with the same Message-ID. In one worker process a try never
sends what an earlier try there sends or sent (`activities.in_flight`).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

MESSAGES_PER_BATCH = 100
"""Messages of one channel in one activity: small enough that a try's heartbeat stays small
and a batch of a 5,000-person step still spreads over the worker's activity slots."""


class MessageOutcome(BaseModel):
    """Sent (the carrier's message ID or the email's Message-ID), or refused for good (why)."""

    sent: str | None = None
    error_type: str | None = None
    """`DestinationRejected` (SMS) or `MailRejected` (email): retrying cannot help."""
    error: str | None = None
    carrier: str | None = None
    """The carrier that sent an SMS (0.2.0)."""


class BatchProgress(BaseModel):
    """Heartbeat details of a batch's try: outcomes settled by its index in the batch, and the
    messages that surely were not sent (a refused connection, a 429): the next try sends those
    at once; any other unsettled one it looks for first."""

    settled: dict[int, MessageOutcome] = Field(default_factory=dict)
    not_sent: list[int] = Field(default_factory=list)
    started: list[int] = Field(default_factory=list)
    """Messages a try began sending: unsettled, the server may have them."""
    carriers: dict[int, str] = Field(default_factory=dict)
    """The carrier each SMS was last begun on: where a next try looks for it."""
    ended: bool = False
    """The try ended by itself (it failed, having recorded everything): its `started` is whole.
    A try whose worker died may have begun messages its last heartbeat did not carry."""

    def begin(self, index: int, carrier: str | None = None) -> None:
        if carrier is not None:
            self.carriers[index] = carrier
        if index not in self.started:
            self.started.append(index)
        if index in self.not_sent:  # what a previous try surely did not send, this one may
            self.not_sent.remove(index)
        activity.heartbeat(self.model_dump(mode="json"))

    def settle(self, index: int, outcome: MessageOutcome) -> None:
        self.settled[index] = outcome
        activity.heartbeat(self.model_dump(mode="json"))


def progress_so_far() -> tuple[BatchProgress, Callable[[int], bool]]:
    """What earlier tries of this activity settled (nothing on the first try), and which
    unsettled messages they may have sent: those they began and did not surely fail to send;
    after a try whose worker died, any they did not surely fail to send."""
    details = activity.info().heartbeat_details
    progress = BatchProgress.model_validate(details[0]) if details else BatchProgress()
    whole, started, not_sent = progress.ended, set(progress.started), set(progress.not_sent)
    progress.ended = False

    def may_have_been_sent(index: int) -> bool:
        if not details or index in not_sent:
            return False
        return index in started or not whole

    return progress, may_have_been_sent


def finish(progress: BatchProgress, count: int, unavailable: str, why: str) -> list[MessageOutcome]:
    """The outcomes in order once every message is settled; else remember them and fail, to be
    tried again (`unavailable` is the retryable error type)."""
    missing = count - len(progress.settled)
    if missing:
        progress.ended = True
        activity.heartbeat(progress.model_dump(mode="json"))
        raise ApplicationError(f"{missing} of {count} messages not sent yet: {why}", type=unavailable)
    return [progress.settled[index] for index in range(count)]
