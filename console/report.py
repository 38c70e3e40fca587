"""A run's report: everything that happened, one row per event, for the printable page and the
CSV download. The JSON download is the run's view itself (`RunView`), the data twin of both.

Rows are read off the view in the order things happened; nothing is worked out again here.
"""

from __future__ import annotations

import csv
import io
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime

from domain.run_view import MEDIUM_LABELS, RunView

LATEST = datetime.max.replace(tzinfo=UTC)


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


COLUMNS = [f.name for f in fields(ReportRow)]


def report_rows(view: RunView) -> list[ReportRow]:
    rows = [ReportRow(view.started_at, "launched", by=view.launched_by, detail=f"channel {view.channel}")]
    names = {person.id: person.name for person in view.people}
    for person in view.people:
        for attempt in person.attempts:
            call = f"call {attempt.call_sid}" if attempt.call_sid else ""
            rows.append(
                ReportRow(attempt.placed_at or attempt.queued_at, "call", person.name,
                          MEDIUM_LABELS[attempt.medium], attempt.number, attempt.outcome, attempt.outcome_at,
                          detail="; ".join(part for part in (call, attempt.error or "") if part))
            )  # fmt: skip
        for note in person.notifications:
            purpose = (
                "alert message" if note.purpose == "alert"
                else "PIN invitation" if view.has_bridge else "closing message"
            )  # fmt: skip
            rows.append(
                ReportRow(note.sent_at, "message", person.name, MEDIUM_LABELS[note.channel], note.to,
                          "sent", detail=f"{purpose}, step {note.step}" if note.step else purpose)
            )  # fmt: skip
        if person.joined_at:
            rejoined = f"rejoined {person.rejoins} time(s)" if person.rejoins else ""
            rows.append(ReportRow(person.joined_at, "joined", person.name, detail=rejoined))
        if person.left_at:
            rows.append(ReportRow(person.left_at, "left", person.name))
        if person.too_late:
            late = f"too late for step {', '.join(person.too_late)}: not counted"
            rows.append(ReportRow(None, "too late", person.name, detail=late))
    for pin in view.pin_attempts:
        who = names.get(pin.participant_id or "", "guest" if pin.accepted else "")
        rows.append(ReportRow(pin.at, "pin", who, address=pin.from_number,
                              outcome="accepted" if pin.accepted else "refused"))  # fmt: skip
    for action in view.moderation:
        who = names.get(action.person_id, action.person_id)
        rows.append(
            ReportRow(action.at, "moderation", who, outcome=action.kind, by=action.by,
                      detail=f"channel {action.channel}")
        )  # fmt: skip
    if view.ended_at:
        rows.append(ReportRow(view.ended_at, "ended", by=view.ended_by, detail=view.end_reason or ""))
    if view.recording_url:
        rows.append(ReportRow(None, "recording", detail=view.recording_url))
    return sorted(rows, key=lambda row: row.at or LATEST)


def report_csv(view: RunView) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in report_rows(view):
        writer.writerow(
            [value.isoformat() if isinstance(value, datetime) else value for value in astuple(row)]
        )
    return out.getvalue()
