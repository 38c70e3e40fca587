"""The run in a terminal: `status` as a table of lines, and the timeline `--wait` and `make run`
print, one line for each change between two views."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.run_view import MEDIUM_LABELS, BatchView, PersonView, RunView, StepView
from rendering.words import calls_line, person_state, sent_line, step_line

LATEST = datetime.max.replace(tzinfo=UTC)
OUTCOME_TEXT = {
    "answered": "{name} answered on {phone}",
    "no-answer": "{name} did not answer on {phone}",
    "busy": "{name}'s {phone} was busy",
    "failed": "{name} could not be called on {phone}",
    "machine": "{name}'s {phone} answered by a machine: hung up, not reached",
    "not-placed": "{name} was not called on {phone}",
}
Line = tuple[datetime | None, str]


def summary_lines(view: RunView) -> list[str]:
    """The run, its problems and its steps; people are listed apart (`person_line`), page by
    page for a run of any size."""
    bridge = f", {view.in_bridge}/{len(view.people)} in the bridge" if view.has_bridge else ""
    lines = [
        f"{view.title} {view.workflow_id}: {view.state}, "
        f"started {view.started_at:%Y-%m-%d %H:%M:%S} UTC "
        f"by {view.launched_by or '?'} ({view.channel}){bridge}"
    ]
    if view.end_reason:
        lines.append(f"  ended: {view.end_reason}" + (f" (by {view.ended_by})" if view.ended_by else ""))
    lines += [f"  PROBLEM: {problem}" for problem in view.problems]
    lines += [f"  step {step.number}: {step_line(step)}" for step in view.steps]
    return lines


def person_line(person: PersonView) -> str:
    mark = "IN " if person.in_conference else "   "
    extra = f", rejoins {person.rejoins}" if person.rejoins else ""
    extra += f", too late for step {', '.join(person.too_late)}" if person.too_late else ""
    name = f"{person.name} ({person.language})" if person.language else person.name
    return (
        f"  {mark} {name:<29} {person_state(person)}; calls: {calls_line(person)}; "
        f"sent: {sent_line(person)}{extra}"
    )


def changes(before: RunView | None, after: RunView) -> list[Line]:
    """What happened between two views, with the time it happened when known, in time order."""
    lines: list[Line] = []
    earlier = {s.number: s for s in before.steps} if before else {}
    for step in after.steps:
        lines += _step_changes(earlier.get(step.number), step)
    earlier_batches = {b.workflow_id: b for b in before.batches} if before else {}
    for batch in after.batches:
        lines += _batch_changes(earlier_batches.get(batch.workflow_id), batch)
    previous = {p.id: p for p in before.people} if before else {}
    for person in after.people:
        lines += _person_changes(previous.get(person.id), person, after.has_bridge, len(after.carriers) > 1)
    for problem in after.problems[len(before.problems) if before else 0 :]:
        lines.append((None, f"PROBLEM: {problem}"))
    if after.recording_url and (before is None or before.recording_url != after.recording_url):
        lines.append((None, f"recording: {after.recording_url}"))
    if after.state == "ended" and (before is None or before.state != "ended"):
        what = "conference" if after.has_bridge else "run"
        lines.append((after.ended_at, f"{what} ended: {after.end_reason}"))
    return sorted(lines, key=lambda line: line[0] or LATEST)


def clock(started: datetime, at: datetime | None) -> str:
    """`+01:02`: minutes and seconds since the run started."""
    moment = at or datetime.now(started.tzinfo)
    seconds = max(0, int((moment - started).total_seconds()))
    return f"+{seconds // 60:02d}:{seconds % 60:02d}"


def _step_changes(old: StepView | None, new: StepView) -> list[Line]:
    lines: list[Line] = []
    title = f"step {new.number} ({new.objective} {new.percent} %)"
    if new.started_at and not (old and old.started_at):
        lines.append((new.started_at, f"{title} started"))
    if new.ended_at and not (old and old.ended_at):
        verdict = "objective reached" if new.reached else "objective not reached"
        lines.append((new.ended_at, f"{title}: {verdict} ({new.counted}/{new.needed})"))
    if new.skipped and not (old and old.skipped):
        lines.append((None, f"{title} skipped: the previous objective was reached"))
    return lines


def _batch_changes(old: BatchView | None, new: BatchView) -> list[Line]:
    if old is None:
        return [(None, f"step {new.step}: batch {new.workflow_id} holds {new.size}")]
    if new.counted != old.counted or (new.step_over and not old.step_over):
        return [(None, f"step {new.step}: batch {new.workflow_id} reached {new.counted}/{new.size}")]
    return []


def _person_changes(old: PersonView | None, new: PersonView, bridge: bool, carriers: bool) -> list[Line]:
    """`carriers`: the run has more than one, so each call and SMS says which it went through."""
    lines: list[Line] = []
    old_attempts = {a.attempt_id: a for a in old.attempts} if old else {}
    for attempt in new.attempts:
        label = MEDIUM_LABELS[attempt.medium]
        seen = old_attempts.get(attempt.attempt_id)
        if attempt.placed_at and not (seen and seen.placed_at):
            through = f" through {attempt.carrier}" if carriers and attempt.carrier else ""
            moved = f" (moved: {'; '.join(attempt.carrier_faults)})" if attempt.carrier_faults else ""
            lines.append((attempt.placed_at, f"calling {new.name} on {label}{through}{moved}"))
        if attempt.outcome != "pending" and (seen is None or seen.outcome != attempt.outcome):
            detail = (
                f" ({attempt.error})" if attempt.error and attempt.outcome in ("failed", "not-placed") else ""
            )
            text = OUTCOME_TEXT[attempt.outcome].format(name=new.name, phone=label)
            lines.append((attempt.outcome_at, text + detail))
    for note in new.notifications[len(old.notifications) if old else 0 :]:
        channel = "SMS" if note.channel == "sms" else "email"
        what = {
            "alert": "message",
            "rejoin": "the way back (number and PIN)",
        }.get(note.purpose, "PIN invitation" if bridge else "closing message")
        through = f" through {note.carrier}" if carriers and note.carrier else ""
        lines.append((note.sent_at, f"{what} sent to {new.name} by {channel}{through}"))
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
        how = "dropped out of" if new.drops > (old.drops if old else 0) else "left"
        lines.append((new.left_at, f"{new.name} {how} the conference"))
    return lines
