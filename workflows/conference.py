"""One conference call, following the alert scheme's timeline on durable workflow timers.

    t=0        call everyone on their work phone (answered calls join the bridge)
    t=+1 min   call the home phone of whoever is not in yet
    t=+2 min   send everyone the dial-in number and PIN by SMS and email
    then       the bridge stays open for dial-ins until `end` or the maximum duration

Carrier callbacks arrive as the `call_progress` signal; dial-ins with a PIN as the `rejoin`
update. No I/O and no clock here but Temporal's.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.calls import NON_RETRYABLE, CarrierActivities, PlaceCall, SendSms
    from activities.mail import MailActivities, SendEmail
    from domain.conference import (
        BridgeUpdate,
        CallProgress,
        ConferenceInput,
        ConferenceReport,
        EndRequest,
        RecordingReady,
        RejoinRequest,
        RejoinResult,
    )
    from domain.contacts import Contact
    from domain.messages import Invitation
    from domain.roster import MEDIUM_LABELS, Roster
    from domain.scheme import VoiceMedium
    from workflows import search_attributes as sa
    from workflows.pin_lease import PinLease

CARRIER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=NON_RETRYABLE,
)
RECORDING_GRACE = timedelta(minutes=5)
"""How long an ended conference waits for the carrier to report its recording."""
MAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(seconds=60),
    non_retryable_error_types=["MailRejected", "MailMisconfigured"],
)


@workflow.defn
class ConferenceCall:
    @workflow.init
    def __init__(self, conference: ConferenceInput) -> None:
        self.conference = conference
        self.roster = Roster(conference, workflow.info().workflow_id, workflow.now())
        self.end_request: EndRequest | None = None
        self.carrier_refused = False
        self.indexed: tuple[str, int, int] | None = None

    @workflow.run
    async def run(self, conference: ConferenceInput) -> ConferenceReport:
        self.publish()
        for step in conference.scheme.steps:
            if not await self.running_at(step.after, f"until {MEDIUM_LABELS[step.medium]} calls"):
                break
            await self.call_everyone_not_yet_reached(step.medium)
        if await self.running_at(conference.scheme.invitation_after, "until PIN invitations"):
            await self.send_pin_invitations()
        await self.running_at(conference.max_duration, "bridge open until ended")
        await self.close_bridge()
        return self.roster.report()

    async def running_at(self, moment: timedelta, summary: str) -> bool:
        """Wait until `moment` after launch; False if the conference was ended before."""
        remaining = self.roster.started_at + moment - workflow.now()
        if remaining > timedelta(0) and self.end_request is None:
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(
                    lambda: self.end_request is not None, timeout=remaining, timeout_summary=summary
                )
        return self.end_request is None

    async def call_everyone_not_yet_reached(self, medium: VoiceMedium) -> None:
        if self.carrier_refused:
            return
        targets = self.roster.not_yet_reached(medium)
        rate = self.conference.calls_per_second
        await asyncio.gather(
            *(
                self.call(contact, medium, number, after=timedelta(seconds=math.floor(n / rate)))
                for n, (contact, number) in enumerate(targets)
            )
        )

    async def call(self, contact: Contact, medium: VoiceMedium, number: str, after: timedelta) -> None:
        """Place one call, `after` the start of its round: at most the carrier's calls per second
        start in any one second."""
        if after:
            await workflow.sleep(after, summary="pace calls to the carrier's calls per second")
        if self.end_request is not None or self.carrier_refused:
            return
        attempt = self.roster.attempt_placed(contact, medium, number, workflow.now())
        self.publish()
        request = PlaceCall(
            attempt_id=attempt.attempt_id,
            to=number,
            caller_id=self.conference.dial_in_number,
            welcome=self.conference.welcome,
            record=self.conference.record,
            ring_timeout=self.conference.scheme.ring_timeout,
            placed_at=attempt.placed_at,
        )
        try:
            call_sid = await workflow.execute_activity_method(
                CarrierActivities.place_call,
                request,
                start_to_close_timeout=timedelta(seconds=20),
                schedule_to_close_timeout=timedelta(minutes=15),
                retry_policy=CARRIER_RETRY,
                summary=f"call {contact.name} on {MEDIUM_LABELS[medium]}",
            )
            self.roster.call_created(attempt, call_sid, workflow.now())
        except ActivityError as err:
            self.roster.attempt_failed(attempt, failure_message(err), workflow.now())
            self.notice_carrier_refusal(err)
        self.publish()

    def notice_carrier_refusal(self, err: ActivityError) -> None:
        """Credentials or caller ID refused: no call or SMS can work until someone fixes them,
        so the scheme stops using the carrier (email still goes out) and says so loudly."""
        if isinstance(err.cause, ApplicationError) and err.cause.type == "CarrierMisconfigured":
            self.carrier_refused = True
            self.roster.problem(f"the carrier refused our configuration: {err.cause.message}")

    async def send_pin_invitations(self) -> None:
        """Everyone, reached or not, gets the dial-in number and PIN to come (back) in."""
        sends = []
        for contact in self.conference.participants:
            if contact.mobile and not self.carrier_refused:
                sends.append(self.send_sms(contact, contact.mobile))
            if contact.email:
                sends.append(self.send_email(contact, contact.email))
        await asyncio.gather(*sends)

    async def send_sms(self, contact: Contact, mobile: str) -> None:
        request = SendSms(
            to=mobile,
            sender=self.conference.dial_in_number,
            template=self.conference.templates.sms,
            invitation=self.invitation(contact),
            requested_at=workflow.now(),
        )
        try:
            await workflow.execute_activity_method(
                CarrierActivities.send_sms,
                request,
                start_to_close_timeout=timedelta(seconds=20),
                schedule_to_close_timeout=timedelta(minutes=10),
                retry_policy=CARRIER_RETRY,
                summary=f"SMS PIN to {contact.name}",
            )
        except ActivityError as err:
            workflow.logger.warning("SMS to %s failed: %s", contact.id, failure_message(err))
            self.notice_carrier_refusal(err)
            return
        self.roster.notified(contact.id, "sms", mobile, workflow.now())
        self.publish()

    async def send_email(self, contact: Contact, email: str) -> None:
        request = SendEmail(
            to=email, templates=self.conference.templates, invitation=self.invitation(contact)
        )
        try:
            await workflow.execute_activity_method(
                MailActivities.send_email,
                request,
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=timedelta(minutes=30),
                retry_policy=MAIL_RETRY,
                summary=f"email PIN to {contact.name}",
            )
        except ActivityError as err:
            workflow.logger.warning("email to %s failed: %s", contact.id, failure_message(err))
            return
        self.roster.notified(contact.id, "email", email, workflow.now())
        self.publish()

    async def close_bridge(self) -> None:
        """End the room at the carrier (everyone still on is disconnected), stop phones still
        ringing, release the PIN, and let handlers in flight finish."""
        reason = self.end_request.reason if self.end_request else "maximum duration reached"
        room, live, ringing = (
            self.roster.conference_sid,
            self.roster.connected_calls(),
            self.roster.ringing_calls(),
        )
        self.roster.end(workflow.now(), reason)
        self.publish()
        if room is None or not await self.end_conference(room):
            ringing += live
        await asyncio.gather(*(self.hang_up(call_id) for call_id in ringing))
        if self.conference.record and room is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(
                    lambda: self.roster.recording_url is not None,
                    timeout=RECORDING_GRACE,
                    timeout_summary="wait for the recording",
                )
        try:
            await workflow.get_external_workflow_handle(self.conference.pin_lease_id).signal(PinLease.release)
        except ApplicationError:
            workflow.logger.warning("PIN lease %s was already gone", self.conference.pin_lease_id)
        await workflow.wait_condition(workflow.all_handlers_finished)

    async def end_conference(self, conference_sid: str) -> bool:
        return await self.carrier_cleanup(CarrierActivities.end_conference, conference_sid, "end the bridge")

    async def hang_up(self, call_id: str) -> bool:
        return await self.carrier_cleanup(CarrierActivities.hang_up, call_id, "hang up")

    async def carrier_cleanup(
        self, step: Callable[[Any, str], Awaitable[None]], sid: str, summary: str
    ) -> bool:
        """Hang-ups and room ends are tried for two minutes, then given up on without failing
        the conference: whether they worked is the carrier's callbacks' to tell."""
        try:
            await workflow.execute_activity_method(
                step,
                sid,
                start_to_close_timeout=timedelta(seconds=20),
                schedule_to_close_timeout=timedelta(minutes=2),
                retry_policy=CARRIER_RETRY,
                summary=summary,
            )
        except ActivityError as err:
            workflow.logger.warning("%s %s failed: %s", summary, sid, failure_message(err))
            return False
        return True

    def invitation(self, contact: Contact) -> Invitation:
        return Invitation(
            body=self.conference.welcome,
            dial_in_number=self.conference.dial_in_number,
            pin=self.conference.pin,
            contact_id=contact.id,
            contact_name=contact.name,
        )

    def publish(self) -> None:
        """Show the roster in the Web UI: current details and filterable search attributes."""
        workflow.set_current_details(self.roster.markdown())
        state = "ended" if self.roster.ended_at else "running"
        indexed = (state, len(self.roster.participants), self.roster.in_conference())
        if indexed != self.indexed:
            self.indexed = indexed
            workflow.upsert_search_attributes(
                [
                    sa.STATE.value_set(indexed[0]),
                    sa.PARTICIPANTS.value_set(indexed[1]),
                    sa.IN_CONFERENCE.value_set(indexed[2]),
                ]
            )

    @workflow.signal
    async def call_progress(self, event: CallProgress) -> None:
        """A carrier status callback, relayed by the callback server."""
        unwanted_call = self.roster.call_progress(event, workflow.now())
        self.publish()
        if unwanted_call:
            await self.hang_up(unwanted_call)

    @workflow.signal
    def bridge_event(self, event: BridgeUpdate) -> None:
        """The conference room's own callbacks: who is really in the bridge."""
        self.roster.bridge_event(event, workflow.now())
        self.publish()

    @workflow.signal
    def recording_ready(self, recording: RecordingReady) -> None:
        self.roster.recording_ready(recording.url)
        self.publish()

    @workflow.update
    def rejoin(self, request: RejoinRequest) -> RejoinResult:
        """Someone dialled in and keyed a PIN; every attempt is recorded, right or wrong."""
        result = self.roster.rejoin(request, workflow.now())
        self.publish()
        return result

    @rejoin.validator
    def validate_rejoin(self, request: RejoinRequest) -> None:
        if self.end_request is not None or self.roster.ended_at is not None:
            raise ValueError("this conference has ended")

    @workflow.update
    def end(self, request: EndRequest) -> None:
        self.end_request = request

    @end.validator
    def validate_end(self, request: EndRequest) -> None:
        if self.end_request is not None:
            raise ValueError("this conference is already ending")

    @workflow.query(name="roster")
    def current_roster(self) -> ConferenceReport:
        return self.roster.report()


def failure_message(err: ActivityError) -> str:
    cause = err.cause
    return str(cause.message if isinstance(cause, ApplicationError) else cause or err)
