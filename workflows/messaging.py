"""SMS and email from a run: the sms and email media of a scheme, the post-objective message
(the PIN invitation) and the way back after a drop. Messages of one channel due in the same
moment go out together, MESSAGES_PER_BATCH to an activity (a 250-person deadline's 500 PIN
messages are 6 activities, not 500); each keeps its own outcome, and each is on the roster once
sent. SMS stop when the carrier has refused our account; email does not need it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.calls import CarrierActivities, SendSms, SmsBatch, SmsRoute
    from activities.mail import EmailBatch, MailActivities, SendEmail
    from activities.message_batches import MESSAGES_PER_BATCH, MessageOutcome
    from domain.contacts import Contact
    from domain.messages import Outgoing
    from domain.plan import Alert, StepPlan
    from domain.run_view import Channel, Purpose
    from workflows.activity_policies import CARRIER_RETRY, HEARTBEAT, MAIL_RETRY, failure_message, first_names
    from workflows.run_context import RunContext

Queued = tuple[SendSms | SendEmail, asyncio.Future[MessageOutcome], str]
"""A message waiting for its batch: the request, its outcome to come, whom it is for."""


class Messages:
    def __init__(self, run: RunContext) -> None:
        self.run = run
        self.outbox: dict[Channel, list[Queued]] = {}

    async def send_alert(self, step: StepPlan, alert: Alert) -> None:
        """The scheme's sms or email medium: the step's message, rendered at launch. On an
        information step, delivered is reached."""
        text, language = step.text_for(self.run.plan.language_for(alert.contact))
        message = Outgoing(subject=self.run.plan.title, body=text, language=language)
        channel: Channel = "sms" if alert.medium == "sms" else "email"
        sent = await self.send(alert.contact, channel, alert.address or "", message, step, "alert")
        if sent and step.objective == "information":
            self.run.roster.delivered(alert.contact.id, step, workflow.now())
            self.run.publish()

    async def send_post_objective(self, step: StepPlan) -> None:
        """To every destination of the step, reached or not, by SMS and by email (the red
        button's: the dial-in numbers and the PIN)."""
        post = step.post_objective
        if post is None:
            return
        plan = self.run.plan
        sends = []
        for contact_id in step.destinations:
            contact = plan.person(contact_id)
            fields = plan.post_fields(contact)
            version = post.in_language(plan.language_for(contact))
            message = Outgoing(
                subject=version.subject, body=version.body, fields=fields, language=version.language
            )
            if contact.mobile:
                sms = message.model_copy(update={"body": version.sms or version.body})
                sends.append(self.send(contact, "sms", contact.mobile, sms, step, "post_objective"))
            if contact.email:
                sends.append(self.send(contact, "email", contact.email, message, step, "post_objective"))
        await asyncio.gather(*sends)

    async def send(
        self,
        contact: Contact,
        channel: Channel,
        address: str,
        message: Outgoing,
        step: StepPlan,
        purpose: Purpose,
    ) -> bool:
        """One SMS or email, on the roster once sent; False (and a warning) when it was not."""
        if channel == "sms" and self.run.carrier_refused:
            return False
        request: SendSms | SendEmail = (
            SendSms(
                to=address, sender=self.run.plan.dial_in_number, message=message, requested_at=workflow.now()
            )
            if channel == "sms"
            else SendEmail(to=address, message=message)
        )
        try:
            outcome = await self.post(channel, request, contact.name)
        except ActivityError as err:
            workflow.logger.warning("%s to %s failed: %s", channel, contact.id, failure_message(err))
            return False
        if outcome.sent is None:
            workflow.logger.warning("%s to %s refused: %s", channel, contact.id, outcome.error)
            if outcome.error_type == "CarrierMisconfigured":
                self.run.refused_by_carrier(outcome.error or "")
            return False
        self.run.roster.notified(
            contact.id, channel, address, workflow.now(), purpose, step.number, outcome.carrier or ""
        )
        self.run.publish()
        return True

    async def post(self, channel: Channel, request: SendSms | SendEmail, name: str) -> MessageOutcome:
        posted: asyncio.Future[MessageOutcome] = asyncio.get_running_loop().create_future()
        queue = self.outbox.setdefault(channel, [])
        queue.append((request, posted, name))
        if len(queue) == 1:
            self.run.background(self.send_outbox(channel))
        return await posted

    async def send_outbox(self, channel: Channel) -> None:
        await asyncio.sleep(0)  # the other messages of this moment join first
        queue, self.outbox[channel] = self.outbox[channel], []
        await asyncio.gather(
            *(
                self.send_batch(channel, queue[first : first + MESSAGES_PER_BATCH])
                for first in range(0, len(queue), MESSAGES_PER_BATCH)
            )
        )

    def batch_of(self, requests: list[SendSms | SendEmail]) -> SmsBatch | EmailBatch:
        """The activity's input: SMS with the carriers in order (each message goes through the
        first the worker sees working), or emails."""
        texts = [r for r in requests if isinstance(r, SendSms)]
        if not texts:
            return EmailBatch(messages=[r for r in requests if isinstance(r, SendEmail)])
        routes = [SmsRoute(carrier=r.name, sender=r.number) for r in self.run.carriers.routes if r.name]
        return SmsBatch(messages=texts, routes=routes)

    async def send_batch(self, channel: Channel, batch: list[Queued]) -> None:
        names = first_names([name for _, _, name in batch])
        requests = [request for request, _, _ in batch]
        batch_kind = CHANNELS[channel]
        try:
            outcomes: list[MessageOutcome] = await workflow.execute_activity_method(
                batch_kind.activity,
                self.batch_of(requests),
                start_to_close_timeout=batch_kind.one_try,
                schedule_to_close_timeout=batch_kind.at_most,
                heartbeat_timeout=HEARTBEAT,
                retry_policy=batch_kind.retry,
                summary=f"{len(batch)} {batch_kind.noun}: {names}"[:200],
            )
        except ActivityError as err:
            for _, posted, _ in batch:
                posted.set_exception(err)
            return
        for (_, posted, _), outcome in zip(batch, outcomes, strict=True):
            posted.set_result(outcome)


@dataclass(frozen=True)
class BatchKind:
    activity: Any
    """The batch activity's method: `send_sms_batch` or `send_email_batch`."""
    one_try: timedelta
    at_most: timedelta
    retry: RetryPolicy
    noun: str


CHANNELS: dict[Channel, BatchKind] = {
    "sms": BatchKind(
        CarrierActivities.send_sms_batch,
        timedelta(minutes=1),
        timedelta(minutes=10),
        CARRIER_RETRY,
        "SMS",
    ),
    "email": BatchKind(
        MailActivities.send_email_batch,
        timedelta(minutes=2),
        timedelta(minutes=30),
        MAIL_RETRY,
        "email(s)",
    ),
}
"""How each channel's batches go: the activity, one try's time, how long in all, retries."""
