"""The benchmark's scenarios, each on a dev server you bring, in real time, with the carrier
simulator, callback server and mailbox on loopback; the worker runs as its own process
(`worker.py`), as in production, so its peak memory is its own. Each returns the figures it
measured; `bench.conference_scale` prints them as one table, and the smoke test runs them small.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from statistics import quantiles
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, Payloads, WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.query.v1 import WorkflowQuery
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, QueryWorkflowRequest
from temporalio.client import Client
from twilio.rest import Client as TwilioClient

from bench import population as pop
from carrier.simulator.client import place_inbound_call
from carrier.simulator.scenario import Behaviour, Scenario
from config import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN
from directory import index_size
from domain.events import EndRequest
from domain.run_view import PeopleQuery, RunView
from procedures.definitions import (
    Definitions,
    FormField,
    ProcedureDefinition,
    SchemeDefinition,
    SchemeMedium,
    StepDefinition,
)
from stack.loopback import SHIPPED, Harness, eventually, harness
from watch import read_view
from workflows.procedure_run import ProcedureRun

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / ".data" / "bench-logs"
PENDING_ACTIVITIES_LIMIT = 2_000


@dataclass
class Figure:
    """One row of the table: what was measured, against its goal when it has one."""

    name: str
    measured: str
    goal: str = ""
    passed: bool | None = None


@dataclass
class Result:
    scenario: str
    figures: list[Figure] = field(default_factory=list)

    def add(self, name: str, measured: str, goal: str = "", passed: bool | None = None) -> None:
        self.figures.append(Figure(name, measured, goal, passed))


def red_button(home_after: timedelta, deadline: timedelta, ring_timeout: timedelta) -> Definitions:
    """The shipped red button with these timings (the shipped ones: +1 min, +2 min, 30 s)."""
    media = (SchemeMedium(medium="voice_pro"), SchemeMedium(medium="voice_home", after=home_after))
    scheme = SchemeDefinition(name="CONFCALL", media=media, ring_timeout=ring_timeout)
    schemes = SHIPPED.schemes.model_copy(
        update={"schemes": tuple(scheme if s.name == "CONFCALL" else s for s in SHIPPED.schemes.schemes)}
    )
    red = SHIPPED.procedure("conference-call")
    step = red.steps[0].model_copy(update={"deadline": deadline})
    return Definitions(schemes=schemes, procedures={red.name: red.model_copy(update={"steps": (step,)})})


INFORM = ProcedureDefinition(
    name="inform",
    title="Information",
    form=(FormField(name="body"), FormField(name="Contacts.S001", kind="contacts")),
    steps=(
        StepDefinition(
            number="001",
            objective="information",
            percent=100,
            contact_fields=("Contacts.S001",),
            message="Planned outage tonight: #{Body}",
            scheme="NOTIFY",
            deadline=timedelta(minutes=10),
        ),
    ),
)
INFORMATION = Definitions(schemes=SHIPPED.schemes, procedures={INFORM.name: INFORM})
"""An information step to everyone by SMS and email at once (the shipped NOTIFY scheme)."""


def at(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["at"])


def dialled(call: dict[str, Any]) -> datetime:
    """When the carrier dialled a call: when its API took it, plus its wait in the account's
    queue (calls beyond the account's calls per second wait there, as Twilio's do)."""
    return at(call) + timedelta(milliseconds=call.get("queue_ms") or 0)


def most_in_one_second(times: list[datetime]) -> int:
    """The most calls starting within any window of one second."""
    times = sorted(times)
    return max(
        (sum(1 for t in times[i:] if t - start < timedelta(seconds=1)) for i, start in enumerate(times)),
        default=0,
    )


def mail_times(h: Harness) -> list[datetime]:
    """When the mailbox stored each email (its file's modification time)."""
    return [datetime.fromtimestamp(p.stat().st_mtime, UTC) for p in h.mailbox.folder.glob("*.eml")]


def mail_count(h: Harness) -> int:
    return len(list(h.mailbox.folder.glob("*.eml"))) if h.mailbox.folder.exists() else 0


def add_sent_twice(result: Result, h: Harness) -> None:
    """What a recipient would see twice, from the outside world's records: an SMS with the same
    text to a number already sent it (the carrier's journal), an email whose Message-ID the
    mailbox had already taken (every DATA counts, the duplicate's file does not)."""
    texts = Counter((e["to"], e["body"]) for e in h.carrier_entries("sms"))
    sms = sum(n - 1 for n in texts.values())
    emails = h.mailbox.handler.deliveries - mail_count(h)
    result.add(
        "sent twice (SMS / emails, carrier and mailbox)", f"{sms} / {emails}", "0 / 0", sms == emails == 0
    )


def late(moment: datetime, mark: datetime) -> float:
    return (moment - mark).total_seconds()


def worker_log(h: Harness) -> Any:
    """Where a worker of the bench logs, kept after the run for the investigation."""
    LOGS.mkdir(parents=True, exist_ok=True)
    return (LOGS / f"worker-{h.settings.task_queue}.log").open("ab")


@contextlib.asynccontextmanager
async def worker_process(h: Harness) -> AsyncIterator[Callable[[], int]]:
    """`worker.py` in a process of its own for this harness; yields a probe of its peak RSS (KiB)."""
    process = subprocess.Popen(  # noqa: ASYNC220 (started once; its end is awaited below)
        [sys.executable, "worker.py"], cwd=ROOT, env=h.worker_environment(), stderr=worker_log(h)
    )

    def peak_rss() -> int:
        status = Path(f"/proc/{process.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))

    try:
        yield peak_rss
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def polled(h: Harness) -> bool:
    """Whether a worker polls the harness's task queue yet."""
    response = await h.client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=h.client.namespace, task_queue=TaskQueue(name=h.settings.task_queue)
        )
    )
    return bool(response.pollers)


