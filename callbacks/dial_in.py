"""The dial-in line: a caller keys a PIN and is put into the run that holds it.

    ask the guard       a number (or a run's numbers, or the whole line) with too many wrong
                        PINs in ten minutes is turned away before any PIN is checked
    find the run        by the PIN's lease; none: a wrong PIN, recorded with the guard and on
                        the runs the caller's number belongs to (signals: no update spent);
                        the lease of a run that has ended: "this conference has ended"
    let them in         the run's `rejoin` update; they hear the welcome and join the bridge

A problem on our side (Temporal unreachable, a worker down, ten updates already in flight) is
never a wrong PIN: the caller hears "please hold" and the check is tried again, then, if it
still cannot be done, that the line has a problem. Nothing here prints a PIN or a whole number.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import random
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, TypeVar

from cryptography.fernet import Fernet, InvalidToken
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from callbacks import urls
from callbacks.relay import TRANSIENT
from carrier.port import Carrier, InboundCall
from directory import caller_key, conferences_of_caller, pin_holder
from domain.contacts import masked
from domain.events import PinRefused, RejoinRequest, RejoinResult
from workflows.dial_in_guard import (
    DialInGuard,
    GuardLimits,
    GuardState,
    Question,
    Verdict,
    WrongPin,
    guard_id,
)
from workflows.procedure_run import ProcedureRun

log = logging.getLogger("rallycall.dial_in")
T = TypeVar("T")

MAX_TRIES = 3
MAX_HOLDS = 3
INLINE_PATIENCE = 4.0
"""Seconds to retry a check within one webhook before asking the caller to hold."""
HOLD_TOKEN_TTL = 120
OFFER_FOR = 30.0
"""Seconds a check keeps offering the PIN to its run, even after the caller stopped waiting."""
PROMPT = "Welcome to the conference line. Please enter your {digits} digit conference PIN."
RETRY = "That PIN is not valid. Please enter it again."
WRONG_PIN_GOODBYE = "That PIN is not valid. Please check the PIN you received by SMS or email. Goodbye."
TOO_MANY_GOODBYE = "Too many wrong PINs from this number. Please try again later. Goodbye."
LINE_BUSY_GOODBYE = (
    "The conference line is not accepting PINs from this number right now. "
    "Please try again later, or use the link in your SMS. Goodbye."
)
HOLD = "Please hold while we check your PIN."
LINE_PROBLEM_GOODBYE = (
    "We cannot check your PIN right now because of a technical problem on our side. "
    "Please call again in a few minutes. Goodbye."
)
ENDED_GOODBYE = "This conference has ended. Goodbye."


def update_id(request: RejoinRequest, tries: int) -> str | None:
    """One update per prompt of a dial-in call: a check retried after a hold is the same
    update, so an earlier try the server still held is not applied twice."""
    return f"rejoin-{request.call_sid}-{tries}" if request.call_sid else None


LEFT_RUNNING: set[asyncio.Future[Any]] = set()
"""Checks a caller stopped waiting for, kept until they end (see `within_patience`)."""


def _forget(task: asyncio.Future[Any]) -> None:
    LEFT_RUNNING.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned check's failure is not an error of anyone's


class Transient(Exception):
    """Temporal or a worker could not answer now; not the caller's fault."""


@dataclass(frozen=True)
class Outcome:
    kind: Literal["admitted", "wrong", "refused", "ended"]
    run_id: str | None = None
    result: RejoinResult | None = None
    refused_by: str | None = None


