"""The run as Temporal's Web UI shows it: markdown for the workflow's current details."""

from __future__ import annotations

from domain.run_view import RunView
from rendering.words import calls_line, person_state, sent_line, step_line


def current_details(view: RunView) -> str:
    bridge = f", {view.in_bridge}/{len(view.people)} in the bridge" if view.has_bridge else ""
    lines = [f"**{view.title}** ({view.procedure}) - {view.state}{bridge}"]
    lines += [f"\nStep {step.number}: {step_line(step)}" for step in view.steps]
    lines += [f"\n**Problem:** {problem}" for problem in view.problems]
    if view.recording_url:
        lines.append(f"\nRecording: {view.recording_url}")
    if view.batches:
        lines += ["", "| batch | step | destinations | reached |", "|---|---|---|---|"]
        lines += [f"| {b.workflow_id} | {b.step} | {b.size} | {b.counted} |" for b in view.batches]
    if view.people:
        lines += ["", "| person | now | calls | sent | rejoins |", "|---|---|---|---|---|"]
        for person in view.people:
            name = f"{person.name} (guest)" if person.guest else person.name
            row = [name, person_state(person), calls_line(person), sent_line(person), str(person.rejoins)]
            lines.append(f"| {' | '.join(row)} |")
    return "\n".join(lines)