async def end(h: Harness, workflow_id: str) -> RunView:
    handle = h.client.get_workflow_handle_for(ProcedureRun.run, workflow_id)
    await handle.execute_update(ProcedureRun.end, EndRequest(reason="bench over"))
    return await handle.result()


async def history_figures(client: Client, workflow_ids: list[str]) -> tuple[int, int, int]:
    """The largest history among these runs (events, bytes) and the most activities any of them
    had pending at once."""
    most_events = most_bytes = most_pending = 0
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        most_events = max(most_events, len(history.events))
        most_bytes = max(most_bytes, sum(event.ByteSize() for event in history.events))
        most_pending = max(most_pending, pending_activities(history.events))
    return most_events, most_bytes, most_pending


async def largest_payload_of(client: Client, workflow_ids: list[str]) -> int:
    """Bytes of the largest payload in any of these workflows' histories."""
    sizes = [
        largest_payload((await client.get_workflow_handle(w).fetch_history()).events) for w in workflow_ids
    ]
    return max(sizes, default=0)


def largest_payload(events: Any) -> int:
    """Bytes of the largest payload these events carry: an input, result, signal, update, memo."""
    return max((size for event in events for size in payload_sizes(event)), default=0)


def payload_sizes(message: Message) -> Iterator[int]:
    if isinstance(message, Payload):
        yield message.ByteSize()
        return
    for descriptor, value in message.ListFields():
        kind = descriptor.message_type
        if kind is None:
            continue
        if kind.GetOptions().map_entry:
            items = value.values() if kind.fields_by_name["value"].message_type else []
        else:
            items = [value] if isinstance(value, Message) else value
        for item in items:
            yield from payload_sizes(item)


async def result_bytes(client: Client, workflow_id: str) -> int:
    """Bytes of a completed workflow's result, as its history holds it."""
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            return event.workflow_execution_completed_event_attributes.result.ByteSize()
    raise LookupError(f"{workflow_id} has not completed")


async def query_answer_bytes(client: Client, workflow_id: str, query: str, argument: Any = None) -> int:
    """Bytes of a query's answer, as the server sent it."""
    arguments = await client.data_converter.encode([argument]) if argument is not None else []
    response = await client.workflow_service.query_workflow(
        QueryWorkflowRequest(
            namespace=client.namespace,
            execution=WorkflowExecution(workflow_id=workflow_id),
            query=WorkflowQuery(query_type=query, query_args=Payloads(payloads=arguments)),
        )
    )
    return response.query_result.ByteSize()


