"""A run's report: everything that happened, one row per event, for the printable page and the
CSV download. The JSON download is the run's view itself (`RunView`), the data twin of both.

Rows are read off the view; nothing is worked out again here. The run's own events come first,
in the order they happened: its launch, its own people's (everyone's, in a run without
batches), the PINs keyed in, moderator actions, its end. Then each batch's people, in roster
order, each one's events in the order they happened: the CSV is written as they are read, at
any size (sort it by `at` for one timeline).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime
from typing import Any

from domain.run_view import MEDIUM_LABELS, PersonView, RunView

LATEST = datetime.max.replace(tzinfo=UTC)
LISTED = 1_000
"""The most people the printable report lists (and the JSON download builds whole); a larger
run's report gives its figures and the CSV."""


@dataclass(frozen=True)
class ReportRow:
    at: datetime | None
    event: str
    """launched, call, message, pin, joined, left, too late, moderation, ended, recording."""
    person: str = ""
    medium: str = ""
    address: str = ""
    """The number called or texted, the email address, or the number a PIN came from."""
    outcome: str = ""
    outcome_at: datetime | None = None
    by: str = ""
    detail: str = ""
    person_id: str = ""
    """The person's id in the contacts (a name may be shared); added after the others, so older
    readers keep theirs."""
    language: str = ""
    """The language the person is served in (`fr`; "" in a run launched before 0.2.0); added
    after the others, so older readers keep theirs."""
    carrier: str = ""
    """The carrier a call or SMS went through ("" before 0.2.0 and for email); added last, as
    every new column is."""


COLUMNS = [f.name for f in fields(ReportRow)]


def in_time_order(rows: Iterable[ReportRow]) -> list[ReportRow]:
    return sorted(rows, key=lambda row: row.at or LATEST)


def report_rows(view: RunView) -> list[ReportRow]:
    """The run's own events in time order (a run without batches: all of them)."""
    rows = [ReportRow(view.started_at, "launched", by=view.launched_by, detail=f"channel {view.channel}")]
    names = {person.id: person.name for person in view.people}
    languages = {person.id: person.language for person in view.people}
    for person in view.people:
        rows += person_rows(person, view.has_bridge)
    for pin in view.pin_attempts:
        who = names.get(pin.participant_id or "", "guest" if pin.accepted else "")
        locked = f"turned away from now on ({pin.turned_away} limit)" if pin.turned_away else ""
        rows.append(ReportRow(pin.at, "pin", who, address=pin.from_number,
                              outcome="accepted" if pin.accepted else "refused",
                              detail=locked,
                              person_id=pin.participant_id or "",
                              language=languages.get(pin.participant_id or "", "")))  # fmt: skip
    for action in view.moderation:
        who = names.get(action.person_id, action.person_id)
        rows.append(
            ReportRow(action.at, "moderation", who, outcome=action.kind, by=action.by,
                      detail=f"channel {action.channel}", person_id=action.person_id,
                      language=languages.get(action.person_id, ""))
        )  # fmt: skip
    if view.ended_at:
        rows.append(ReportRow(view.ended_at, "ended", by=view.ended_by, detail=view.end_reason or ""))
    if view.recording_url:
        rows.append(ReportRow(None, "recording", detail=view.recording_url))
    return in_time_order(rows)


def person_rows(person: PersonView, has_bridge: bool) -> list[ReportRow]:
    """One person's calls, messages, joins and leaves, in the order they were recorded."""

    def row(at: datetime | None, event: str, **details: Any) -> ReportRow:
        return ReportRow(at, event, person.name, person_id=person.id, language=person.language, **details)

    rows = []
    for attempt in person.attempts:
        call = f"call {attempt.call_sid}" if attempt.call_sid else ""
        moved = [f"moved off {fault}" for fault in attempt.carrier_faults]
        rows.append(
            row(attempt.placed_at or attempt.queued_at, "call", medium=MEDIUM_LABELS[attempt.medium],
                address=attempt.number, outcome=attempt.outcome, outcome_at=attempt.outcome_at,
                detail="; ".join(part for part in (call, attempt.error or "", *moved) if part),
                carrier=attempt.carrier)
        )  # fmt: skip
    for note in person.notifications:
        purpose = (
            "alert message" if note.purpose == "alert"
            else "the way back" if note.purpose == "rejoin"
            else "PIN invitation" if has_bridge else "closing message"
        )  # fmt: skip
        rows.append(
            row(note.sent_at, "message", medium=MEDIUM_LABELS[note.channel], address=note.to, outcome="sent",
                detail=f"{purpose}, step {note.step}" if note.step else purpose, carrier=note.carrier)
        )  # fmt: skip
    if person.joined_at:
        rejoined = f"rejoined {person.rejoins} time(s)" if person.rejoins else ""
        rows.append(row(person.joined_at, "joined", detail=rejoined))
    if person.left_at:
        rows.append(row(person.left_at, "left"))
    if person.too_late:
        late = f"too late for step {', '.join(person.too_late)}: not counted"
        rows.append(row(None, "too late", detail=late))
    return rows


def report_rows_with(summary: RunView, people: Iterable[PersonView]) -> list[ReportRow]:
    """The report's rows of a run whose batches' people are all at hand (a small run)."""
    return report_rows(summary) + [
        row for person in people for row in in_time_order(person_rows(person, summary.has_bridge))
    ]


def csv_text(rows: Iterable[ReportRow], *, header: bool = False) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(
            [value.isoformat() if isinstance(value, datetime) else value for value in astuple(row)]
        )
    return out.getvalue()


def report_csv(view: RunView) -> str:
    return csv_text(report_rows(view), header=True)


async def report_csv_parts(summary: RunView, batch_people: AsyncIterator[PersonView]) -> AsyncIterator[str]:
    """The CSV as the batches' people come: the run's own rows, then a person's at a time."""
    yield report_csv(summary)
    async for person in batch_people:
        yield csv_text(in_time_order(person_rows(person, summary.has_bridge)))
