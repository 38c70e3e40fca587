"""The dial-in line: a caller keys a PIN and is put into the run that holds it.

    at the prompt       the runs the caller's number belongs to are looked up (carried, sealed,
                        in the PIN's URL); a number or the whole line with too many wrong PINs
                        in ten minutes is turned away before any PIN is asked
    their own runs      a run's people are checked by their runs, in one `rejoin` update: the
                        run compares the PIN and counts a wrong one in the same step, and over
                        its limits turns them away whatever they key
    the line            any other PIN (a guest's, or a person's that is not their runs') is
                        looked up by its lease and decided by the guard (`DialInGuard.check`,
                        counted before its verdict); a right one then goes to its run

A right PIN from a person's own number thus costs one update, and is never refused for the
line's sake. The lease of a run that has ended says so: "this conference has ended".

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
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, TypeVar

import phonenumbers
from cryptography.fernet import Fernet, InvalidToken
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from callbacks import urls
from callbacks.relay import TRANSIENT
from carrier.port import Carrier, InboundCall
from directory import PinHolder, caller_key, conferences_of_caller, pin_holder
from domain.contacts import masked
from domain.events import DialInLimits, RejoinRequest, RejoinResult
from domain.pin_check import LIMIT_REACHED
from domain.speech import Speech, spoken
from i18n.catalogues import N_, SOURCE_LANGUAGE, said
from i18n.languages import spoken_in
from workflows.dial_in_guard import (
    TURNED_AWAY,
    Attempt,
    DialInGuard,
    GuardLimits,
    GuardState,
    Question,
    Verdict,
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
CALL_TOKEN_TTL = 600
"""The caller's runs, looked up at the prompt, are used for this long; then looked up again."""
OFFER_FOR = 30.0
"""Seconds a check keeps offering the PIN to its run, even after the caller stopped waiting."""
PROMPT = N_("Welcome to the conference line. Please enter your {digits} digit conference PIN.")
RETRY = N_("That PIN is not valid. Please enter it again.")
WRONG_PIN_GOODBYE = N_("That PIN is not valid. Please check the PIN you received by SMS or email. Goodbye.")
TOO_MANY_GOODBYE = N_("Too many wrong PINs from this number. Please try again later. Goodbye.")
LINE_BUSY_GOODBYE = N_(
    "The conference line is not accepting PINs from this number right now. "
    "Please try again later, or use the link in your SMS. Goodbye."
)
HOLD = N_("Please hold while we check your PIN.")
LINE_PROBLEM_GOODBYE = N_(
    "We cannot check your PIN right now because of a technical problem on our side. "
    "Please call again in a few minutes. Goodbye."
)
ENDED_GOODBYE = N_("This conference has ended. Goodbye.")
CALLING_BACK = N_("Your PIN is right. We are calling you back into the conference now. Goodbye.")
CALL_THE_OTHER_NUMBER = N_(
    "The conference is now on another number: {number}. Please call that number. Goodbye."
)
FOR_LANGUAGE = N_("For English, press {key}.")
"""One line of the language menu, each said in its own language (translated as "Pour le
français, tapez {key}.")."""
MENU_PATIENCE = 5
"""Seconds the menu waits for a key; then the caller goes on in the first language offered."""
LIMITS_BY_ERROR = {error: limit for limit, error in LIMIT_REACHED.items()}


