"""Calls and SMS through the carrier port. Each returns as soon as the carrier accepts the
request; call progress comes back later as signed callbacks, never by waiting here."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.heartbeats import heartbeating
from activities.in_flight import InFlight
from activities.message_batches import (
    BatchProgress,
    MessageOutcome,
    finish,
    progress_so_far,
)
from callbacks import urls
from callbacks.urls import bridge_for, callback_url
from carrier.accounts import Carriers
from carrier.port import Carrier, CarrierError, FailureKind, OutboundCall
from domain.events import AttemptCalls, CallTruth, CarrierTruth
from domain.messages import Outgoing
from domain.plan import Objective
from domain.speech import Speech, spoken
from i18n.catalogues import N_, said

ERROR_TYPES = {
    FailureKind.DESTINATION: "DestinationRejected",
    FailureKind.CONFIGURATION: "CarrierMisconfigured",
    FailureKind.TRANSIENT: "CarrierUnavailable",
}
CARRIER_DOWN = "CarrierDown"
"""A call not placed because its carrier is failing (`carrier.health`): the run places it
through the next carrier."""
NON_RETRYABLE = ["DestinationRejected", "CarrierMisconfigured", "TooLate", "CallOutcomeUnknown", CARRIER_DOWN]
FETCHES_AT_ONCE = 10
"""Concurrent carrier lookups of one reconciliation (Twilio limits concurrent API requests)."""


PRESS_1 = N_("Press 1 to acknowledge.")
NOT_ACKNOWLEDGED = N_("We did not get your acknowledgement. Goodbye.")


class PlaceCall(BaseModel):
    attempt_id: str
    to: str
    caller_id: str
    objective: Objective
    """conference: the message, then the bridge; acknowledgement: the message and "press 1";
    information: the message, then goodbye."""
    message: str
    said: Speech = ()
    """The message as this person hears it, in parts by language; empty before 0.2.0 (then
    `message`, in the carrier's default voice)."""
    language: str = ""
    """The language this person is served in: of the prompts around the message."""
    carrier: str = ""
    """Which carrier places it (empty before 0.2.0: the worker's first)."""
    fail_over: bool = False
    """Another carrier could take it: when this one is failing, say so at once (CarrierDown)
    instead of trying it again until the deadline."""
    record: bool
    ring_timeout: timedelta
    queued_at: datetime
    """When the workflow decided to call: the lower bound when looking for an earlier try's call."""
    not_after: datetime
    """The step's deadline: a call that could only start later is not placed at all."""


class SendSms(BaseModel):
    to: str
    sender: str
    message: Outgoing
    """Only its body is sent."""
    requested_at: datetime


class SmsRoute(BaseModel):
    carrier: str
    sender: str
    """Its number: what the SMS come from."""


class SmsBatch(BaseModel):
    messages: list[SendSms]
    routes: list[SmsRoute] = []
    """The carriers in order (0.2.0): each message goes through the first this worker has not
    seen failing; empty before: the worker's first carrier, from each message's `sender`."""


class CarrierQuestion(BaseModel):
    calls: list[str]
    """Calls whose outcome a callback should have told us by now."""
    room: str | None = None
    """The run's conference room (its friendly name), whose members we want."""
    carriers: dict[str, str] = {}
    """The carrier of each call, where not the first (0.2.0)."""
    room_carrier: str = ""


class BridgeLeg(BaseModel):
    conference_sid: str
    call_sid: str
    carrier: str = ""


class MuteLeg(BridgeLeg):
    muted: bool


@dataclass(frozen=True)
class EarlierTry:
    """What a try knows of the tries before it, from their last heartbeat."""

    may_exist: bool
    """An earlier try may have placed the call: look for it before dialling."""
    since: datetime
    recorded: bool
    """The earlier try recorded when it began dialling: a lone call since then is its own."""


def earlier_try(attempt: int, details: Sequence[Any], queued_at: datetime) -> EarlierTry:
    """The first try dials; a try after one the carrier surely refused (`NOT_PLACED`) too; after
    one that recorded when it began dialling, look since then; after one that recorded nothing,
    look since the call was queued, and adopt nothing."""
    last = details[0] if details else None
    if attempt == 1 or last == NOT_PLACED:
        return EarlierTry(False, queued_at, False)
    if isinstance(last, dict) and DIALLING in last:
        return EarlierTry(True, datetime.fromisoformat(last[DIALLING]) - ADOPT_MARGIN, True)
    return EarlierTry(True, queued_at, False)


def carrier_down(carrier: str, why: str, *, maybe_placed: bool = False) -> ApplicationError:
    """The call was not placed through `carrier` (or, `maybe_placed`, its answer was lost too):
    this worker has seen it fail several times running."""
    doubt = " (the carrier may have placed it before failing)" if maybe_placed else ""
    return ApplicationError(
        f"{carrier} is failing: {why}{doubt}", carrier, maybe_placed, type=CARRIER_DOWN, non_retryable=True
    )


def as_application_error(exc: CarrierError) -> ApplicationError:
    return ApplicationError(
        str(exc),
        exc.code,
        type=ERROR_TYPES[exc.kind],
        non_retryable=exc.kind is not FailureKind.TRANSIENT,
    )


DIALLING = "dialling since"
"""Heartbeat detail of a try asking the carrier, with when it began: if its worker dies, the
call may exist, made since then."""
ADOPT_MARGIN = timedelta(seconds=2)
"""The carrier's clock and the worker's may differ, and its dates have one-second precision."""
NOT_PLACED = "not placed"
"""Heartbeat detail of a try the carrier surely refused (a 429, a refused connection): the next
try dials at once. Any other earlier try (an answer lost, a worker killed) may have placed its
call: the next try looks first."""


class CarrierActivities:
    def __init__(self, carriers: Carriers, public_url: str, client: Client | None = None) -> None:
        self._carriers = carriers
        self._public_url = public_url
        self._client = client
        """Asks a run what its callbacks told it, when a retry must find its own call."""
        self._in_flight = InFlight()

    @activity.defn
    async def place_call(self, request: PlaceCall) -> str:
        """One call, started by the server in the account's turn. A try after one that may have
        placed it looks for that call first. A call being dialled when its run withdraws it is
        finished, and its ID goes back to the run: it is ringing."""
        info = activity.info()
        earlier = earlier_try(info.attempt, info.heartbeat_details, request.queued_at)
        dialling = {DIALLING: datetime.now(UTC).isoformat()}
        name = self._carriers.name_of(request.carrier)
        health = self._carriers.health.of(name, "voice")
        if request.fail_over and not earlier.may_exist and not health.allows():  # else: look for it first
            raise carrier_down(name, health.last_fault)
        try:
            async with heartbeating(lambda: dialling):
                call_sid = await self._in_flight.once(
                    f"call@{name}", lambda: self._place(request, earlier, self._carriers[name]), finish=True
                )
        except CarrierError as exc:
            if exc.kind is FailureKind.TRANSIENT:
                health.fault(str(exc), rate_limited=exc.rate_limited)
                if request.fail_over and health.is_open:
                    maybe = exc.maybe_done or earlier.may_exist
                    raise carrier_down(name, str(exc), maybe_placed=maybe) from exc
            elif exc.kind is FailureKind.DESTINATION:
                health.success()  # the carrier answered: the number is the trouble
            if not exc.maybe_done:
                activity.heartbeat(NOT_PLACED)
            raise as_application_error(exc) from exc
        finally:
            health.release()  # a probe that ended otherwise (refused, too late, cancelled) told nothing
        health.success()
        return call_sid

    async def _place(self, request: PlaceCall, earlier: EarlierTry, carrier: Carrier) -> str:
        """One call: a call an earlier try may have placed is looked for first; refused past its
        deadline. Raises CarrierError (what to do about it) or ApplicationError (refused)."""
        run_id = activity.info().workflow_id
        assert run_id, "calls are placed for a run's workflow"
        call = self._outbound(request, run_id)
        try:
            found = await self._earlier_call(request, run_id, earlier, carrier) if earlier.may_exist else None
            if found:
                return found
            if datetime.now(UTC) >= request.not_after:
                raise ApplicationError(
                    "the step's deadline passed before the call could start", type="TooLate"
                )
            call_sid = await carrier.place_call(call)
        except CarrierError as exc:
            activity.metric_meter().create_counter("rallycall_carrier_errors", "Carrier refusals").add(
                1, {"kind": exc.kind.value}
            )
            raise
        activity.metric_meter().create_counter("rallycall_calls_placed", "Outbound calls placed").add(
            1, {"objective": request.objective}
        )
        return call_sid

    def _outbound(self, request: PlaceCall, run_id: str) -> OutboundCall:
        """Into the conference room (named after the run), or to acknowledge or hear the message."""
        message = request.said or spoken(request.message, "")
        language = request.language
        acknowledging = request.objective == "acknowledgement"
        served_in = {"lang": language} if language else {}
        via = {"carrier": request.carrier} if request.carrier else {}
        return OutboundCall(
            to=request.to,
            caller_id=request.caller_id,
            bridge=(
                bridge_for(self._public_url, run_id, message, request.record, request.carrier)
                if request.objective == "conference"
                else None
            ),
            message=message,
            acknowledge_url=(
                callback_url(
                    self._public_url,
                    urls.ACKNOWLEDGE,
                    run=run_id,
                    attempt=request.attempt_id,
                    **served_in,
                    **via,
                )
                if acknowledging
                else None
            ),
            acknowledge_prompt=said(PRESS_1, language) if acknowledging else (),
            not_acknowledged=said(NOT_ACKNOWLEDGED, language) if acknowledging else (),
            ring_timeout=request.ring_timeout,
            status_callback=callback_url(
                self._public_url, urls.CALL_STATUS, run=run_id, attempt=request.attempt_id, **via
            ),
            machine_callback=callback_url(
                self._public_url, urls.MACHINE_DETECTION, run=run_id, attempt=request.attempt_id, **via
            ),
        )

    async def _earlier_call(
        self, request: PlaceCall, run_id: str, earlier: EarlierTry, carrier: Carrier
    ) -> str | None:
        """The call an earlier try made, whose answer was lost: the run knows it if its
        `initiated` callback came; else, when that try recorded when it began dialling, the one
        call to the number from our caller ID since then that no other attempt of the run owns
        (its callbacks may all have been lost: a call waiting in the account's queue is told
        `initiated` only when dialled), or the one since it was queued that is in the run's own
        bridge. None when no call was made. Two such calls, or one in a window the earlier try
        did not record and outside the bridge (another run may have called the same person
        then), cannot be told apart: never adopt, never dial twice."""
        if self._client is None:
            raise ApplicationError(
                "no Temporal client to ask the run", type="CallOutcomeUnknown", non_retryable=True
            )
        handle = self._client.get_workflow_handle(run_id)
        known: AttemptCalls = await handle.query(
            "attempt_calls", request.attempt_id, result_type=AttemptCalls, rpc_timeout=timedelta(seconds=10)
        )
        if known.mine:
            return known.mine
        found = set(await carrier.calls_to(request.to, request.caller_id, earlier.since))
        unexplained = sorted(found - set(known.others))
        if len(unexplained) == 1 and (
            earlier.recorded or await self._in_our_bridge(request, run_id, unexplained[0], carrier)
        ):
            return unexplained[0]
        if unexplained:
            raise ApplicationError(
                "the carrier may have placed this call, but its answer and its callbacks were lost",
                type="CallOutcomeUnknown",
                non_retryable=True,
            )
        return None

    async def _in_our_bridge(self, request: PlaceCall, run_id: str, call_sid: str, carrier: Carrier) -> bool:
        """A call in this run's own conference room is this run's, whatever window it came in
        (the room is named after the run): a lone call the earlier try left no record of, that
        its person answered, is adopted."""
        if request.objective != "conference":
            return False
        _, members = await carrier.bridge_members(run_id)
        return call_sid in members

    @activity.defn
    async def hang_up(self, call_id: str, carrier: str = "") -> None:
        try:
            async with heartbeating():
                await self._carriers[carrier].hang_up(call_id)
        except CarrierError as exc:
            raise as_application_error(exc) from exc

    @activity.defn
    async def end_conference(self, conference_sid: str, carrier: str = "") -> None:
        """Close the bridge at the carrier: everyone still in it is disconnected."""
        try:
            async with heartbeating():
                await self._carriers[carrier].end_conference(conference_sid)
        except CarrierError as exc:
            raise as_application_error(exc) from exc

    @activity.defn
    async def carrier_truth(self, question: CarrierQuestion) -> CarrierTruth:
        """What the carrier knows now of these calls and of the room: the run corrects its
        roster with it, whatever callbacks were lost."""
        limit = asyncio.Semaphore(FETCHES_AT_ONCE)

        async def fetch(call_sid: str) -> CallTruth:
            async with limit:
                state = await self._carriers[question.carriers.get(call_sid, "")].call_state(call_sid)
            return CallTruth(call_sid=call_sid, status=state.status, answered_by=state.answered_by)

        try:
            calls = await asyncio.gather(*(fetch(sid) for sid in question.calls))
            bridge = self._carriers[question.room_carrier]
            room, members = await bridge.bridge_members(question.room) if question.room else (None, [])
        except CarrierError as exc:
            raise as_application_error(exc) from exc
        return CarrierTruth(calls=list(calls), conference_sid=room, members=members)

    @activity.defn
    async def mute(self, request: MuteLeg) -> None:
        try:
            async with heartbeating():
                await self._carriers[request.carrier].mute(
                    request.conference_sid, request.call_sid, request.muted
                )
        except CarrierError as exc:
            raise as_application_error(exc) from exc

    @activity.defn
    async def remove_from_bridge(self, request: BridgeLeg) -> None:
        try:
            async with heartbeating():
                await self._carriers[request.carrier].remove(request.conference_sid, request.call_sid)
        except CarrierError as exc:
            raise as_application_error(exc) from exc

    @activity.defn
    async def send_sms_batch(self, batch: SmsBatch) -> list[MessageOutcome]:
        """Text each message, FETCHES_AT_ONCE at a time, through the first carrier in order this
        worker has not seen failing: a message its carrier surely did not send, once that
        carrier is seen failing, goes through the next at once. A number refused, or every
        carrier refusing our account, is an outcome; a carrier that cannot take them now fails
        the try, and the next sends the rest."""
        progress, may_have_been_sent = progress_so_far()
        info = activity.info()
        once_key = f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"  # each try: the same keys
        limit = asyncio.Semaphore(FETCHES_AT_ONCE)
        refused: list[CarrierError] = []
        not_sent: list[int] = []

        async def text(index: int, request: SendSms) -> None:
            _, body = request.message.rendered()
            looked_for = progress.carriers.get(index) if may_have_been_sent(index) else None
            async with limit:
                if refused:
                    not_sent.append(index)
                    return
                routes = self._sms_routes(batch, request, looked_for)
                failure: CarrierError | None = None
                for route in routes:
                    name = self._carriers.name_of(route.carrier)
                    health = self._carriers.health.of(name, "sms")
                    looking = name == looked_for  # where an earlier try may have sent it: look there first
                    if not (looking or health.allows() or (failure is None and route is routes[-1])):
                        continue  # failing in this worker: the next (the last is tried if none was)
                    progress.begin(index, name)
                    since = request.requested_at if looking else None
                    texting = self._texting(
                        name, request.to, route.sender, body, since, f"{once_key}/{index}"
                    )
                    try:
                        sid = await self._in_flight.once(f"sms{index}@{name}", texting)
                    except CarrierError as exc:
                        failure = exc
                        if exc.kind is FailureKind.DESTINATION:
                            health.success()  # the carrier answered: the number is the trouble
                            break
                        if exc.kind is FailureKind.TRANSIENT:
                            health.fault(str(exc), rate_limited=exc.rate_limited)
                        if exc.maybe_done or not (health.is_open or exc.kind is FailureKind.CONFIGURATION):
                            break  # may have been sent, or a blip: the batch's next try
                        continue  # surely not sent, and this carrier is failing or refuses us: the next
                    else:
                        health.success()
                        progress.settle(index, MessageOutcome(sent=sid, carrier=name))
                        return
                    finally:
                        health.release()
                if failure is not None:
                    settle_sms_failure(progress, index, failure, refused, not_sent)

        async with heartbeating(lambda: progress.model_dump(mode="json")):
            await asyncio.gather(
                *(text(i, m) for i, m in enumerate(batch.messages) if i not in progress.settled)
            )
        progress.not_sent = not_sent
        if refused:  # no message can go until someone fixes the account: the rest are refused too
            refusal = MessageOutcome(error_type=ERROR_TYPES[FailureKind.CONFIGURATION], error=str(refused[0]))
            for index in range(len(batch.messages)):
                progress.settled.setdefault(index, refusal)
        return finish(
            progress, len(batch.messages), "CarrierUnavailable", "the carrier could not take them now"
        )

    def _texting(
        self, name: str, to: str, sender: str, body: str, since: datetime | None, key: str
    ) -> Callable[[], Awaitable[str]]:
        return lambda: self._carriers[name].send_sms(to, sender, body, sent_since=since, key=key)

    def _sms_routes(self, batch: SmsBatch, request: SendSms, looked_for: str | None) -> list[SmsRoute]:
        """The carriers to try this message on, in order, the one an earlier try may have sent
        it through first (to look there)."""
        routes = batch.routes or [SmsRoute(carrier="", sender=request.sender)]
        return sorted(routes, key=lambda r: self._carriers.name_of(r.carrier) != looked_for)


def settle_sms_failure(
    progress: BatchProgress, index: int, exc: CarrierError, refused: list[CarrierError], not_sent: list[int]
) -> None:
    """A number refused is settled; our configuration refused stops the batch; anything else is
    tried again (at once next time if the carrier surely did not send it)."""
    if exc.kind is FailureKind.DESTINATION:
        progress.settle(index, MessageOutcome(error_type=ERROR_TYPES[exc.kind], error=str(exc)))
        return
    if exc.kind is FailureKind.CONFIGURATION:
        refused.append(exc)
    if not exc.maybe_done:
        not_sent.append(index)
