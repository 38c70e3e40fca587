"""The words every renderer uses for the same thing, so the Web UI, the terminal, the report
and the console say it alike."""

from __future__ import annotations

from domain.run_view import MEDIUM_LABELS, CallAttempt, PersonView, StepView

STATE_WORDS = {
    "waiting": "not alerted yet",
    "queued": "waiting for its turn at the call rate",
    "calling": "being called",
    "in-bridge": "in the bridge",
    "left": "left the bridge",
    "answered": "answered",
    "acknowledged": "acknowledged",
    "reached": "reached",
    "not-reached": "not reached",
}


OUTCOME_WORDS = {
    "pending": "ringing",
    "answered": "answered",
    "no-answer": "no answer",
    "busy": "busy",
    "failed": "failed",
    "machine": "answering machine, hung up",
    "not-placed": "not called",
}
"""A call attempt's outcome as a crisis manager reads it (the view's `outcome` values)."""
OBJECTIVE_WORDS = {"conference": "in the bridge", "acknowledgement": "acknowledged", "information": "reached"}


def person_state(person: PersonView) -> str:
    """`being called on home phone`, `in the bridge`, ..."""
    if person.state == "calling" and person.calling_on:
        return f"being called on {MEDIUM_LABELS[person.calling_on]}"
    return STATE_WORDS[person.state]


def step_line(step: StepView) -> str:
    """`conference 100 % - reached (3/3)`, `- running`, `- skipped`..."""
    if step.skipped:
        outcome = "skipped"
    elif step.started_at is None:
        outcome = "not started"
    elif step.ended_at is None:
        outcome = f"running ({step.counted}/{step.needed})" if step.batched else "running"
    else:
        outcome = f"{'reached' if step.reached else 'not reached'} ({step.counted}/{step.needed})"
    return f"{step.objective} {step.percent} % - {outcome}"


def calls_line(person: PersonView) -> str:
    """`work phone: no answer, home phone: not called (why)`: a call not made says why."""
    return ", ".join(f"{MEDIUM_LABELS[a.medium]}: {outcome_words(a)}" for a in person.attempts) or "-"


def outcome_words(attempt: CallAttempt) -> str:
    words = OUTCOME_WORDS[attempt.outcome]
    if attempt.error and attempt.outcome in ("failed", "not-placed"):
        words += f" ({attempt.error})"
    return words


def sent_line(person: PersonView) -> str:
    return ", ".join(n.channel for n in person.notifications) or "-"
