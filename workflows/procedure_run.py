"""One launch of a procedure, step by step, on durable workflow timers. The red button's
conference call is the one-step procedure `conference-call` with the CONFCALL scheme:

    t=0        call everyone on their work phone (answered calls join the bridge)
    t=+1 min   call the home phone of whoever is not in yet
    t=+2 min   the step's deadline: everyone gets the dial-in number and PIN by SMS and email
    then       the bridge stays open for dial-ins until `end` or the maximum duration

Each step alerts its destinations by their scheme until its objective is reached or its
deadline passes, then sends its post-objective message; the next step runs always, or only if
this one fell short. Carrier callbacks arrive as signals (`call_progress`, `bridge_event`,
`acknowledged`); dial-ins with a PIN as the `rejoin` update. No I/O and no clock here but
Temporal's.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.calls import NON_RETRYABLE, CarrierActivities, PlaceCall, SendSms
    from activities.mail import MailActivities, SendEmail
    from domain.conference import (
        Acknowledgement,
        BridgeUpdate,
        CallProgress,
        Channel,
        ConferenceInput,
        ConferenceReport,
        EndRequest,
        Purpose,
        RecordingReady,
        RejoinRequest,
        RejoinResult,
    )
    from domain.contacts import Contact
    from domain.messages import Outgoing
    from domain.plan import VOICE_MEDIA, Alert, Medium, StepPlan, VoiceMedium
    from domain.roster import MEDIUM_LABELS, Roster
    from workflows import search_attributes as sa
    from workflows.pin_lease import PinLease

CARRIER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=NON_RETRYABLE,
)
LATE_ANSWERS = timedelta(minutes=10)
"""A run without a bridge stays this long after its last step, to record late answers."""
RECORDING_GRACE = timedelta(minutes=5)
"""How long an ended conference waits for the carrier to report its recording."""
MAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(seconds=60),
    non_retryable_error_types=["MailRejected", "MailMisconfigured"],
)


@workflow.defn
class ProcedureRun:
    @workflow.init
    def __init__(self, conference: ConferenceInput) -> None:
        self.conference = conference
        self.roster = Roster(conference, workflow.info().workflow_id, workflow.now())
        self.end_request: EndRequest | None = None
        self.carrier_refused = False
        self.indexed: tuple[str, int, int] | None = None
        self.in_flight: list[asyncio.Task[None]] = []
        """Alert rounds and post-objective messages run as tasks, so the timeline (and the next
        step) never waits for a slow carrier or mail server; kept here so they live on."""

    @workflow.run
    async def run(self, conference: ConferenceInput) -> ConferenceReport:
        self.publish()
        previous_reached: bool | None = None
        for step in conference.steps:
            if self.end_request is not None:
                break
            if step.run == "if_previous_not_reached" and previous_reached:
                self.roster.step_skipped(step)
                continue
            previous_reached = await self.run_step(step)
        if conference.pin is not None:
            await self.wait_until(self.roster.started_at + conference.max_duration, "bridge open until ended")
        else:
            await self.wait_until(workflow.now() + LATE_ANSWERS, "record answers that come too late")
        await self.close_bridge()
        return self.roster.report()  # rounds or messages still retrying are moot: not awaited

    async def run_step(self, step: StepPlan) -> bool:
        """Alert by the schemes until the objective is reached or the deadline passes, then
        send the post-objective message. Returns whether the objective was reached."""
        started = workflow.now()
        self.roster.step_started(step, started)
        self.publish()
        for after, alerts in step.rounds():
            if after >= step.deadline:
                break
            await self.wait_until(started + after, f"step {step.number}: next alerts", step)
            if self.end_request is not None or self.roster.objective_met(step):
                break
            self.in_flight.append(asyncio.create_task(self.alert_everyone_not_yet_reached(step, alerts)))
        await self.wait_until(started + step.deadline, f"step {step.number}: deadline", step)
        reached = self.roster.step_ended(step, workflow.now())
        self.publish()
        if step.post_objective and self.end_request is None:
            self.in_flight.append(asyncio.create_task(self.send_post_objective_message(step)))
        return reached

    async def wait_until(self, moment: datetime, summary: str, step: StepPlan | None = None) -> None:
        """Wait for `moment`, the end of the run, or the step's objective, whichever comes first."""

        def done() -> bool:
            return self.end_request is not None or (step is not None and self.roster.objective_met(step))

        remaining = moment - workflow.now()
        if remaining > timedelta(0) and not done():
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(done, timeout=remaining, timeout_summary=summary)

    async def alert_everyone_not_yet_reached(self, step: StepPlan, alerts: list[Alert]) -> None:
        """One round of the scheme: calls paced to the carrier's calls per second, messages at once."""
        due = self.roster.due(step, alerts)
        calls = [(c, m, n) for c, m, n in due if m in VOICE_MEDIA]
        rate = self.conference.calls_per_second
        await asyncio.gather(
            *(
                self.call(step, contact, medium, number, after=timedelta(seconds=math.floor(n / rate)))
                for n, (contact, medium, number) in enumerate(calls)
            ),
            *(
                self.send_alert(step, contact, medium, address)
                for contact, medium, address in due
                if medium not in VOICE_MEDIA
            ),
        )

    async def call(
        self, step: StepPlan, contact: Contact, medium: VoiceMedium, number: str, after: timedelta
    ) -> None:
        """Place one call, `after` the start of its round: at most the carrier's calls per second
        start in any one second."""
        if after:
            await workflow.sleep(after, summary="pace calls to the carrier's calls per second")
        if self.end_request is not None or self.carrier_refused:
            return
        attempt = self.roster.attempt_placed(step, contact, medium, number, workflow.now())
        self.publish()
        request = PlaceCall(
            attempt_id=attempt.attempt_id,
            to=number,
            caller_id=self.conference.dial_in_number,
            objective=step.objective,
            message=step.message,
            record=self.conference.record,
            ring_timeout=step.ring_timeout,
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

    async def send_alert(self, step: StepPlan, contact: Contact, medium: Medium, address: str) -> None:
        """The scheme's sms or email medium: the step's message, rendered at launch."""
        message = Outgoing(subject=self.conference.title, body=step.message)
        sent = await self.send(
            contact, "sms" if medium == "sms" else "email", address, message, step, "alert"
        )
        if sent and step.objective == "information":
            self.roster.delivered(contact.id, step, workflow.now())
            self.publish()

    def notice_carrier_refusal(self, err: ActivityError) -> None:
        """Credentials or caller ID refused: no call or SMS can work until someone fixes them,
        so the scheme stops using the carrier (email still goes out) and says so loudly."""
        if isinstance(err.cause, ApplicationError) and err.cause.type == "CarrierMisconfigured":
            self.carrier_refused = True
            self.roster.problem(f"the carrier refused our configuration: {err.cause.message}")

    async def send_post_objective_message(self, step: StepPlan) -> None:
        """To every destination of the step, reached or not: by SMS and by email."""
        post = step.post_objective
        assert post is not None
        sends = []
        for contact_id in step.destinations:
            contact = self.conference.contact(contact_id)
            fields = {**self.conference.fields, "Contact": {"Id": contact.id, "Name": contact.name}}
            message = Outgoing(subject=post.subject, body=post.body, fields=fields)
            if contact.mobile:
                sms = message.model_copy(update={"body": post.sms or post.body})
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
        """One SMS or email, recorded in the roster once sent. SMS stop when the carrier has
        refused our configuration; email does not need it."""
        if channel == "sms" and self.carrier_refused:
            return False
        what = "message" if purpose == "alert" else "post-objective message"
        try:
            if channel == "sms":
                await workflow.execute_activity_method(
                    CarrierActivities.send_sms,
                    SendSms(
                        to=address,
                        sender=self.conference.dial_in_number,
                        message=message,
                        requested_at=workflow.now(),
                    ),
                    start_to_close_timeout=timedelta(seconds=20),
                    schedule_to_close_timeout=timedelta(minutes=10),
                    retry_policy=CARRIER_RETRY,
                    summary=f"SMS {what} to {contact.name}",
                )
            else:
                await workflow.execute_activity_method(
                    MailActivities.send_email,
                    SendEmail(to=address, message=message),
                    start_to_close_timeout=timedelta(seconds=30),
                    schedule_to_close_timeout=timedelta(minutes=30),
                    retry_policy=MAIL_RETRY,
                    summary=f"email {what} to {contact.name}",
                )
        except ActivityError as err:
            workflow.logger.warning("%s to %s failed: %s", channel, contact.id, failure_message(err))
            self.notice_carrier_refusal(err)
            return False
        self.roster.notified(contact.id, channel, address, workflow.now(), purpose, step.number)
        self.publish()
        return True

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
        lease = self.conference.pin_lease_id
        if lease is not None:
            try:
                await workflow.get_external_workflow_handle(lease).signal(PinLease.release)
            except ApplicationError:
                workflow.logger.warning("PIN lease %s was already gone", lease)
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
    def acknowledged(self, event: Acknowledgement) -> None:
        """Someone pressed 1 on an acknowledgement call."""
        self.roster.acknowledged(event, workflow.now())
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
        if self.conference.pin is None:
            raise ValueError("this procedure has no conference to join")
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