def spelled(number: str) -> str:
    """A phone number as a voice should read it, digit by digit, its groups apart
    (+41215550200: "4 1, 2 1, 5 5 5, 0 2, 0 0")."""
    try:
        formatted = phonenumbers.format_number(
            phonenumbers.parse(number, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )
    except phonenumbers.NumberParseException:
        return number
    return ", ".join(" ".join(group) for group in formatted.lstrip("+").split())


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
    language: str = SOURCE_LANGUAGE
    """The installation's: for a caller whose language nothing tells."""
    via: str = ""
    """The `carrier=` of the call's URLs ("": the first carrier's, as before 0.2.0)."""
    name: str = ""
    """The carrier whose number this line answers."""

    # --- the TwiML answers -------------------------------------------------------------------

    async def answer(self, call: InboundCall) -> str:
        """A call to the dial-in number: ask for the PIN (unless the number is turned away), in
        the caller's language: a person's own, else their number's country's; where the country
        speaks several, the caller picks one from a menu first."""
        try:
            verdict, runs, language = await self.within_patience(self.screen(call.caller))
        except (Transient, TimeoutError):
            verdict, runs, language = Verdict(allowed=True), None, ""  # the check after the digits asks again
        offered = self.languages_offered(call.caller)
        language = language or (offered[0] if len(offered) == 1 else "")
        if not verdict.allowed:
            return self.say_goodbye(self.refusal(verdict.reason), language or offered[0])
        if not language:
            menu = tuple(
                part
                for key, lang in enumerate(offered, start=1)
                for part in self.said(FOR_LANGUAGE, lang, key=key)
            )
            menu_url = urls.language_url(self.public_url, self.call_token(call, runs), self.via)
            return self.carrier.ask_for_key(menu_url, menu, MENU_PATIENCE)
        return self.ask_for_pin(call, 1, runs, PROMPT, language)

    def chosen(self, call: InboundCall, token: str) -> str:
        """The language menu's answer: the first language offered if no key or another key (a
        caller who starts keying their PIN chose with its first digit)."""
        offered = self.languages_offered(call.caller)
        key = int(call.digits[:1]) if call.digits[:1].isdigit() else 0
        language = offered[key - 1] if 1 <= key <= len(offered) else offered[0]
        runs = callers_runs(self.secret, token, call.call_sid) if token else None
        return self.ask_for_pin(call, 1, runs, PROMPT, language)

    def languages_offered(self, caller: str) -> tuple[str, ...]:
        """The shipped languages of the caller's country, and the installation's after them."""
        try:
            region = phonenumbers.region_code_for_number(phonenumbers.parse(caller, None))
        except phonenumbers.NumberParseException:
            region = None
        return tuple(dict.fromkeys((*spoken_in(region), self.language)))

    async def check(
        self, call: InboundCall, tries: int, holds: int, token: str = "", language: str = ""
    ) -> str:
        """Digits keyed at the prompt (or carried over a hold): into the bridge, another try,
        hold, or goodbye. `token` is the call's, from the URL: the caller's runs, if known."""
        language = language or self.language
        runs = callers_runs(self.secret, token, call.call_sid) if token else None
        try:
            outcome = await self.within_patience(self.decide(call, tries, runs, language))
        except (Transient, TimeoutError):
            if holds >= MAX_HOLDS:
                log.warning("PIN check for %s given up after %d holds", masked(call.caller), holds)
                return self.say_goodbye(LINE_PROBLEM_GOODBYE, language)
            held = hold_token(self.secret, call, runs)
            again = urls.pin_url(
                self.public_url, tries, hold=holds + 1, token=held, language=language, carrier=self.via
            )
            return self.carrier.hold(self.said(HOLD, language), again)
        if outcome.kind == "admitted":
            assert outcome.run_id and outcome.result
            result = outcome.result
            if result.bridge_carrier and result.bridge_carrier != self.name:  # one bridge, not two
                if result.called_back:
                    return self.say_goodbye(CALLING_BACK, language)
                return self.carrier.say_goodbye(
                    self.said(CALL_THE_OTHER_NUMBER, language, number=spelled(result.bridge_number))
                )
            welcome = result.said or spoken(result.welcome, "")
            bridge = urls.bridge_for(self.public_url, outcome.run_id, welcome, result.record, self.via)
            return self.carrier.connect_to_bridge(bridge)
        if outcome.kind == "refused":
            return self.say_goodbye(self.refusal(outcome.refused_by), language)
        if outcome.kind == "ended":
            return self.say_goodbye(ENDED_GOODBYE, language)
        if tries >= MAX_TRIES:
            return self.say_goodbye(WRONG_PIN_GOODBYE, language)
        return self.ask_for_pin(call, tries + 1, runs, RETRY, language)

    def ask_for_pin(
        self, call: InboundCall, tries: int, runs: list[str] | None, prompt: str, language: str
    ) -> str:
        url = urls.pin_url(
            self.public_url, tries, token=self.call_token(call, runs), language=language, carrier=self.via
        )
        return self.carrier.ask_for_pin(
            url, self.said(prompt, language, digits=self.pin_digits), self.pin_digits
        )

    def call_token(self, call: InboundCall, runs: list[str] | None) -> str:
        """What the call carries to its next webhook: its runs, sealed ("" when not looked up)."""
        return seal(self.secret, call.call_sid, runs=runs) if runs is not None else ""

    def said(self, text: str, language: str, **fields: object) -> Speech:
        """A text of the line in `language` (or the installation's, where a catalogue lacks it)."""
        return said(text, language or self.language, self.language, **fields)

    def say_goodbye(self, text: str, language: str) -> str:
        return self.carrier.say_goodbye(self.said(text, language))

    async def within_patience(self, work: Coroutine[Any, Any, T]) -> T:
        """The caller is on the line: give up waiting after `patience`, without waiting for the
        work to notice (a Temporal call in flight may not stop at once). What it leaves running
        is harmless: a rejoin or a guard's check retried later is the same update."""
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

    async def decide(
        self, call: InboundCall, tries: int, runs: list[str] | None, language: str = ""
    ) -> Outcome:
        """Their own runs first, then the line. What the caller hears never depends on a PIN
        the limits did not let be checked: a person the line no longer checks hears "not valid"
        for another run's PIN as for any wrong one, after the same steps."""
        if not call.digits:
            return Outcome("wrong")  # nothing keyed, nothing compared: not counted
        if runs is None:
            runs = await self.runs_of(call.caller)
        request = RejoinRequest(
            pin=call.digits, from_number=call.caller, call_sid=call.call_sid, limits=self.run_limits,
            language=language, carrier=self.name,
        )  # fmt: skip
        holder = await self.holder(call.digits) if len(runs) > 1 else None
        if runs:
            own = [holder.run_id] if holder and holder.run_id in runs else runs
            answers = await asyncio.gather(*(self.offer(run_id, request, tries) for run_id in own))
            for kind in ("admitted", "refused"):
                decided = next((a for a in answers if a.kind == kind), None)
                if decided is not None:
                    if kind == "refused":
                        log.warning("dial-in from %s turned away by %s (%s limit)",
                                    masked(call.caller), decided.run_id, decided.refused_by)  # fmt: skip
                    return decided
            runs = [a.run_id for a in answers if a.kind == "wrong" and a.run_id]  # those still running
        if holder is None:
            holder = await self.holder(call.digits)
        if holder is not None and not holder.running:
            return Outcome("ended", holder.run_id)  # late, not guessing: not counted
        right = holder is not None and holder.run_id not in runs
        verdict = await self.line_check(call, runs, right, tries)
        if not verdict.allowed:
            log.warning("dial-in from %s turned away (%s limit)", masked(call.caller), verdict.reason)
            if runs and verdict.reason == "line":
                return Outcome("wrong")  # their own runs have counted it; the line tells nothing more
            return Outcome("refused", refused_by=verdict.reason)
        if right:
            assert holder is not None
            return await self.offer(holder.run_id, request, tries)
        log.info("wrong PIN from %s (%d run(s) of theirs counted it)", masked(call.caller), len(runs))
        return Outcome("wrong")

    @property
    def run_limits(self) -> DialInLimits:
        return DialInLimits(per_caller=self.limits.per_caller, per_run=self.limits.per_run)

    async def offer(self, run_id: str, request: RejoinRequest, tries: int) -> Outcome:
        """The run's answer; ten updates in flight (Temporal's limit per run) is retried."""
        handle = self.client.get_workflow_handle_for(ProcedureRun.run, run_id)

        async def rejoin() -> RejoinResult:
            return await handle.execute_update(
                ProcedureRun.rejoin, request, id=update_id(request, tries), rpc_timeout=self.rpc_timeout
            )

        try:
            result = await self.retried(rejoin, lambda: self.still_running(run_id))
        except WorkflowUpdateFailedError as exc:
            limit = LIMITS_BY_ERROR.get(error_type(exc) or "")
            if limit is not None:
                return Outcome("refused", run_id, refused_by=limit)
            return Outcome("ended", run_id)  # the validator: the conference has ended
        except Ended:
            return Outcome("ended", run_id)
        if result.accepted:
            log.info("dial-in from %s admitted to %s", masked(request.from_number), run_id)
            return Outcome("admitted", run_id, result)
        if result.refused_by is not None:
            return Outcome("refused", run_id, refused_by=result.refused_by)
        return Outcome("wrong", run_id)

    async def line_check(self, call: InboundCall, runs: list[str], right: bool, tries: int) -> Verdict:
        """The guard's verdict on a PIN looked up, counted there first if it is wrong (the guard
        is started with the first check after a quiet window)."""
        attempt = Attempt(caller_key=caller_key(call.caller, self.secret), runs=runs, right=right)

        async def check() -> Verdict:
            start = WithStartWorkflowOperation(
                DialInGuard.run,
                GuardState(limits=self.limits),
                id=guard_id(self.task_queue),
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                static_summary="Dial-in guard: wrong PINs of the last ten minutes (keyed hashes)",
            )
            return await self.client.execute_update_with_start_workflow(
                DialInGuard.check,
                attempt,
                start_workflow_operation=start,
                id=f"pin-check-{call.call_sid}-{tries}",
                rpc_timeout=self.rpc_timeout,
            )

        try:
            return await self.retried(check)
        except WorkflowUpdateFailedError as exc:
            if error_type(exc) != TURNED_AWAY or not isinstance(exc.cause, ApplicationError):
                raise Transient("the guard could not check the PIN") from exc
            return Verdict(allowed=False, reason=exc.cause.message)

    async def retried(
        self, update: Callable[[], Awaitable[T]], gone: Callable[[], Awaitable[bool]] | None = None
    ) -> T:
        """An update, again while Temporal says "not now" (ten in flight, a timeout, a workflow
        closing); Transient when it keeps saying so, Ended when `gone` says the workflow ended."""
        delay = 0.02
        give_up = asyncio.get_running_loop().time() + OFFER_FOR
        while asyncio.get_running_loop().time() < give_up:
            try:
                return await update()
            except WorkflowUpdateRPCTimeoutOrCancelledError:
                continue  # the same update again: the server keeps it by its ID
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND and gone is not None and await gone():
                    raise Ended from exc
                if exc.status not in TRANSIENT | {RPCStatusCode.NOT_FOUND}:
                    raise Transient(exc.status.name) from exc
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.5)
        raise Transient("no answer")

    async def still_running(self, run_id: str) -> bool:
        """A run that continued as new takes the update again; one that ended does not."""
        description = await self.lookup(self.client.get_workflow_handle(run_id).describe())
        return description.status == WorkflowExecutionStatus.RUNNING

    async def holder(self, pin: str) -> PinHolder | None:
        return await self.lookup(pin_holder(self.client, self.secret, pin))

    async def runs_of(self, caller: str) -> list[str]:
        lookup = conferences_of_caller(self.client, self.secret, self.task_queue, caller, self.rpc_timeout)
        return await self.lookup(lookup)

    @property
    def rpc_timeout(self) -> timedelta:
        """A query needs a worker: without one it would wait; the caller is on the line."""
        return timedelta(seconds=self.patience / 2)

    async def screen(self, caller: str) -> tuple[Verdict, list[str] | None, str]:
        """At the prompt: the caller's runs (None if they could not be looked up now: the PIN's
        check does it), whether a limit turns them away already, and the language their runs
        know them in ("" for someone no run knows). With no wrong PIN in the last ten minutes no
        guard runs and none is asked (whether it runs is answered by the server, not by a
        worker)."""
        guarded, found = await asyncio.gather(
            self.guard_running(), self.runs_of(caller), return_exceptions=True
        )
        runs = None if isinstance(found, BaseException) else found
        if guarded is not True or runs is None:  # nothing to ask, or not now: the PIN's check decides
            return Verdict(allowed=True), runs, await self.caller_language(caller, runs or [])
        verdict, language = await asyncio.gather(
            self.verdict(caller, runs), self.caller_language(caller, runs)
        )
        return verdict, runs, language

    async def caller_language(self, caller: str, runs: list[str]) -> str:
        """The language the caller's first run serves them in; "" if none can say now (the
        country or the menu decides: not worth a hold). It is asked after their runs are found,
        so it gets half their time: both stay within the caller's patience, and the runs found
        are kept whatever it answers."""
        for run_id in runs[:1]:
            handle = self.client.get_workflow_handle_for(ProcedureRun.run, run_id)
            try:
                return await handle.query(
                    ProcedureRun.caller_language, caller, rpc_timeout=self.rpc_timeout / 2
                )
            except (RPCError, WorkflowQueryFailedError):
                return ""
        return ""

    async def guard_running(self) -> bool:
        try:
            description = await self.client.get_workflow_handle(guard_id(self.task_queue)).describe(
                rpc_timeout=self.rpc_timeout
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise Transient(exc.status.name) from exc
        return description.status == WorkflowExecutionStatus.RUNNING

    async def verdict(self, caller: str, runs: list[str]) -> Verdict:
        handle = self.client.get_workflow_handle_for(DialInGuard.run, guard_id(self.task_queue))
        question = Question(caller_key=caller_key(caller, self.secret), runs=runs)
        try:
            return await handle.query(DialInGuard.verdict, question, rpc_timeout=self.rpc_timeout)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return Verdict(allowed=True)  # no wrong PIN lately: no guard running
            raise Transient(exc.status.name) from exc

    @staticmethod
    async def lookup(request: Awaitable[T]) -> T:
        """Temporal's answer, or Transient when it cannot give one now."""
        try:
            return await request
        except RPCError as exc:
            raise Transient(exc.status.name) from exc

    def held_digits(self, token: str, call_sid: str) -> str | None:
        return held_digits(self.secret, token, call_sid)


class Ended(Exception):
    """The workflow an update was for has ended."""


def error_type(exc: WorkflowUpdateFailedError) -> str | None:
    return exc.cause.type if isinstance(exc.cause, ApplicationError) else None


# --- what a call carries between webhooks ------------------------------------------------------


def _fernet(secret: str) -> Fernet:
    key = hashlib.sha256(b"rallycall dial-in hold:" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret: str, call_sid: str, digits: str | None = None, runs: list[str] | None = None) -> str:
    """What a call carries to its next webhook, encrypted into the URL and bound to that call:
    the digits keyed (over a hold; never a PIN in clear in a URL) and the caller's runs. Nothing
    is kept in this process: any replica takes the next request."""
    payload = json.dumps({"call": call_sid, "digits": digits, "runs": runs}).encode()
    return _fernet(secret).encrypt(payload).decode()


def unsealed(secret: str, token: str, call_sid: str, ttl: int) -> dict[str, Any] | None:
    """A token's content if it was made for this call within `ttl` seconds (else forged, expired
    or another call's)."""
    try:
        payload = json.loads(_fernet(secret).decrypt(token.encode(), ttl=ttl))
    except (InvalidToken, ValueError):
        return None
    return payload if isinstance(payload, dict) and payload.get("call") == call_sid else None


def hold_token(secret: str, call: InboundCall, runs: list[str] | None = None) -> str:
    return seal(secret, call.call_sid, digits=call.digits, runs=runs)


def held_digits(secret: str, token: str, call_sid: str) -> str | None:
    """The digits of a hold token made for this call, or None (forged, expired, another call)."""
    payload = unsealed(secret, token, call_sid, HOLD_TOKEN_TTL)
    digits = payload.get("digits") if payload else None
    return digits if isinstance(digits, str) else None


def callers_runs(secret: str, token: str, call_sid: str) -> list[str] | None:
    """The caller's runs as looked up at the prompt, or None: to be looked up now."""
    payload = unsealed(secret, token, call_sid, CALL_TOKEN_TTL)
    runs = payload.get("runs") if payload else None
    return runs if isinstance(runs, list) and all(isinstance(r, str) for r in runs) else None