@dataclass(frozen=True)
class DialIn:
    carrier: Carrier
    client: Client
    public_url: str
    secret: str
    task_queue: str
    pin_digits: int
    limits: GuardLimits
    patience: float = INLINE_PATIENCE

    # --- the TwiML answers -------------------------------------------------------------------

    async def answer(self, call: InboundCall) -> str:
        """A call to the dial-in number: ask for the PIN (unless the number is turned away)."""
        try:
            verdict, _ = await self.within_patience(self.guard(call.caller))
        except (Transient, TimeoutError):
            verdict = Verdict(allowed=True)  # the check after the digits asks again
        if not verdict.allowed:
            return self.carrier.say_goodbye(self.refusal(verdict.reason))
        prompt = PROMPT.format(digits=self.pin_digits)
        return self.carrier.ask_for_pin(urls.pin_url(self.public_url, 1), prompt, self.pin_digits)

    async def check(self, call: InboundCall, tries: int, holds: int) -> str:
        """Digits keyed at the prompt (or carried over a hold): into the bridge, another try,
        hold, or goodbye."""
        try:
            outcome = await self.within_patience(self.decide(call, tries))
        except (Transient, TimeoutError):
            if holds >= MAX_HOLDS:
                log.warning("PIN check for %s given up after %d holds", masked(call.caller), holds)
                return self.carrier.say_goodbye(LINE_PROBLEM_GOODBYE)
            token = self.hold_token(call)
            url = urls.pin_url(self.public_url, tries, hold=holds + 1, token=token)
            return self.carrier.hold(HOLD, url)
        if outcome.kind == "admitted":
            assert outcome.run_id and outcome.result
            bridge = urls.bridge_for(
                self.public_url, outcome.run_id, outcome.result.welcome, outcome.result.record
            )
            return self.carrier.connect_to_bridge(bridge)
        if outcome.kind == "refused":
            return self.carrier.say_goodbye(self.refusal(outcome.refused_by))
        if outcome.kind == "ended":
            return self.carrier.say_goodbye(ENDED_GOODBYE)
        if tries >= MAX_TRIES:
            return self.carrier.say_goodbye(WRONG_PIN_GOODBYE)
        return self.carrier.ask_for_pin(urls.pin_url(self.public_url, tries + 1), RETRY, self.pin_digits)

    async def within_patience(self, work: Coroutine[Any, Any, T]) -> T:
        """The caller is on the line: give up waiting after `patience`, without waiting for the
        work to notice (a Temporal call in flight may not stop at once). What it leaves running
        is harmless: a rejoin retried later is the same update."""
        task = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({task}, timeout=self.patience)
        if not done:
            LEFT_RUNNING.add(task)
            task.add_done_callback(_forget)
            raise TimeoutError
        return task.result()

    def refusal(self, reason: str | None) -> str:
        return LINE_BUSY_GOODBYE if reason == "line" else TOO_MANY_GOODBYE

    # --- the decision ------------------------------------------------------------------------

    async def decide(self, call: InboundCall, tries: int) -> Outcome:
        verdict, runs = await self.guard(call.caller)
        if not verdict.allowed:
            log.warning("dial-in from %s turned away (%s limit)", masked(call.caller), verdict.reason)
            return Outcome("refused", refused_by=verdict.reason)
        if not call.digits:
            return Outcome("wrong")
        holder = await self.lookup(pin_holder(self.client, self.secret, call.digits))
        if holder is not None and not holder.running:
            return Outcome("ended", holder.run_id)  # late, not guessing: not counted
        if holder is None:
            runs = runs if runs is not None else await self.runs_of(call.caller)
            await self.record_wrong_pin(call.caller, runs)
            verdict = await self.verdict(call.caller, runs)  # this one may have reached a limit
            return Outcome("wrong") if verdict.allowed else Outcome("refused", refused_by=verdict.reason)
        request = RejoinRequest(pin=call.digits, from_number=call.caller, call_sid=call.call_sid)
        return await self.offer(holder.run_id, request, tries)

    async def offer(self, run_id: str, request: RejoinRequest, tries: int) -> Outcome:
        """The run's answer; ten updates in flight (Temporal's limit per run) is retried."""
        handle = self.client.get_workflow_handle_for(ProcedureRun.run, run_id)
        delay = 0.02
        give_up = asyncio.get_running_loop().time() + OFFER_FOR
        while asyncio.get_running_loop().time() < give_up:
            try:
                result = await handle.execute_update(
                    ProcedureRun.rejoin, request, id=update_id(request, tries), rpc_timeout=self.rpc_timeout
                )
            except WorkflowUpdateFailedError:
                return Outcome("ended", run_id)  # the validator: the conference has ended
            except WorkflowUpdateRPCTimeoutOrCancelledError:
                continue  # the same update again: the server keeps it by its ID
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND and not await self.still_running(run_id):
                    return Outcome("ended", run_id)
                if exc.status not in TRANSIENT | {RPCStatusCode.NOT_FOUND}:
                    raise Transient(exc.status.name) from exc
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.5)
                continue
            if result.accepted:
                log.info("dial-in from %s admitted to %s", masked(request.from_number), run_id)
                return Outcome("admitted", run_id, result)
            return Outcome("wrong", run_id)
        raise Transient("the run did not answer")

    async def still_running(self, run_id: str) -> bool:
        """A run that continued as new takes the update again; one that ended does not."""
        description = await self.lookup(self.client.get_workflow_handle(run_id).describe())
        return description.status == WorkflowExecutionStatus.RUNNING

    async def runs_of(self, caller: str) -> list[str]:
        lookup = conferences_of_caller(self.client, self.secret, self.task_queue, caller, self.rpc_timeout)
        return await self.lookup(lookup)

    @property
    def rpc_timeout(self) -> timedelta:
        """A query needs a worker: without one it would wait; the caller is on the line."""
        return timedelta(seconds=self.patience / 2)

    async def guard(self, caller: str) -> tuple[Verdict, list[str] | None]:
        """The guard's verdict, and the caller's runs if they had to be looked up. With no wrong
        PIN in the last ten minutes no guard runs: a right PIN then costs no query at all
        (asking whether the guard runs is answered by the server, not by a worker)."""
        try:
            description = await self.client.get_workflow_handle(guard_id(self.task_queue)).describe(
                rpc_timeout=self.rpc_timeout
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return Verdict(allowed=True), None
            raise Transient(exc.status.name) from exc
        if description.status != WorkflowExecutionStatus.RUNNING:
            return Verdict(allowed=True), None
        runs = await self.runs_of(caller)
        return await self.verdict(caller, runs), runs

    async def verdict(self, caller: str, runs: list[str]) -> Verdict:
        handle = self.client.get_workflow_handle_for(DialInGuard.run, guard_id(self.task_queue))
        question = Question(caller_key=caller_key(caller, self.secret), runs=runs)
        try:
            return await handle.query(DialInGuard.verdict, question, rpc_timeout=self.rpc_timeout)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return Verdict(allowed=True)  # no wrong PIN lately: no guard running
            raise Transient(exc.status.name) from exc

    async def record_wrong_pin(self, caller: str, runs: list[str]) -> None:
        """Counted by the guard (started on the first wrong PIN) and shown on the caller's runs."""
        failure = WrongPin(caller_key=caller_key(caller, self.secret), runs=runs)
        try:
            await self.client.start_workflow(
                DialInGuard.run,
                GuardState(limits=self.limits),
                id=guard_id(self.task_queue),
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                start_signal="wrong_pin",
                start_signal_args=[failure],
                static_summary="Dial-in guard: wrong PINs of the last ten minutes (keyed hashes)",
            )
        except RPCError as exc:
            raise Transient(exc.status.name) from exc
        log.info("wrong PIN from %s (%d run(s) of theirs told)", masked(caller), len(runs))
        refused = PinRefused(from_number=caller)
        for run_id in runs:
            try:
                await self.client.get_workflow_handle(run_id).signal(ProcedureRun.pin_refused, refused)
            except RPCError as exc:
                log.info("wrong PIN not recorded on %s: %s", run_id, exc.status.name)

    @staticmethod
    async def lookup(request: Awaitable[T]) -> T:
        """Temporal's answer, or Transient when it cannot give one now."""
        try:
            return await request
        except RPCError as exc:
            raise Transient(exc.status.name) from exc

    def hold_token(self, call: InboundCall) -> str:
        return hold_token(self.secret, call)

    def held_digits(self, token: str, call_sid: str) -> str | None:
        return held_digits(self.secret, token, call_sid)


# --- holding a caller between webhooks ---------------------------------------------------------


def _fernet(secret: str) -> Fernet:
    key = hashlib.sha256(b"rallycall dial-in hold:" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def hold_token(secret: str, call: InboundCall) -> str:
    """The digits keyed, encrypted into the hold's redirect URL: never a PIN in clear in a URL,
    and nothing kept in this process (any replica takes the next request)."""
    payload = json.dumps({"digits": call.digits, "call": call.call_sid}).encode()
    return _fernet(secret).encrypt(payload).decode()


def held_digits(secret: str, token: str, call_sid: str) -> str | None:
    """The digits of a hold token made for this call, or None (forged, expired, another call)."""
    try:
        payload = json.loads(_fernet(secret).decrypt(token.encode(), ttl=HOLD_TOKEN_TTL))
    except (InvalidToken, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("call") != call_sid:
        return None
    digits = payload.get("digits")
    return digits if isinstance(digits, str) else None