def pending_activities(events: Any) -> int:
    """The most activities scheduled and not yet closed at any point of a history."""
    closing = {
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
    }
    pending = most = 0
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            pending += 1
            most = max(most, pending)
        elif event.event_type in closing:
            pending -= 1
    return most


def yes(ok: bool) -> bool:
    return ok


# --- (a) and (b): one conference at the bridge's size, nobody answering at work ------------------


async def conference_timeline(
    client: Client,
    tmp: Path,
    people: int = 250,
    home_after: timedelta = timedelta(minutes=1),
    deadline: timedelta = timedelta(minutes=2),
    ring_seconds: float = 20,
    calls_per_second: float = 500,
    answering_at_work: int = 0,
    name: str = "(a)",
    home_window: float | None = None,
) -> Result:
    """(a) the red button's timeline as the carrier and the mailbox saw it; (b) the same work
    calls placed by a plain asyncio loop over the twilio SDK against the same simulator. The
    first `answering_at_work` people answer at work; with `home_window`, every home call is
    dialled within that many seconds of its mark (the goal at 1 call/s). (b) is measured only
    where the account's rate does not pace the round (it fits in a second): below that, both
    wait for the carrier, and the plain loop's calls would sit in its queue ahead of ours."""
    result = Result(
        f"{name} {people}-person conference, {people - answering_at_work} work phones unanswered, "
        f"{calls_per_second:g} calls/s"
    )
    contacts = pop.write_contacts(tmp / "contacts.yaml", pop.contacts(people))
    scenario = pop.scenario(
        people,
        at_work=lambda n: "answer" if n < answering_at_work else "no-answer",
        at_home=lambda n: "no-answer",
        ring_seconds=ring_seconds,
    )
    definitions = red_button(home_after, deadline, timedelta(seconds=ring_seconds + 1))
    async with harness(client, tmp, contacts, scenario, calls_per_second) as h:
        compared = calls_per_second >= people
        plain = await plain_loop(h, [pop.work(n) for n in range(people)]) if compared else None
        async with worker_process(h):
            await eventually(lambda: polled(h), bool, 30)
            began = datetime.now(UTC)
            launched = await h.launch(*(pop.person_id(n) for n in range(people)), definitions=definitions)
            await eventually(
                lambda: (len(h.texted_numbers()), mail_count(h)),
                lambda c: c == (people, people),
                (deadline + timedelta(minutes=2)).total_seconds(),
                every=0.5,
            )
            report = await h.roster(launched)
            await end(h, launched.workflow_id)
    started = report.steps[0].started_at or report.started_at
    ours = [c for c in h.carrier_entries("call") if plain is None or c["sid"] not in plain.sids]
    work = [dialled(c) for c in ours if c["to"].startswith(pop.work(0)[:5])]
    home = [dialled(c) for c in ours if c["to"].startswith(pop.home(0)[:5])]
    queued = max((c.get("queue_ms") or 0 for c in ours), default=0)
    sms = [at(e) for e in h.carrier_entries("sms")]
    mails = mail_times(h)
    home_mark, pin_mark = started + home_after, started + deadline
    result.add("launch to the run's start", f"{late(started, began):.2f} s")
    result.add(f"work calls placed ({people})", f"last at +{late(max(work), started):.2f} s")
    first_home, last_home = late(min(home), home_mark), late(max(home), home_mark)
    result.add(
        f"first home call dialled vs +{home_after.seconds} s",
        f"{first_home:+.2f} s",
        "<= 0.5 s late",
        0 <= first_home <= 0.5,
    )
    if home_window is None:
        needs = (people - answering_at_work) / calls_per_second
        result.add(
            f"last home call dialled vs +{home_after.seconds} s ({len(home)} calls)",
            f"{last_home:+.2f} s",
            f"<= {needs + 1:.1f} s late",
            first_home >= 0 and last_home <= needs + 1,
        )
    else:
        offsets = ", ".join(f"{late(t, home_mark):+.2f}" for t in sorted(home))
        result.add(
            f"home calls dialled vs +{home_after.seconds} s",
            f"{offsets} s",
            f"+0.0..+{home_window:.1f} s",
            all(0 <= late(t, home_mark) <= home_window for t in home),
        )
    result.add("longest wait in the carrier's queue", f"{queued / 1000:.2f} s")
    last_sms, last_mail = late(max(sms), pin_mark), late(max(mails), pin_mark)
    result.add(
        f"last PIN SMS vs +{deadline.seconds} s ({len(sms)})",
        f"{last_sms:+.2f} s",
        "<= 2.0 s late",
        last_sms <= 2.0,
    )
    result.add(
        f"last PIN email vs +{deadline.seconds} s ({len(mails)})",
        f"{last_mail:+.2f} s",
        "<= 2.0 s late",
        last_mail <= 2.0,
    )
    add_sent_twice(result, h)
    if plain is None:
        return result
    reached_api = late(max(at(c) for c in ours if c["to"].startswith(pop.work(0)[:5])), began)
    result.add("(b) launch to last work call at the API: rallycall", f"{reached_api:.2f} s")
    result.add("(b) the same calls by a plain asyncio loop (twilio SDK)", f"{plain.seconds:.2f} s")
    ratio = reached_api / plain.seconds
    result.add("(b) rallycall / plain loop", f"{ratio:.2f}x", "<= 1.5x", ratio <= 1.5)
    result.add(
        "(b) launch to last work call dialled: rallycall / plain loop",
        f"{late(max(work), began):.2f} / {plain.dialled:.2f} s",
    )
    return result


