"""Follow a conference in a terminal: each roster change becomes one timeline line.

Used by `starter.py conference --wait` and by the demo of `make run`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from domain.conference import ConferenceReport, ParticipantStatus, StepResult
from domain.roster import MEDIUM_LABELS
from workflows.procedure_run import ProcedureRun

LATEST = datetime.max.replace(tzinfo=UTC)
OUTCOME_TEXT = {
    "answered": "{name} answered on {phone}",
    "no-answer": "{name} did not answer on {phone}",
    "busy": "{name}'s {phone} was busy",
    "failed": "{name} could not be called on {phone}",
    "machine": "{name}'s {phone} answered by a machine: hung up, not reached",
}


def changes(before: ConferenceReport | None, after: ConferenceReport) -> list[tuple[datetime | None, str]]:
    """What happened between two roster snapshots, with the time it happened when known."""
    lines: list[tuple[datetime | None, str]] = []
    earlier = {s.number: s for s in before.steps} if before else {}
    for step in after.steps:
        lines += _step_changes(earlier.get(step.number), step)
    previous = {p.id: p for p in before.participants} if before else {}
    bridge = any(step.objective == "conference" for step in after.steps)
    for person in after.participants:
        lines += _participant_changes(previous.get(person.id), person, bridge)
    for problem in after.problems[len(before.problems) if before else 0 :]:
        lines.append((None, f"PROBLEM: {problem}"))
    if after.recording_url and (before is None or before.recording_url != after.recording_url):
        lines.append((None, f"recording: {after.recording_url}"))
    if after.state == "ended" and (before is None or before.state != "ended"):
        lines.append((after.ended_at, f"conference ended: {after.end_reason}"))
    return sorted(lines, key=lambda line: line[0] or LATEST)


def _step_changes(old: StepResult | None, new: StepResult) -> list[tuple[datetime | None, str]]:
    lines: list[tuple[datetime | None, str]] = []
    title = f"step {new.number} ({new.objective} {new.percent} %)"
    if new.started_at and not (old and old.started_at):
        lines.append((new.started_at, f"{title} started"))
    if new.ended_at and not (old and old.ended_at):
        verdict = "objective reached" if new.reached else "objective not reached"
        lines.append((new.ended_at, f"{title}: {verdict} ({new.counted}/{new.needed})"))
    if new.skipped and not (old and old.skipped):
        lines.append((None, f"{title} skipped: the previous objective was reached"))
    return lines


def _participant_changes(
    old: ParticipantStatus | None, new: ParticipantStatus, bridge: bool
) -> list[tuple[datetime | None, str]]:
    lines: list[tuple[datetime | None, str]] = []
    old_attempts = {a.attempt_id: a for a in old.attempts} if old else {}
    for attempt in new.attempts:
        label = MEDIUM_LABELS[attempt.medium]
        seen = old_attempts.get(attempt.attempt_id)
        if seen is None:
            lines.append((attempt.placed_at, f"calling {new.name} on {label}"))
        if attempt.outcome != "pending" and (seen is None or seen.outcome != attempt.outcome):
            detail = f" ({attempt.error})" if attempt.error and attempt.outcome == "failed" else ""
            text = OUTCOME_TEXT[attempt.outcome].format(name=new.name, phone=label)
            lines.append((attempt.outcome_at, text + detail))
    for note in new.notifications[len(old.notifications) if old else 0 :]:
        channel = "SMS" if note.channel == "sms" else "email"
        what = "message" if note.purpose == "alert" else "PIN invitation" if bridge else "closing message"
        lines.append((note.sent_at, f"{what} sent to {new.name} by {channel}"))
    if new.acknowledged_at and not (old and old.acknowledged_at):
        lines.append((new.acknowledged_at, f"{new.name} acknowledged"))
    if new.delivered_at and not (old and old.delivered_at):
        lines.append((new.delivered_at, f"{new.name} got the message"))
    for step in new.too_late[len(old.too_late) if old else 0 :]:
        lines.append((None, f"{new.name}: too late for step {step}, not counted"))
    was_in = old.in_conference if old else False
    if new.in_conference and not was_in:
        how = f"rejoined with the PIN (rejoin {new.rejoins})" if new.rejoins else "is in the conference"
        at = None if new.rejoins else new.joined_at
        lines.append((at, f"{new.name} {'(guest) ' if new.guest else ''}{how}"))
    elif was_in and not new.in_conference:
        lines.append((new.left_at, f"{new.name} left the conference"))
    return lines


async def follow(
    client: Client,
    workflow_id: str,
    emit: Callable[[str], None],
    *,
    poll_seconds: float = 0.5,
) -> ConferenceReport | None:
    """Print the timeline until the conference ends; returns the final report."""
    handle = client.get_workflow_handle_for(ProcedureRun.run, workflow_id)
    last: ConferenceReport | None = None
    while True:
        description = await handle.describe()
        try:
            if description.status == WorkflowExecutionStatus.RUNNING:
                report = await handle.query(ProcedureRun.current_roster, rpc_timeout=timedelta(seconds=5))
            elif description.status == WorkflowExecutionStatus.COMPLETED:
                report = await handle.result()
            else:
                emit(f"conference is {description.status.name.lower() if description.status else 'gone'}")
                return last
        except RPCError:
            await asyncio.sleep(poll_seconds)
            continue
        for at, text in changes(last, report):
            emit(f"{_clock(report.started_at, at)}  {text}")
        last = report
        if report.state == "ended":
            return report
        await asyncio.sleep(poll_seconds)


def _clock(started: datetime, at: datetime | None) -> str:
    moment = at or datetime.now(started.tzinfo)
    seconds = max(0, int((moment - started).total_seconds()))
    return f"+{seconds // 60:02d}:{seconds % 60:02d}"
