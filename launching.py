"""Launching: check the launch form, resolve destinations and schemes, freeze everything into
the workflow input, check the account's call rate can keep the schemes' times, reserve a PIN
when there is a bridge, start.

Nothing reaches Temporal until every check has passed, so a refused launch leaves no trace
and a started one never depends on files that may change while it runs.

One launch per intent: a launch with an idempotency key (the console's confirmation form, the
CLI's --idempotency-key) gets a workflow ID derived from it, and Temporal refuses a second start
of that ID, running or ended (ID conflict policy FAIL, reuse policy REJECT_DUPLICATE). The
second launch then answers with the run already started, its PIN read from that run's input, so
a confirmation sent to two console replicas, or before and after a restart, calls people once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import phonenumbers
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.caller_index import callers_of, register_callers
from config import Settings
from directory import pin_lease_id
from domain.call_queue import PRIORITY
from domain.capacity import StepLoad, StepReach, reach, step_loads
from domain.contacts import Contact, load_contacts, resolve_destinations, shared_numbers, to_e164
from domain.errors import InvalidLaunch
from domain.messages import check_sms, fields_of, render, render_spoken
from domain.plan import (
    ADDRESS_OF,
    DEFAULT_MAX_DURATION,
    LaunchChannel,
    PostObjective,
    PostText,
    RunPlan,
    SchemeMedium,
    SchemePlan,
    StepPlan,
    post_fields,
)
from domain.speech import plain
from i18n.catalogues import N_, words
from i18n.languages import SHIPPED, language_of, normalised, served
from key_checks import problems_with_workers
from links import call_me_url
from procedures.definitions import ProcedureDefinition, SchemeBook, SchemeDefinition, StepDefinition
from workflows import search_attributes as sa
from workflows.pin_lease import LeaseTerms, PinLease
from workflows.procedure_run import LATE_ANSWERS, ProcedureRun, RunInput
from workflows.step_batch import BatchInput, StepBatch, hand_to_batches

MAX_IN_BRIDGE = 250
"""A Twilio conference holds at most 250 participants."""
MAX_PEOPLE = 50_000
"""Everyone a run may alert. Only its bridge steps' people (at most 250) are in the run's own
plan; the rest are frozen into its batches' inputs, 200 a batch (`hand_to_batches`)."""

LEASE_GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class LaunchRequest:
    procedure: ProcedureDefinition
    schemes: SchemeBook
    fields: dict[str, str] = field(default_factory=dict)
    """The launch form as filled in: text, or `id,id,+41…` for a contacts field."""
    contacts_file: Path | None = None
    launched_by: str = ""
    channel: LaunchChannel = "cli"
    record: bool | None = None
    """None: as the procedure says."""
    max_duration: timedelta = DEFAULT_MAX_DURATION
    force: bool = False
    """Launch even when the account's call rate cannot keep the schemes' times."""
    idempotency_key: str | None = None
    """The same key (for the same procedure) launches once: a repeat gets the run it started."""
    text_language: str | None = None
    """The language the launcher wrote the form's texts in (`#{Body}`): they are spoken in it,
    whatever the language around them. None: the procedure's."""


@dataclass(frozen=True)
class Launched:
    workflow_id: str
    pin: str | None
    dial_in_number: str
    over_capacity: list[StepLoad] = field(default_factory=list)
    """Steps launched with --force although the call rate cannot keep their times."""
    already: bool = False
    """This launch's idempotency key had already started this run: nothing new was started."""
    reach: list[StepReach] = field(default_factory=list)
    """How long the carrier's rates take to alert each step's destinations."""


class OverCapacity(InvalidLaunch):
    """The account's calls per second cannot reach everyone in time; nothing was launched."""

    def __init__(self, loads: list[StepLoad]) -> None:
        self.loads = loads
        super().__init__([load.describe() for load in loads] + ["launch anyway with --force"])