@dataclass
class PlainLoop:
    seconds: float
    """To the last call the carrier's API took."""
    dialled: float
    """To the last call the carrier dialled (its account's rate applies to everyone)."""
    sids: set[str]


async def plain_loop(h: Harness, numbers: list[str]) -> PlainLoop:
    """What a team scripts without rallycall: every call created at once with the twilio SDK's
    async client, then wait for all. Timed from the first request to the last call the carrier
    saw."""
    from twilio.http.async_http_client import AsyncTwilioHttpClient

    http = AsyncTwilioHttpClient()
    twilio = TwilioClient(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, http_client=http, environment={})
    twilio.api.base_url = h.simulator_url
    twilio.edge = twilio.region = None
    began = datetime.now(UTC)
    try:
        calls = await asyncio.gather(
            *(
                twilio.calls.create_async(
                    to=number,
                    from_=h.settings.dial_in_number,
                    twiml="<Response><Say>Test</Say></Response>",
                    timeout=1,
                )
                for number in numbers
            )
        )
    finally:
        await http.close()
    sids = {call.sid for call in calls if call.sid}
    mine = [c for c in h.carrier_entries("call") if c["sid"] in sids]
    return PlainLoop(late(max(map(at, mine)), began), late(max(map(dialled, mine)), began), sids)


# --- (c) many conferences at once on one worker --------------------------------------------------


