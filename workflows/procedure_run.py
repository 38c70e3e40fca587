"""One launch of a procedure, step by step, on durable workflow timers. The red button's
conference call is the one-step procedure `conference-call` with the CONFCALL scheme:

    t=0        call everyone on their work phone (answered calls join the bridge)
    t=+1 min   call the home phone of whoever is not in yet
    t=+2 min   the step's deadline: everyone gets the dial-in number and PIN by SMS and email
    then       the bridge stays open for dial-ins until `end` or the maximum duration

A step with a bridge alerts its destinations here (at most 250: a bridge's size); a step
without one hands them to batch workflows (`StepBatch`), so a step may reach thousands. Each
step alerts until its objective is reached or its deadline passes, then sends its
post-objective message; the next step runs always, or only if this one fell short. Carrier
callbacks arrive as signals, dial-ins with a PIN as the `rejoin` update. While the bridge stays
open the run continues as new whenever its history grows long, carrying its roster over.
No I/O and no clock here but Temporal's.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from functools import partial
from typing import Literal

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.caller_index import CallerIndexActivities, callers_of
    from domain.call_queue import CallQueue
    from domain.events import (
        SEALED_SIGNALS,
        Acknowledgement,
        AttemptCalls,
        BridgeUpdate,
        CallProgress,
        EndRequest,
        FromRun,
        ModeratorAction,
        PinRefused,
        RecordingReady,
        RejoinRequest,
        RejoinResult,
    )
    from domain.messages import Outgoing
    from domain.pin_check import LIMIT_REACHED, person_calling, turned_away
    from domain.plan import RunPlan, StepPlan, VoiceMedium, batch_id
    from domain.roster import Roster, RosterState
    from domain.run_view import PeoplePage, PeopleQuery, RunView, page_of
    from rendering.webui import current_details
    from workflows import search_attributes as sa
    from workflows.activity_policies import failure_message
    from workflows.bridge_move import WATCH_EVERY
    from workflows.pin_lease import PinLease
    from workflows.step_batch import (
        BATCH_SIZE,
        BatchInput,
        BatchProgress,
        StepBatch,
        StepBegun,
        report_every,
    )
    from workflows.step_timeline import StepTimeline

LATE_ANSWERS = timedelta(minutes=10)
"""A run without a bridge stays this long after its last step, to record late answers."""
RECORDING_GRACE = timedelta(minutes=5)
"""How long an ended conference waits for the carrier to report its recording."""
BATCH_REPORTS_GRACE = timedelta(minutes=1)
"""How long a step waits for its batches' final counts before deciding on what it has."""
BRIDGE_CHECK_EVERY = timedelta(minutes=5)
"""While the bridge stays open, how often its membership is checked with the carrier."""
CONTINUE_AS_NEW_AT_EVENTS = 9_000
"""Below Temporal's 10,240-event warning: the history a new worker replays stays short."""
CONTINUE_AS_NEW_AT_UPDATES = 1_500
"""Below Temporal's 2,000 updates per run."""


class RunInput(BaseModel):
    plan: RunPlan
    calls: CallQueue
    """Where its calls wait their turn at the carrier account's rate."""
    carried: RosterState | None = None
    """What a previous run of this conference knew, when it continued as new."""