def red_button(procedure: ProcedureDefinition, schemes: SchemeBook, destinations: list[str], welcome: str,
               **options: object) -> LaunchRequest:  # fmt: skip
    """`starter.py conference`: the welcome goes to the procedure's first text field, the
    destinations to its first contacts field."""
    text = next((f for f in procedure.form if f.kind == "text"), None)
    contacts = next((f for f in procedure.form if f.kind == "contacts"), None)
    if contacts is None:
        raise InvalidLaunch(
            [f"procedure {procedure.name!r} has no contacts field: it cannot be the red button"]
        )
    fields = {contacts.name: ",".join(destinations)}
    if text is not None:
        fields[text.name] = welcome
    elif welcome:
        raise InvalidLaunch([f"procedure {procedure.name!r} has no text field for a welcome message"])
    return LaunchRequest(procedure=procedure, schemes=schemes, fields=fields, **options)  # type: ignore[arg-type]


MAX_KEY_LENGTH = 200


def new_run_id(procedure: ProcedureDefinition, now: datetime, idempotency_key: str | None = None) -> str:
    """A fresh ID with the launch's time; with a key, the same ID for every launch of it (the
    key hashed: it may be a ticket number or anything a launcher chose)."""
    kind = "conference" if procedure.has_conference() else procedure.name
    if idempotency_key is None:
        return f"{kind}-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    if not idempotency_key.strip() or len(idempotency_key) > MAX_KEY_LENGTH:
        raise InvalidLaunch([f"the idempotency key must be 1 to {MAX_KEY_LENGTH} characters"])
    digest = hashlib.sha256(f"{procedure.name}\0{idempotency_key}".encode()).hexdigest()
    return f"{kind}-key-{digest[:20]}"