async def many_conferences(
    client: Client,
    tmp: Path,
    conferences: int = 100,
    size: int = 10,
    home_after: timedelta = timedelta(seconds=20),
    deadline: timedelta = timedelta(seconds=40),
    calls_per_second: float = 500,
    workers: int = 1,
) -> Result:
    """Launched at once on `workers` worker processes: PINs unique, each run's home calls and
    PIN messages within 2 s of their marks, the account's rate kept, each worker's peak memory."""
    on = "one worker" if workers == 1 else f"{workers} workers"
    result = Result(
        f"(c) {conferences} conferences of {size} launched at once, {on}, {calls_per_second:g} calls/s"
    )
    people = conferences * size
    contacts = pop.write_contacts(tmp / "contacts.yaml", pop.contacts(people))

    def at_work(n: int) -> Behaviour:
        return "answer" if n % 2 == 0 else "no-answer"

    scenario = pop.scenario(people, at_work=at_work, at_home=lambda n: "no-answer", ring_seconds=2)
    definitions = red_button(home_after, deadline, timedelta(seconds=5))
    async with (
        harness(client, tmp, contacts, scenario, calls_per_second) as h,
        contextlib.AsyncExitStack() as up,
    ):
        probes = [await up.enter_async_context(worker_process(h)) for _ in range(workers)]
        await eventually(lambda: polled(h), bool, 30)
        launched = await asyncio.gather(
            *(
                h.launch(*(pop.person_id(c * size + i) for i in range(size)), definitions=definitions)
                for c in range(conferences)
            )
        )
        index_workflows, index_entries = await index_size(h.client, h.settings.task_queue)
        await eventually(
            lambda: (len(h.texted_numbers()), mail_count(h)),
            lambda c: c == (people, people),
            (deadline + timedelta(minutes=2)).total_seconds(),
            every=0.5,  # the times are the carrier's and the mailbox's: polling only ends the wait
        )
        # one at a time, each polled again while the worker is too busy to answer within 5 s
        reports = [await eventually(partial(h.roster, run), bool, 120) for run in launched]
        await asyncio.gather(*(end(h, run.workflow_id) for run in launched))
        peak_kib = max(rss() for rss in probes)
    calls = h.carrier_entries("call")
    when = {c["to"]: dialled(c) for c in calls}
    texts = {e["to"]: at(e) for e in h.carrier_entries("sms")}
    worst_home = worst_pin = 0.0
    owed_home = [n for n in range(people) if at_work(n) != "answer"]
    home_placed = sum(1 for n in owed_home if pop.home(n) in when)
    for c, report in enumerate(reports):
        started = report.steps[0].started_at or report.started_at
        members = range(c * size, (c + 1) * size)
        homes = [late(when[pop.home(n)], started + home_after) for n in members if pop.home(n) in when]
        worst_home = max([worst_home, *(abs(x) for x in homes)])
        pins = [late(texts[pop.mobile(n)], started + deadline) for n in members]
        worst_pin = max([worst_pin, *pins])
    pins_unique = len({run.pin for run in launched}) == conferences
    result.add("PINs unique", f"{len({run.pin for run in launched})} of {conferences}", "all", pins_unique)
    held = f"{index_entries} in {index_workflows} workflows"
    result.add("caller index: the conferences' numbers", held, f"{3 * people}", index_entries == 3 * people)
    result.add(
        "home calls placed (not answered at work)",
        f"{home_placed} of {len(owed_home)}",
        "all",
        home_placed == len(owed_home),
    )
    unplaced = Counter(
        a.error or "" for r in reports for p in r.people for a in p.attempts if a.outcome == "not-placed"
    )
    for reason, count in unplaced.most_common(2):
        result.add(f"  not placed: {reason}"[:60], str(count))
    result.add(
        f"home calls placed vs each run's +{home_after.seconds} s (worst)",
        f"{worst_home:.2f} s" if home_placed else "none placed",
        "<= 2 s",
        bool(home_placed) and worst_home <= 2,
    )
    result.add(
        f"PIN SMS vs each run's +{deadline.seconds} s (worst)",
        f"{worst_pin:+.2f} s",
        "<= 2 s",
        worst_pin <= 2,
    )
    busiest = most_in_one_second([at(c) for c in calls])
    result.add(
        "calls in any 1 s at the carrier's API (most)",
        str(busiest),
        f"<= {2 * calls_per_second:g}",
        busiest <= 2 * calls_per_second,
    )
    queued = max((c.get("queue_ms") or 0 for c in calls), default=0)
    result.add("longest wait in the carrier's queue", f"{queued / 1000:.2f} s")
    add_sent_twice(result, h)
    result.add(
        "worker peak RSS (largest)", f"{peak_kib / 1024:.0f} MiB", "<= 250 MB", peak_kib * 1024 <= 250e6
    )
    return result


# --- (d) thousands in an information step ---------------------------------------------------------