@workflow.defn(versioning_behavior=VersioningBehavior.PINNED)
class ProcedureRun:
    @workflow.init
    def __init__(self, start: RunInput) -> None:
        self.plan = start.plan
        state = start.carried or RosterState.fresh(start.plan, workflow.now())
        self.roster = Roster(start.plan, workflow.info().workflow_id, state)
        self.in_batches_only = max(0, start.plan.participants - len(start.plan.people))
        """People only its batches list (indexed among the participants all the same)."""
        self.end_request: EndRequest | None = None
        self.updates = 0
        self.indexed: tuple[str, int, int] | None = None
        self.details_stale = True
        self.alerting = StepTimeline(start.plan, self.roster, start.calls, self.step_done, self.changed)

    @workflow.run
    async def run(self, start: RunInput) -> RunView:
        self.details = asyncio.create_task(self.keep_details_fresh())
        self.watch = asyncio.create_task(self.watch_bridge()) if self.alerting.bridge.watching() else None
        self.publish()
        if not self.roster.state.steps_done:
            await self.run_steps()
        if self.plan.has_bridge:
            await self.keep_bridge_open(start)
        else:
            with contextlib.suppress(asyncio.TimeoutError):  # `end` closes it sooner
                await workflow.wait_condition(
                    lambda: self.end_request is not None,
                    timeout=LATE_ANSWERS,
                    timeout_summary="record answers that come too late",
                )
        await self.close()
        return self.roster.view()  # messages still retrying are moot: not awaited

    async def run_steps(self) -> None:
        previous_reached: bool | None = None
        for step in self.plan.steps:
            if self.end_request is not None:
                break
            if step.run == "if_previous_not_reached" and previous_reached:
                self.roster.step_skipped(step)
                continue
            started = workflow.now()
            self.roster.step_started(step, started)
            self.publish()
            if step.has_bridge:
                await self.alerting.run_step(step, started, at_deadline=partial(self.post_objective, step))
            else:
                await self.run_in_batches(step, started)
            previous_reached = self.roster.step_ended(step, workflow.now())
            self.publish()
        self.roster.steps_done()

    def post_objective(self, step: StepPlan) -> None:
        """The step's message after its objective or deadline (the PIN to everyone): sent unless
        the run is ending."""
        if step.post_objective and self.end_request is None:
            self.alerting.run.background(self.alerting.messages.send_post_objective(step))

    def step_done(self, step: StepPlan) -> str | None:
        """Why the step wants no more alerts, or None."""
        if self.end_request is not None:
            return "the run was ended first"
        return "the step's objective was reached first" if self.roster.objective_met(step) else None

    async def run_in_batches(self, step: StepPlan, started: datetime) -> None:
        """Begin the step in its batches, wait for the objective (their reports added up) or
        the deadline, then for their final counts."""
        if step.batch_sizes:
            await self.begin_batches(step, started)
        else:
            await self.start_batches(step, started)
        self.publish()
        await self.alerting.until(started + step.deadline, f"step {step.number}: deadline", step)
        if self.roster.objective_met(step):
            await asyncio.gather(*(self.signal_batch(b, "stop") for b in self.batches_of(step)))
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(
                lambda: self.roster.batches_over(step),
                timeout=BATCH_REPORTS_GRACE,
                timeout_summary="batches' final counts",
            )

    async def begin_batches(self, step: StepPlan, started: datetime) -> None:
        """The launcher started the step's batches, their people in their inputs: tell each
        the step began. One that cannot be told is a problem on the run, counted as none reached."""
        run_id = workflow.info().workflow_id
        begun = StepBegun(
            run_id=run_id,
            started_at=started,
            lifetime=step.deadline + self.plan.max_duration + LATE_ANSWERS,
            report_every=report_every(len(step.batch_sizes)),
        )
        ids = [batch for batch, _ in step.batches(self.plan.batch_prefix)]  # listed since the run started
        answers = await asyncio.gather(
            *(workflow.get_external_workflow_handle(b).signal("begin", begun) for b in ids),
            return_exceptions=True,
        )
        for batch, answer in zip(ids, answers, strict=True):
            if isinstance(answer, BaseException):
                self.roster.problem(f"step {step.number}: batch {batch} could not be begun ({answer})")
                self.roster.batch_progress(batch, 0, step_over=True)

    async def start_batches(self, step: StepPlan, started: datetime) -> None:
        """Runs launched before 0.2.0 hand their destinations to batches here, from their plan."""
        for index, first in enumerate(range(0, len(step.destinations), BATCH_SIZE), start=1):
            chunk = step.destinations[first : first + BATCH_SIZE]
            child_id = batch_id(workflow.info().workflow_id, step.number, index)
            plan = self.plan.model_copy(
                update={
                    "steps": (step.model_copy(update={"destinations": chunk}),),
                    "people": tuple(self.plan.person(cid) for cid in chunk),
                }
            )
            await workflow.start_child_workflow(
                StepBatch.run,
                BatchInput(
                    plan=plan,
                    parent_id=workflow.info().workflow_id,
                    started_at=started,
                    calls=self.alerting.calls.queue,
                    lifetime=step.deadline + self.plan.max_duration + LATE_ANSWERS,
                ),
                id=child_id,
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=f"{self.plan.title}: step {step.number}, batch {index} ({len(chunk)})",
            )
            self.roster.batch_started(step, child_id, len(chunk))

    def batches_of(self, step: StepPlan | None = None) -> list[str]:
        """The roster lists the batches the launcher started from the run's start, so closing
        them all reaches those of a step that never began (skipped, or the run ended first)."""
        return [
            b.workflow_id for b in self.roster.state.batches.values() if step is None or b.step == step.number
        ]

    async def signal_batch(self, batch_id: str, signal: str) -> None:
        """`stop` or `close`; a batch already gone has nothing left to do."""
        handle = workflow.get_external_workflow_handle(batch_id)
        with contextlib.suppress(ApplicationError):
            if workflow.patched(SEALED_SIGNALS):  # an argument the codec seals
                await handle.signal(signal, FromRun(run_id=workflow.info().workflow_id))
            else:
                await handle.signal(signal)

    async def keep_bridge_open(self, start: RunInput) -> None:
        """Until `end` or the maximum duration; continues as new when the history grows long."""
        closes_at = self.roster.started_at + self.plan.max_duration
        while self.end_request is None and workflow.now() < closes_at:
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(
                    lambda: self.end_request is not None or self.history_is_long(),
                    timeout=min(closes_at - workflow.now(), BRIDGE_CHECK_EVERY),
                    timeout_summary="bridge open until ended",
                )
            if self.end_request is None:
                await self.alerting.carrier.reconcile()
            if self.end_request is None and self.history_is_long():
                await workflow.wait_condition(
                    lambda: (
                        self.alerting.run.idle()
                        and workflow.all_handlers_finished()
                        and (self.watch is None or self.watch.done())
                    )
                )
                if self.end_request is None:
                    workflow.continue_as_new(start.model_copy(update={"carried": self.roster.state}))

    async def watch_bridge(self) -> None:
        """With a second carrier, the bridge's is asked for its room every WATCH_EVERY while
        people are in it, and the bridge moves if it is lost (`workflows.bridge_move`). Stops
        when the run ends, or before it continues as new (the next run watches again)."""
        while True:
            try:
                await workflow.wait_condition(
                    lambda: (
                        self.end_request is not None
                        or self.roster.ended
                        or self.history_is_long()
                        or self.alerting.bridge.wanted
                    ),
                    timeout=WATCH_EVERY,
                    timeout_summary="watch the bridge's carrier",
                )
                if not self.alerting.bridge.wanted:
                    return
            except TimeoutError:
                pass
            await self.alerting.bridge.check()

    def history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.get_current_history_length() >= CONTINUE_AS_NEW_AT_EVENTS
            or self.updates >= CONTINUE_AS_NEW_AT_UPDATES
            or info.is_continue_as_new_suggested()
        )

    async def close(self) -> None:
        """End the room at the carrier (everyone still on is disconnected), stop phones still
        ringing, close the batches, release the PIN, and let handlers in flight finish."""
        request = self.end_request or EndRequest(reason="maximum duration reached")
        room, live, ringing = (
            self.roster.state.conference_sid,
            self.roster.connected_calls(),
            self.roster.ringing_calls(),
        )
        self.roster.end(workflow.now(), request.reason, request.by, request.channel)
        self.publish()
        if self.watch is not None:
            await self.watch
        await self.alerting.calls.all_placed()
        if room is None or not await self.alerting.carrier.end_conference(room):
            ringing += live
        await asyncio.gather(
            *(self.alerting.carrier.hang_up(call_sid) for call_sid in ringing),
            *(self.signal_batch(batch, "close") for batch in self.batches_of()),
            self.unregister_callers(),
        )
        if self.plan.record and room is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(
                    lambda: self.roster.state.recording_url is not None,
                    timeout=RECORDING_GRACE,
                    timeout_summary="wait for the recording",
                )
        if self.plan.pin_lease_id is not None:
            try:
                lease = workflow.get_external_workflow_handle(self.plan.pin_lease_id)
                if workflow.patched(SEALED_SIGNALS):  # an argument the codec seals
                    await lease.signal(PinLease.release, FromRun(run_id=workflow.info().workflow_id))
                else:
                    await lease.signal(PinLease.release)
            except ApplicationError:
                workflow.logger.warning("PIN lease %s was already gone", self.plan.pin_lease_id)
        await workflow.wait_condition(workflow.all_handlers_finished)

    async def unregister_callers(self) -> None:
        """The launcher put this run's numbers in the caller index (hashed); take them out."""
        if not self.plan.has_bridge:
            return
        try:
            await workflow.execute_activity_method(
                CallerIndexActivities.unregister_callers,
                callers_of(self.plan, workflow.info().workflow_id, self.roster.started_at),
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=timedelta(minutes=5),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
                summary="forget this run's callers",
            )
        except ActivityError as err:
            workflow.logger.warning("forgetting the callers failed (they expire): %s", failure_message(err))

    def changed(self) -> None:
        """After any change of the roster: give anyone who dropped out of the bridge the way
        back at once (once per drop), and show the run."""
        for person_id in self.roster.take_drops():
            self.alerting.run.background(self.way_back(person_id))
        self.publish()

    async def way_back(self, person_id: str) -> None:
        """Their leg left the bridge without us ending it: the dial-in number and PIN by SMS,
        or a call back, as the procedure says."""
        contact = self.plan.person(person_id)
        if not await self.alerting.bridge.after_drop():
            return  # the bridge was lost, not them: they are being called into the new one
        if self.plan.after_drop == "call":
            await self.alerting.moderation.call_again(contact)
        elif self.plan.after_drop == "sms" and contact.mobile:
            step = next(s for s in self.plan.steps if s.has_bridge and person_id in s.destinations)
            text, language = self.plan.way_back(self.plan.language_for(contact))
            message = Outgoing(subject=self.plan.title, body=text, language=language)
            await self.alerting.messages.send(contact, "sms", contact.mobile, message, step, "rejoin")

    def publish(self) -> None:
        """Show the run in the Web UI: current details (rendered by `keep_details_fresh`) and
        filterable search attributes."""
        self.details_stale = True
        view = self.roster.view()
        indexed = (view.state, len(view.people) + self.in_batches_only, view.in_bridge)
        if indexed != self.indexed:
            self.indexed = indexed
            workflow.upsert_search_attributes(
                [
                    sa.STATE.value_set(indexed[0]),
                    sa.PARTICIPANTS.value_set(indexed[1]),
                    sa.IN_CONFERENCE.value_set(indexed[2]),
                ]
            )

    async def keep_details_fresh(self) -> None:
        """Render the Web UI's table once per workflow task, after all its changes: a condition
        is checked only when nothing else is ready. Rendered at every change, it cost O(people)
        per callback, and a task applying a burst of callbacks to a 250-person run ran past the
        SDK's 2-second deadlock detection on a loaded 2-core machine."""
        while True:
            await workflow.wait_condition(lambda: self.details_stale)
            self.details_stale = False
            workflow.set_current_details(current_details(self.roster.view()))

    @workflow.signal
    async def call_progress(self, event: CallProgress) -> None:
        """A carrier status callback, relayed by the callback server."""
        unwanted_call = self.roster.call_progress(event, workflow.now())
        self.changed()
        if unwanted_call:
            await self.alerting.carrier.hang_up(unwanted_call)

    @workflow.signal
    def bridge_event(self, event: BridgeUpdate) -> None:
        """The conference room's own callbacks: who is really in the bridge."""
        self.roster.bridge_event(event, workflow.now())
        self.changed()

    @workflow.signal
    def acknowledged(self, event: Acknowledgement) -> None:
        """Someone pressed 1 on an acknowledgement call."""
        self.roster.acknowledged(event, workflow.now())
        self.publish()

    @workflow.signal
    def recording_ready(self, recording: RecordingReady) -> None:
        self.roster.recording_ready(recording.url)
        self.publish()

    @workflow.signal
    def pin_refused(self, refused: PinRefused) -> None:
        """A wrong PIN keyed from one of this run's numbers: recorded, no update spent."""
        self.roster.pin_refused(refused, workflow.now())
        self.publish()

    @workflow.signal
    def batch_progress(self, progress: BatchProgress) -> None:
        """A batch of a step without a bridge reports how many it reached."""
        self.roster.batch_progress(progress.workflow_id, progress.counted, progress.step_over)
        self.publish()

    @workflow.update
    def rejoin(self, request: RejoinRequest) -> RejoinResult:
        """Someone dialled in and keyed a PIN; every attempt is recorded, right or wrong. With
        the dial-in line's limits, a wrong PIN from one of the run's people is counted here, in
        the step that compared it: concurrent wrong PINs never get past a limit."""
        self.updates += 1
        result = self.roster.rejoin(request, workflow.now())
        bridge = self.roster.bridge_carrier
        if result.accepted and request.carrier and bridge and request.carrier != bridge:
            self.call_into_bridge(request, result, bridge)
        if not result.accepted:
            result.refused_by = self.turned_away(request)
            if result.refused_by is not None and request.limits is not None:
                self.roster.turned_away(result.refused_by, request.limits.window)
        self.publish()
        return result

    def call_into_bridge(self, request: RejoinRequest, result: RejoinResult, bridge: str) -> None:
        """A right PIN on another carrier's number than the bridge's (it moved, or they chose
        the other number): one of the run's people is called into the bridge where it is; a
        guest is told its number."""
        result.bridge_carrier, result.bridge_number = bridge, self.plan.carriers.get(bridge, "")
        person = result.participant_id
        if not result.guest and person and self.plan.knows(person):
            contact, alerting = self.plan.person(person), self.alerting
            phones: dict[VoiceMedium, str | None] = {
                "voice_mobile": contact.mobile,
                "voice_pro": contact.voice_pro,
                "voice_home": contact.voice_home,
            }
            dialled_from = next((m for m, n in phones.items() if n == request.from_number), None)  # theirs?
            alerting.run.background(alerting.moderation.call_again(contact, dialled_from))
            result.called_back = True

    @rejoin.validator
    def validate_rejoin(self, request: RejoinRequest) -> None:
        if self.plan.pin is None:
            raise ValueError("this procedure has no conference to join")
        if self.end_request is not None or self.roster.ended:
            raise ValueError("this conference has ended")
        limit = self.turned_away(request)
        if limit is not None:  # refused unread and unrecorded: no update spent
            raise ApplicationError(f"too many wrong PINs ({limit} limit)", type=LIMIT_REACHED[limit])

    def turned_away(self, request: RejoinRequest) -> Literal["caller", "run"] | None:
        attempts = self.roster.state.pin_attempts
        return turned_away(self.plan, attempts, request.from_number, request.limits, workflow.now())

    @workflow.update
    def end(self, request: EndRequest) -> None:
        self.updates += 1
        self.end_request = request

    @end.validator
    def validate_end(self, request: EndRequest) -> None:
        if self.end_request is not None or self.roster.ended:
            raise ValueError("this run is already ending")

    @workflow.update
    async def moderate(self, action: ModeratorAction) -> str:
        """A moderator's mute, unmute or remove of someone in the bridge, or "call again now"
        for someone not in it; recorded with who did it. Returns what was done."""
        self.updates += 1
        return await self.alerting.moderation.act(action)

    @moderate.validator
    def validate_moderate(self, action: ModeratorAction) -> None:
        refusal = "this run has ended" if self.end_request else self.alerting.moderation.refusal(action)
        if refusal is not None:
            raise ValueError(refusal)

    @workflow.query
    def attempt_calls(self, attempt_id: str) -> AttemptCalls:
        """For a retried call whose answer was lost: its own call, if a callback told it."""
        return self.roster.attempt_calls(attempt_id)

    @workflow.query
    def caller_language(self, number: str) -> str:
        """The language a person of this run calling from `number` is served in ("" for a
        number none of them has): the dial-in line asks for their PIN in it."""
        person = person_calling(self.plan, number)
        return self.plan.language_for(person) if person else ""

    @workflow.query
    def people(self, query: PeopleQuery) -> PeoplePage:
        """A page of the people listed here: a roster of any size is read page by page."""
        return page_of(self.roster.state.people.values(), query)

    @workflow.query
    def view(self) -> RunView:
        return self.roster.view()