def conference_numbers(settings: Settings) -> str:
    """`#{ConferenceNumber}`: the dial-in number of each carrier, in order (`+41 21 555 01 00 /
    +41 21 555 02 00`): the PIN works on any of them, so a carrier down leaves a way in."""
    numbers = dict.fromkeys(
        phonenumbers.format_number(
            phonenumbers.parse(account.number, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )
        for account in settings.carrier_accounts()
    )
    return " / ".join(numbers)


def prepare(request: LaunchRequest, settings: Settings, pin: str | None, run_id: str = "") -> RunPlan:
    """Check the launch and freeze it; raises InvalidLaunch listing every problem found."""
    procedure = request.procedure
    problems = check_form(procedure, request.fields)
    if problems:
        raise InvalidLaunch(problems)
    try:
        dial_in = to_e164(settings.carrier_accounts()[0].number)
    except ValueError as exc:
        raise InvalidLaunch([f"RALLYCALL_DIAL_IN_NUMBER: {exc}"]) from exc
    contacts = load_contacts(request.contacts_file) if request.contacts_file else {}
    fields = {
        f.template_name: request.fields.get(f.name, "").strip() for f in procedure.form if f.kind == "text"
    }
    language = procedure.language or settings.language
    try:
        own = dict.fromkeys(fields, text_language(request.text_language, language))
    except ValueError as exc:
        raise InvalidLaunch([f"language of the texts: {exc}"]) from exc
    if procedure.has_conference():
        fields["ConferenceNumber"] = conference_numbers(settings)
        fields["Pin"] = pin or ""
    people: dict[str, Contact] = {}
    schemes: dict[str, SchemePlan] = {}
    steps = []

    def call_me(contact: Contact) -> str:
        return call_me_url(settings.console_url, settings.console_secret, run_id, contact.id)

    texts = Texts(fields, language, own)
    links = call_me if procedure.call_me_link else None

    for step in procedure.steps:
        try:
            destinations = step_destinations(step, request.fields, contacts)
        except InvalidLaunch as exc:
            problems += [f"step {step.number}: {problem}" for problem in exc.problems]
            continue
        for contact in destinations:
            people.setdefault(contact.id, contact)
        try:
            steps.append(plan_step(step, destinations, request.schemes, texts, schemes, links))
        except InvalidLaunch as exc:
            problems += exc.problems
    problems += shared_numbers(list(people.values()))
    problems += size_problems(procedure, steps, len(people))
    texted: dict[str, list[Contact]] = {language: []}  # by the language each is served in
    for contact in people.values():
        group = texted.setdefault(served(contact.language, language), [])
        if contact.mobile:
            group.append(contact)
    drop_messages = (
        {lang: way_back_message(procedure, fields, lang, language) for lang in sorted(texted)}
        if procedure.has_conference()
        else {}
    )
    if drop_messages and procedure.after_drop == "sms":
        for lang, text in drop_messages.items():
            problems += sms_problems(text, texted[lang], f"after a drop, in {lang}")
    if problems:
        raise InvalidLaunch(problems)
    return RunPlan(
        procedure=procedure.name,
        title=procedure.title,
        steps=tuple(steps),
        people=tuple(people.values()),
        schemes=schemes,
        default_scheme=request.schemes.default,
        fields=fields,
        dial_in_number=dial_in,
        carriers={account.name: to_e164(account.number) for account in settings.carrier_accounts()},
        pin=pin if procedure.has_conference() else None,
        pin_lease_id=pin_lease_id(pin, settings.pin_secret) if pin and procedure.has_conference() else None,
        record=procedure.record if request.record is None else request.record,
        after_drop=procedure.after_drop,
        drop_message=drop_messages.get(language, ""),
        drop_messages={lang: text for lang, text in drop_messages.items() if lang != language},
        language=language,
        call_me_links={c.id: call_me(c) for c in people.values() if c.numbers()}
        if procedure.call_me_link
        else {},
        max_duration=request.max_duration,
        launched_by=request.launched_by,
        channel=request.channel,
    )


DEFAULT_WAY_BACK = N_(
    "You left the conference call. To rejoin, dial #{ConferenceNumber} and enter PIN #{Pin}."
)


def way_back_message(
    procedure: ProcedureDefinition, fields: dict[str, str], language: str, default: str
) -> str:
    """What someone served in `language` who dropped out of the bridge is texted: the first
    conference step's post-objective SMS (the PIN invitation) in their language if the step has
    it, else the catalogue's plain one in their language."""
    step = next(s for s in procedure.steps if s.objective == "conference")
    post = step.post_objectives(default).get(language)
    plain_one = words(DEFAULT_WAY_BACK, language, default)
    source = (post.sms or post.body) if post else plain_one
    personal = fields_of(source) - set(fields)  # #{Contact.Name}, #{CallMeLink}: one text for all
    return render(plain_one if personal else source, fields)


def text_language(tag: str | None, default: str) -> str:
    """The launcher's language for their texts: a shipped one, as a tag (its region may pick
    the voice)."""
    if not tag:
        return default
    found = normalised(tag)
    if language_of(found) not in SHIPPED:
        raise ValueError(f"{tag!r} is not a language rallycall ships ({', '.join(SHIPPED)})")
    return found


def sms_problems(text: str, recipients: list[Contact], what: str) -> list[str]:
    if not recipients:
        return []
    try:
        check_sms(text, f"everyone ({what})")
    except InvalidLaunch as exc:
        return exc.problems
    return []


@dataclass(frozen=True)
class Texts:
    """What a launch's texts are rendered with: the form's fields, the procedure's language,
    and the language of each of the launcher's own fields."""

    fields: dict[str, str]
    language: str
    own: dict[str, str]


def size_problems(procedure: ProcedureDefinition, steps: list[StepPlan], people: int) -> list[str]:
    """One bridge holds 250, counting everyone any conference step may call into it."""
    bridge_steps = [step for step in steps if step.has_bridge]
    in_bridge = {cid for step in bridge_steps for cid in step.destinations}
    problems = []
    if len(in_bridge) > MAX_IN_BRIDGE:
        by_step = ", ".join(f"step {s.number}: {len(s.destinations)}" for s in bridge_steps)
        problems.append(
            f"{len(in_bridge)} people could be called into this run's bridge ({by_step}); "
            f"a bridge holds at most {MAX_IN_BRIDGE}"
        )
    if people > MAX_PEOPLE:
        problems.append(f"{people} destinations: a run alerts at most {MAX_PEOPLE}")
    return problems


def check_form(procedure: ProcedureDefinition, values: dict[str, str]) -> list[str]:
    """Every problem with the filled-in form, named by field."""
    problems = []
    names = [f.name for f in procedure.form]
    for name in values:
        if procedure.field(name) is None:
            problems.append(
                f"unknown field {name!r} (the form of {procedure.name!r} has: {', '.join(names) or 'none'})"
            )
    for form_field in procedure.form:
        value = values.get(form_field.name, "").strip()
        label = f" ({form_field.label})" if form_field.label else ""
        if form_field.required and not value:
            problems.append(f"field {form_field.name!r}{label} is required")
        elif form_field.kind == "text" and len(value) > form_field.max_length:
            problems.append(
                f"field {form_field.name!r} is {len(value)} characters; at most {form_field.max_length}"
            )
    return problems


def step_destinations(
    step: StepDefinition, values: dict[str, str], contacts: dict[str, dict[str, object]]
) -> list[Contact]:
    chosen = list(step.contacts)
    for name in step.contact_fields:
        chosen += [d.strip() for d in values.get(name, "").split(",") if d.strip()]
    return resolve_destinations(chosen, contacts)


def plan_step(
    step: StepDefinition,
    destinations: list[Contact],
    book: SchemeBook,
    texts: Texts,
    schemes: dict[str, SchemePlan],
    call_me: Callable[[Contact], str] | None = None,
) -> StepPlan:
    """The step with its schemes resolved (global scheme, else each contact's own, else the
    default) and frozen into `schemes`, and its texts rendered in each of its languages; an
    SMS it would send must fit SMS_SEGMENTS_AT_MOST parts in the language it goes in."""
    problems: list[str] = []
    fields, language = texts.fields, texts.language
    messages = {
        lang: render_spoken(source, fields, lang, texts.own)
        for lang, source in step.messages(language).items()
    }
    post = plan_post_objective(step, language)
    planned = StepPlan(
        number=step.number,
        objective=step.objective,
        percent=step.percent,
        run=step.run,
        destinations=tuple(c.id for c in destinations),
        scheme=step.scheme,
        message=plain(messages[language]),
        message_language=language,
        messages=messages,
        deadline=step.deadline,
        post_objective=post,
    )
    for contact in destinations:
        scheme = scheme_for(step, contact, book)
        if scheme is None:
            problems.append(
                f"contact {contact.id!r}: personal alert scheme {contact.scheme!r} is not defined"
            )
            continue
        schemes.setdefault(scheme.name, frozen_scheme(scheme))
        who = f"{contact.id} (step {step.number})"
        unreachable = without_address(contact, scheme)
        if unreachable:
            problems.append(f"contact {contact.id!r} (step {step.number}): {unreachable}")
            continue
        served_in = served(contact.language, language)
        try:
            if contact.mobile and any(m.medium == "sms" for m in scheme.media):
                check_sms(planned.text_for(served_in)[0], who)
            if contact.mobile and post is not None:
                personal = post_fields(fields, contact, call_me(contact) if call_me else None)
                version = post.in_language(served_in)
                check_sms(render(version.sms or version.body, personal), who)
        except InvalidLaunch as exc:
            problems += exc.problems
    if problems:
        raise InvalidLaunch(problems)
    default = book.get(book.default)
    assert default is not None, "the scheme book checks its default exists"
    schemes.setdefault(default.name, frozen_scheme(default))
    return planned


def plan_post_objective(step: StepDefinition, language: str) -> PostObjective | None:
    """The step's post-objective templates: the procedure language's, and the others' as
    versions."""
    posts = step.post_objectives(language)
    if not posts:
        return None
    first = posts[language]
    return PostObjective(
        subject=first.subject,
        body=first.body,
        sms=first.sms,
        language=language,
        versions={
            lang: PostText(subject=post.subject, body=post.body, sms=post.sms, language=lang)
            for lang, post in posts.items()
            if lang != language
        },
    )


def without_address(contact: Contact, scheme: SchemeDefinition) -> str | None:
    """Why the scheme cannot reach this contact at all, or None. A contact needs an address for
    one of the media the scheme uses, nothing more: a mobile number for an SMS-only scheme (a
    medium they have no address for is skipped, as a missing home phone always was)."""
    fields = list(dict.fromkeys(ADDRESS_OF[m.medium] for m in scheme.media))
    if any(getattr(contact, f) for f in fields):
        return None
    return f"has no {' or '.join(fields)} for scheme {scheme.name}, which uses only those"


def frozen_scheme(scheme: SchemeDefinition) -> SchemePlan:
    return SchemePlan(
        name=scheme.name,
        media=tuple(SchemeMedium(medium=m.medium, after=m.after) for m in scheme.media),
        ring_timeout=scheme.ring_timeout,
    )


def scheme_for(step: StepDefinition, contact: Contact, schemes: SchemeBook) -> SchemeDefinition | None:
    return schemes.get(step.scheme or contact.scheme or schemes.default)


async def reserve_pin(client: Client, settings: Settings, run_id: str, hold_for: timedelta) -> str:
    """Draw PINs until one is free among running conferences, and hold it with a lease."""
    for _ in range(50):
        pin = f"{secrets.randbelow(10**settings.pin_digits):0{settings.pin_digits}d}"
        try:
            await client.start_workflow(
                PinLease.run,
                LeaseTerms(conference_id=run_id, expires_after=hold_for + LEASE_GRACE),
                id=pin_lease_id(pin, settings.pin_secret),
                task_queue=settings.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                static_summary="PIN lease",
                memo={"conference": run_id},
            )
        except WorkflowAlreadyStartedError:
            continue
        return pin
    raise RuntimeError("could not find a free PIN after 50 draws")


BATCH_STARTS_AT_ONCE = 20


async def start_batches(
    client: Client, settings: Settings, batches: list[tuple[str, BatchInput]], title: str
) -> None:
    """Start a run's batches before the run, each with its people frozen in its input; they wait
    for the run to begin their step. Their IDs are this attempt's: one already started (a start
    retried after a lost answer) is kept. Every start is done or failed before this returns."""
    gate = asyncio.Semaphore(BATCH_STARTS_AT_ONCE)

    async def start(batch: str, batch_input: BatchInput) -> None:
        step = batch_input.plan.steps[0]
        summary = f"{title}: step {step.number}, {batch.rsplit('-', 1)[-1]} ({len(step.destinations)})"
        async with gate:
            await client.start_workflow(
                StepBatch.run,
                batch_input,
                id=batch,
                task_queue=settings.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                static_summary=summary,
            )

    outcomes = await asyncio.gather(
        *(start(b, batch_input) for b, batch_input in batches), return_exceptions=True
    )
    failed = next((outcome for outcome in outcomes if isinstance(outcome, BaseException)), None)
    if failed is not None:
        raise failed


async def withdraw(client: Client, lease_id: str | None, batches: list[str]) -> None:
    """This attempt's run did not start: its PIN lease and batches would wait for it in vain."""
    for workflow_id in [*([lease_id] if lease_id else []), *batches]:
        with contextlib.suppress(RPCError):
            await client.get_workflow_handle(workflow_id).terminate("run did not start")


async def run_exists(client: Client, run_id: str) -> bool:
    """Whether the run was started after all (an answer lost on the way back); when Temporal
    cannot say, it may have been: nothing is withdrawn then (what waits in vain expires)."""
    try:
        await client.get_workflow_handle(run_id).describe()
    except RPCError as exc:
        return exc.status != RPCStatusCode.NOT_FOUND
    return True


def check_capacity(
    plan: RunPlan,
    settings: Settings,
    force: bool,
    waiting: int = 0,
    every_step: list[StepLoad] | None = None,
) -> list[StepLoad]:
    """Refuse a run the account's call rate cannot keep in time, `waiting` calls of other runs
    going first, unless forced. `every_step`: its steps already replayed (`step_loads`)."""
    replayed = every_step if every_step is not None else step_loads(plan, settings.calls_per_second, waiting)
    loads = [load for load in replayed if not load.in_time]
    if loads and not force:
        raise OverCapacity(loads)
    return loads


async def calls_waiting(client: Client, settings: Settings, priority: int = max(PRIORITY.values())) -> int:
    """Calls waiting for their turn on the account now that go before a call of `priority` (the
    calls queue's backlog at that priority key or before, as the server counts it): a launch's
    calls come after them. 0 when the server does not say."""
    try:
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=settings.call_queue().task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
                report_stats=True,
            )
        )
    except RPCError:
        return 0
    return sum(
        int(stats.approximate_backlog_count)
        for key, stats in described.stats_by_priority_key.items()
        if key <= priority
    )