async def information_step(client: Client, tmp: Path, people: int = 50_000) -> Result:
    """SMS and email to everyone through the step's batches, at the account's SMS rate: when the
    carrier sent them and the mailbox took them, the launch's own time, the largest history,
    payload and query answer, the worker's memory, and `status` accounting for everyone."""
    result = Result(f"(d) information step to {people} (SMS + email, no bridge)")
    contacts = pop.write_contacts(tmp / "contacts.yaml", pop.contacts(people, phones=False))
    async with harness(client, tmp, contacts, Scenario()) as h, worker_process(h) as peak_rss:
        await eventually(lambda: polled(h), bool, 30)
        fields = {"body": "22:00-23:00", "Contacts.S001": ",".join(pop.person_id(n) for n in range(people))}
        began, clock_began = time.perf_counter(), datetime.now(UTC)
        launched = await h.launch_procedure("inform", fields, definitions=INFORMATION)
        launch_seconds = time.perf_counter() - began
        await eventually(
            lambda: (len(h.texted_numbers()), mail_count(h)),
            lambda c: c == (people, people),
            max(300, people / 20),
            every=1,
        )
        sent = [dialled(entry) for entry in h.carrier_entries("sms")]
        mailed = mail_times(h)
        summary = await eventually(
            lambda: read_view(h.client, launched.workflow_id, with_batches=False),
            lambda v: v.steps[0].ended_at is not None,
            120,
        )
        counted_in, listed, delivered = await status_lines_of(h, launched.workflow_id)
        ids = [launched.workflow_id, *(b.workflow_id for b in summary.batches)]
        events, size, pending = await history_figures(h.client, ids)
        answer = await query_answer_bytes(h.client, launched.workflow_id, "view")
        page = await query_answer_bytes(h.client, ids[-1], "people", PeopleQuery(limit=1_000))
        rss = peak_rss()
        ended = await end_information(h, launched.workflow_id, ids[1:])
        result_size = await result_bytes(h.client, launched.workflow_id) if ended else None
        biggest = await largest_payload_of(h.client, ids)
    last_sms, last_mail = late(max(sent), clock_began), late(max(mailed), clock_began)
    result.add("launch (checks, 1 run and its batches started)", f"{launch_seconds:.1f} s")
    rate = h.settings.sms_per_second
    result.add(
        f"SMS sent by the carrier at {rate:g}/s, the last", f"+{last_sms:.1f} s", f"+{people / rate:.0f} s"
    )
    result.add("emails taken by the mailbox, the last", f"+{last_mail:.1f} s")
    result.add(
        "messages per second (SMS + email, launch to last)", f"{2 * people / max(last_sms, last_mail):.0f}"
    )
    result.add(
        "status --jsonl accounts for",
        f"{listed} people, {delivered} delivered, in {counted_in:.1f} s",
        f"{people}",
        listed == delivered == people,
    )
    add_sent_twice(result, h)
    result.add(
        f"largest history (run + {len(ids) - 1} batches)",
        f"{events} events, {size / 1024:.0f} KiB",
        "<= 10,240 events",
        events <= 10_240,
    )
    result.add(
        "most pending activities in one workflow",
        str(pending),
        f"<= {PENDING_ACTIVITIES_LIMIT}",
        pending <= PENDING_ACTIVITIES_LIMIT,
    )
    result_figure = kib(result_size) if result_size else "did not end"
    result_fits = result_size is not None and result_size <= WARNED_PAYLOAD
    result.add("run ended by `end`, its result", result_figure, "<= 256 KiB", result_fits)
    result.add("the run's view (query answer)", kib(answer), "<= 256 KiB", answer <= WARNED_PAYLOAD)
    result.add("a batch's page of people (query answer)", kib(page), "<= 256 KiB", page <= WARNED_PAYLOAD)
    result.add("largest payload in any history", kib(biggest), "<= 256 KiB", biggest <= WARNED_PAYLOAD)
    result.add("worker peak RSS", f"{rss / 1024:.0f} MiB")
    return result


