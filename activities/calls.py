"""Calls and SMS through the carrier port. Each returns as soon as the carrier accepts the
request; call progress comes back later as signed callbacks, never by waiting here."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from carrier.port import Carrier, CarrierError, FailureKind, OutboundCall
from domain.messages import Invitation, render

ERROR_TYPES = {
    FailureKind.DESTINATION: "DestinationRejected",
    FailureKind.CONFIGURATION: "CarrierMisconfigured",
    FailureKind.TRANSIENT: "CarrierUnavailable",
}
NON_RETRYABLE = ["DestinationRejected", "CarrierMisconfigured"]


class PlaceCall(BaseModel):
    attempt_id: str
    to: str
    caller_id: str
    welcome: str
    record: bool
    ring_timeout: timedelta
    placed_at: datetime
    """When the workflow decided to call: the lower bound when looking for an earlier try's call."""


class SendSms(BaseModel):
    to: str
    sender: str
    template: str
    """The SMS template source (the other templates are the email's)."""
    invitation: Invitation
    requested_at: datetime


def callback_url(public_url: str, path: str, workflow_id: str, attempt_id: str) -> str:
    """Where the carrier reports on one attempt; the query is covered by the signature."""
    query = urlencode({"conference": workflow_id, "attempt": attempt_id})
    return f"{public_url.rstrip('/')}{path}?{query}"


def as_application_error(exc: CarrierError) -> ApplicationError:
    return ApplicationError(
        str(exc),
        exc.code,
        type=ERROR_TYPES[exc.kind],
        non_retryable=exc.kind is not FailureKind.TRANSIENT,
    )


class CarrierActivities:
    def __init__(self, carrier: Carrier, public_url: str) -> None:
        self._carrier = carrier
        self._public_url = public_url

    @activity.defn
    async def place_call(self, request: PlaceCall) -> str:
        """Dial one destination into the conference room (named after the workflow)."""
        info = activity.info()
        assert info.workflow_id, "calls are placed for a conference workflow"
        call = OutboundCall(
            to=request.to,
            caller_id=request.caller_id,
            room=info.workflow_id,
            welcome=request.welcome,
            record=request.record,
            ring_timeout=request.ring_timeout,
            status_callback=callback_url(
                self._public_url, "/twilio/call-status", info.workflow_id, request.attempt_id
            ),
            machine_callback=callback_url(
                self._public_url, "/twilio/machine-detection", info.workflow_id, request.attempt_id
            ),
        )
        retrying = info.attempt > 1
        try:
            return await self._carrier.place_call(call, placed_since=request.placed_at if retrying else None)
        except CarrierError as exc:
            raise as_application_error(exc) from exc

    @activity.defn
    async def hang_up(self, call_id: str) -> None:
        try:
            await self._carrier.hang_up(call_id)
        except CarrierError as exc:
            raise as_application_error(exc) from exc

    @activity.defn
    async def send_sms(self, request: SendSms) -> str:
        """Text the PIN invitation; a retry first looks for the same text already sent."""
        body = render(request.template, request.invitation.fields())
        retrying = activity.info().attempt > 1
        try:
            return await self._carrier.send_sms(
                request.to,
                request.sender,
                body,
                sent_since=request.requested_at if retrying else None,
            )
        except CarrierError as exc:
            raise as_application_error(exc) from exc