async def frozen_plan(client: Client, run_id: str) -> RunPlan | None:
    """The plan a run was started with (running or ended), from its own input; None when no
    run has this ID. Raises ValueError for a workflow that is not a run."""
    try:
        async for event in client.get_workflow_handle(run_id).fetch_history_events():
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [start] = await client.data_converter.decode(payloads, [RunInput])
            return start.plan  # type: ignore[no-any-return]
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return None


async def launched_before(client: Client, settings: Settings, run_id: str) -> Launched | None:
    """The run an idempotency key already started, as its launch said it: the PIN and number
    from its own input. None when there is none."""
    plan = await frozen_plan(client, run_id)
    if plan is None:
        return None
    if plan.has_bridge:  # idempotent: a first launch that failed after its start left none
        await register_callers(client, settings.task_queue, settings.pin_secret,
                               callers_of(plan, run_id, datetime.now(UTC)))  # fmt: skip
    return Launched(workflow_id=run_id, pin=plan.pin, dial_in_number=plan.dial_in_number, already=True)


async def launch(client: Client, settings: Settings, request: LaunchRequest) -> Launched:
    run_id = new_run_id(request.procedure, datetime.now(UTC), request.idempotency_key)
    if request.idempotency_key is not None:
        before = await launched_before(client, settings, run_id)
        if before is not None:
            return before
    mismatched = await problems_with_workers(client, settings)
    if mismatched:  # the run could not be read, or its PIN not checked: promise nothing
        raise InvalidLaunch(mismatched)
    bridge = request.procedure.has_conference()
    checked = prepare(
        request, settings, pin="0" * settings.pin_digits if bridge else None
    )  # refuse before any PIN
    ahead = await calls_waiting(client, settings, PRIORITY[checked.steps[0].objective])
    every_step = step_loads(checked, settings.calls_per_second, ahead)
    loads = check_capacity(checked, settings, request.force, ahead, every_step)
    reaching = reach(checked, every_step, settings.sms_per_second)
    pin = await reserve_pin(client, settings, run_id, request.max_duration) if bridge else None
    whole = prepare(request, settings, pin, run_id)
    names = ", ".join(p.name for p in whole.people[:5])
    more = len(whole.people) - 5
    summary = f"{whole.title}: {names}" + (f" +{more}" if more > 0 else "")
    plan, batches = hand_to_batches(whole, run_id, secrets.token_hex(3), settings.call_queue(), LATE_ANSWERS)
    try:
        await start_batches(client, settings, batches, whole.title)
        await client.start_workflow(
            ProcedureRun.run,
            RunInput(plan=plan, calls=settings.call_queue()),
            id=run_id,
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=summary[:200],
            static_details=plan.welcome or None,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.STATE, "running"),
                    SearchAttributePair(sa.PARTICIPANTS, len(whole.people)),
                    SearchAttributePair(sa.IN_CONFERENCE, 0),
                    SearchAttributePair(sa.PROCEDURE, plan.procedure),
                    SearchAttributePair(sa.LAUNCHED_BY, plan.launched_by or "unknown"),
                    SearchAttributePair(sa.CHANNEL, plan.channel),
                ]
            ),
        )
    except BaseException as exc:
        another = isinstance(exc, WorkflowAlreadyStartedError) and request.idempotency_key is not None
        if another or not await run_exists(client, run_id):  # this attempt's lease and batches serve nobody
            await withdraw(client, plan.pin_lease_id, [batch for batch, _ in batches])
        if another:
            before = await launched_before(client, settings, run_id)  # the same key, a moment sooner
            if before is not None:
                return before
        raise
    if plan.has_bridge:
        callers = callers_of(plan, run_id, datetime.now(UTC))
        await register_callers(client, settings.task_queue, settings.pin_secret, callers)
    return Launched(
        workflow_id=run_id, pin=pin, dial_in_number=plan.dial_in_number, over_capacity=loads, reach=reaching
    )