async def status_lines_of(h: Harness, run_id: str) -> tuple[float, int, int]:
    """`starter.py status --jsonl`, as an operator runs it: seconds, people listed, delivered."""
    began = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "starter.py", "status", run_id, "--jsonl", cwd=ROOT, env=h.worker_environment(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    if process.returncode:
        raise RuntimeError(f"status failed: {err.decode()[-500:]}")
    _, *people = [json.loads(line) for line in out.splitlines()]
    return time.perf_counter() - began, len(people), sum(p["delivered_at"] is not None for p in people)


WARNED_PAYLOAD = 256 * 1024
"""Temporal's warning for one payload (2 MB is refused)."""


def kib(size: int) -> str:
    return f"{size / 1024:.1f} KiB"


async def end_information(h: Harness, workflow_id: str, batches: list[str]) -> bool:
    """A run without a bridge stays ten minutes for late answers: `end` closes it sooner, its
    batches with it. Whether `end` did, within 15 s; if not, everything is terminated."""
    handle = h.client.get_workflow_handle_for(ProcedureRun.run, workflow_id)
    await handle.execute_update(ProcedureRun.end, EndRequest(reason="bench over"))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(handle.result(), 15)
        return True
    for leftover in [workflow_id, *batches]:
        with contextlib.suppress(Exception):
            await h.client.get_workflow_handle(leftover).terminate("bench over")
    return False


# --- (e) dial-in ----------------------------------------------------------------------------------


async def dial_in(client: Client, tmp: Path, conferences: int = 10, callers: int = 100) -> Result:
    """Callers keying right PINs, all at once, into running conferences through the callback
    server's Voice URL. The goal's figure is how long the callback server took to answer the PIN's
    webhook with the TwiML that puts them in the bridge, as the carrier waited for it (the
    journal's `ms`); the time from the prompt's answer to the PIN's answer (the simulator's own
    keying and requests included) is shown beside it."""
    result = Result(f"(e) dial-in: {callers} callers at once into {conferences} running conferences")
    per_run = max(1, callers // conferences)
    people = conferences * per_run
    contacts = pop.write_contacts(tmp / "contacts.yaml", pop.contacts(people))
    scenario = pop.scenario(people, at_work=lambda n: "busy", at_home=lambda n: "busy", ring_seconds=0.1)
    definitions = red_button(timedelta(seconds=3), timedelta(seconds=6), timedelta(seconds=1))
    async with harness(client, tmp, contacts, scenario) as h, worker_process(h):
        await eventually(lambda: polled(h), bool, 30)
        launched = await asyncio.gather(
            *(
                h.launch(*(pop.person_id(c * per_run + i) for i in range(per_run)), definitions=definitions)
                for c in range(conferences)
            )
        )
        await eventually(lambda: len(h.texted_numbers()), lambda n: n == people, 60)
        answers = await asyncio.gather(
            *(
                place_inbound_call(h.simulator_url, pop.mobile(c * per_run + i), [run.pin])
                for c, run in enumerate(launched)
                for i in range(per_run)
            )
        )
        await asyncio.gather(*(end(h, run.workflow_id) for run in launched))
    joined = sum(1 for a in answers if a["joined"])
    prompts: dict[str, datetime] = {}
    latencies: list[float] = []
    answered_in: list[float] = []
    for entry in h.carrier_entries("webhook"):
        if entry["url"].endswith("/voice/inbound"):
            prompts[entry["sid"]] = at(entry)
        elif entry["url"].endswith("/voice/pin") and entry["sid"] in prompts:
            latencies.append(late(at(entry), prompts[entry["sid"]]) * 1000)
            answered_in.append(float(entry["ms"]))
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    result.add("callers admitted", f"{joined} of {len(answers)}", "all", joined == len(answers))
    result.add("PIN webhook answered (admitted), p50", f"{percentile(answered_in, 50):.0f} ms")
    worst = percentile(answered_in, 99)
    result.add("PIN webhook answered (admitted), p99", f"{worst:.0f} ms", "<= 250 ms", worst <= 250)
    result.add("prompt answered to PIN answered, p50", f"{p50:.0f} ms")
    result.add("prompt answered to PIN answered, p99", f"{p99:.0f} ms")
    return result


def percentile(values: list[float], p: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return quantiles(values, n=100, method="inclusive")[p - 1]
