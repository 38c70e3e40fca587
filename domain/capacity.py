"""Can the account's call rate reach everyone in time? Checked at launch, before anything starts.

The check replays each step's calls the way the run will place them, in the worst case where
nobody answers: the Temporal server starts the account's calls one after another at its calls
per second (on a calls queue of one partition), the first step's after the calls already
waiting on the account at that priority or before (other runs'); a call rings its scheme's full
ring timeout, and a person's next call waits until their previous one has rung out. A step is
*in time* when every call starts before its deadline and no later than its own round's pace
allows plus a tenth of the step's time (other runs' calls may go first: a few seconds late is
in time, half a round is not). Otherwise the launch is refused (unless forced) with these
figures. SMS and email wait for no turn and are not counted.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import timedelta

from domain.messages import SmsSize, fields_of, render, sms_size
from domain.plan import Alert, RunPlan, StepPlan
from domain.run_view import MEDIUM_LABELS
from i18n.languages import language_of


@dataclass
class RoundLoad:
    """One scheme time of a step, as it would go."""

    media: str
    due: timedelta
    planned_calls: int = 0
    """Its calls if nobody answered before their turn."""
    calls: int = 0
    last_start: timedelta | None = None
    """When its last call would start, from the step's start."""
    delayed: int = 0
    """Calls starting later than their own round's pace allows, beyond the tolerance."""
    not_alerted: int = 0
    """Calls the deadline cuts off."""


@dataclass
class StepLoad:
    step: str
    deadline: timedelta
    calls_per_second: float
    waiting: int = 0
    """Calls already waiting on the account when the run launches."""
    rounds: list[RoundLoad] = field(default_factory=list)

    @property
    def in_time(self) -> bool:
        return not any(r.delayed or r.not_alerted for r in self.rounds)

    def describe(self) -> str:
        """`step 001: at 1 call/s with nobody answering, the work phone round at +0:00 needs
        4 min 10 s for its 250 calls; ...`"""
        parts = []
        for r in self.rounds:
            text = f"the {r.media} round at {_clock(r.due)}"
            if r.planned_calls:
                text += f" needs {_duration(timedelta(seconds=r.planned_calls / self.calls_per_second))}"
                text += f" for its {r.planned_calls} calls"
            if r.calls:
                text += f"; {r.calls} would be placed, the last at {_clock(r.last_start or r.due)}"
            if r.delayed:
                text += f", {r.delayed} alerted late"
            if r.not_alerted:
                text += f", {r.not_alerted} not alerted before the deadline at {_clock(self.deadline)}"
            parts.append(text)
        ahead = f" and {self.waiting} calls of other runs waiting" if self.waiting else ""
        return (
            f"step {self.step}: at {self.calls_per_second:g} call/s with nobody answering{ahead}, "
            + "; ".join(parts)
        )


def capacity(plan: RunPlan, calls_per_second: float, waiting: int = 0) -> list[StepLoad]:
    """Every step with a scheme time the account's call rate cannot keep (empty: all in time)."""
    return [load for load in step_loads(plan, calls_per_second, waiting) if not load.in_time]


def step_loads(plan: RunPlan, calls_per_second: float, waiting: int = 0) -> list[StepLoad]:
    """Each step's calls replayed. `waiting`: calls already waiting on the account that go
    before the first step's; later steps start minutes on, when those have long gone."""
    return [
        step_load(plan, step, calls_per_second, waiting if index == 0 else 0)
        for index, step in enumerate(plan.steps)
    ]


def step_load(plan: RunPlan, step: StepPlan, calls_per_second: float, waiting: int = 0) -> StepLoad:
    """Replay the step's alerts in the order and at the pace the run would have them."""
    load = StepLoad(step.number, step.deadline, calls_per_second, waiting)
    pace = timedelta(seconds=1 / calls_per_second)
    rounds: dict[timedelta, RoundLoad] = {}
    for r in plan.rounds(step):
        if r.after < step.deadline:
            rounds[r.after] = RoundLoad(
                " / ".join(dict.fromkeys(MEDIUM_LABELS[a.medium] for a in r.alerts)), r.after
            )
    per_person: dict[str, list[Alert]] = {cid: [] for cid in step.destinations}
    for alert in plan.alerts(step):
        if alert.address and alert.after < step.deadline:
            per_person[alert.contact.id].append(alert)
            rounds[alert.after].planned_calls += alert.is_call
    for queue in per_person.values():
        queue.sort(key=lambda alert: alert.after)
    # (when ready, launch order, person, which alert): ready at its scheme time, or when the
    # person's previous call has rung out if that is later (a call that never starts holds
    # their next one until the deadline)
    ready = [(queue[0].after, n, cid, 0) for n, (cid, queue) in enumerate(per_person.items()) if queue]
    heapq.heapify(ready)
    next_turn = pace * waiting
    tolerance = step.deadline / 10
    own_calls = dict.fromkeys(rounds, 0)
    """Each round's calls so far: alone, its k-th call would start k paces after the round."""
    while ready:
        at, n, cid, index = heapq.heappop(ready)
        alert = per_person[cid][index]
        load_round = rounds[alert.after]
        settled = at
        if alert.is_call:
            start = max(at, next_turn)
            if start >= step.deadline:
                load_round.not_alerted += 1
                settled = step.deadline  # never started: it holds their next call until then
            else:
                next_turn = start + pace
                load_round.calls += 1
                load_round.last_start = start
                settled = start + plan.scheme_for(step, alert.contact).ring_timeout
                alone = alert.after + pace * own_calls[alert.after]
                own_calls[alert.after] += 1
                load_round.delayed += start > alone + tolerance
        if index + 1 < len(per_person[cid]):
            following = per_person[cid][index + 1]
            heapq.heappush(ready, (max(following.after, settled), n, cid, index + 1))
    load.rounds = [rounds[after] for after in sorted(rounds)]
    return load


def _duration(span: timedelta) -> str:
    minutes, seconds = divmod(round(span.total_seconds()), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def _clock(offset: timedelta) -> str:
    seconds = int(offset.total_seconds())
    return f"+{seconds // 60}:{seconds % 60:02d}"


@dataclass
class StepReach:
    """How long the carrier's rates take to alert a step's destinations, as the launch says it:
    the calls if nobody answers (at the account's calls per second) and the SMS (at its SMS
    rate), from the step's start. Emails go as fast as the mail server takes them."""

    step: str
    destinations: int
    calls: int
    last_call: timedelta | None
    sms: int
    last_sms: timedelta | None
    emails: int
    deadline: timedelta
    late: bool
    """Some calls or SMS would go after their turn's tolerance or the deadline."""
    languages: dict[str, int] = field(default_factory=dict)
    """How many destinations are served in each language."""
    pin_sms: dict[str, SmsSize] = field(default_factory=dict)
    """By language, how the post-objective SMS travels: the longest of that language's."""
    served_otherwise: list[str] = field(default_factory=list)
    """Who is not served entirely in their own language, and in what instead."""

    def as_json(self) -> dict[str, object]:
        """For `--json` and the console's API: times in seconds from the step's start, and
        `says`, the sentence the CLI prints."""
        seconds = {
            name: None if value is None else value.total_seconds()
            for name, value in (
                ("last_call", self.last_call),
                ("last_sms", self.last_sms),
                ("deadline", self.deadline),
            )
        }
        sizes = {language: size.model_dump() for language, size in self.pin_sms.items()}
        return {**asdict(self), **seconds, "pin_sms": sizes, "says": self.describe()}

    def describe(self) -> str:
        """`step 001: 50000 people; 50000 SMS at 100/s, the last leaving the carrier at +8:20;
        50000 emails (as fast as the mail server takes them); deadline +10:00`"""
        parts = [f"step {self.step}: {self.destinations} {'person' if self.destinations == 1 else 'people'}"]
        if self.calls:
            parts.append(
                f"{self.calls} calls if nobody answers, the last at {_clock(self.last_call or timedelta())}"
            )
        if self.sms:
            parts.append(
                f"{self.sms} SMS, the last leaving the carrier at {_clock(self.last_sms or timedelta())}"
            )
        if self.emails:
            parts.append(f"{self.emails} emails (as fast as the mail server takes them)")
        if len(self.languages) > 1:
            parts.append("in " + ", ".join(f"{lang} {count}" for lang, count in self.languages.items()))
        parts += self.served_otherwise
        if self.pin_sms:
            sizes = ", ".join(f"{lang} {size.described}" for lang, size in self.pin_sms.items())
            parts.append(f"PIN SMS {sizes}")
        late = " (the carrier's rates reach some late)" if self.late else ""
        return "; ".join(parts) + f"; deadline {_clock(self.deadline)}{late}"


def reach(plan: RunPlan, loads: list[StepLoad], sms_per_second: float) -> list[StepReach]:
    """Each step's alerts at the account's rates: its calls as `step_loads` replayed them, and
    an SMS due at its scheme time at the next turn of the account's SMS queue."""
    return [
        step_reach(plan, step, load, sms_per_second) for step, load in zip(plan.steps, loads, strict=True)
    ]


def step_reach(plan: RunPlan, step: StepPlan, calls: StepLoad, sms_per_second: float) -> StepReach:
    starts = [r.last_start for r in calls.rounds if r.last_start is not None]
    due = [a for a in plan.alerts(step) if a.address and a.after < step.deadline]
    sms = sorted(a.after for a in due if a.medium == "sms")
    last_sms = _last_turn(sms, sms_per_second)
    return StepReach(
        step=step.number,
        destinations=step.size,
        calls=sum(r.calls for r in calls.rounds),
        last_call=max(starts, default=None),
        sms=len(sms),
        last_sms=last_sms,
        emails=sum(a.medium == "email" for a in due),
        deadline=step.deadline,
        late=not calls.in_time or (last_sms is not None and last_sms >= step.deadline),
        languages=dict(sorted(Counter(plan.language_for(plan.person(c)) for c in step.destinations).items())),
        pin_sms=pin_sms_sizes(plan, step),
        served_otherwise=served_otherwise(plan, step),
    )


def served_otherwise(plan: RunPlan, step: StepPlan) -> list[str]:
    """Nothing silent: who asked for a language rallycall does not ship (`es`: served in the
    run's), and who is served in a language the procedure wrote no text in (they hear the
    prompts in theirs, and read the procedure's texts in its language)."""
    asked: Counter[tuple[str, str]] = Counter()
    served: Counter[str] = Counter()
    for contact_id in step.destinations:
        contact = plan.person(contact_id)
        language = plan.language_for(contact)
        served[language] += 1
        if contact.language and language_of(contact.language) != language:
            asked[(contact.language, language)] += 1
    notes = [
        f"{n} asked for {tag}, not shipped: served in {lang}" for (tag, lang), n in sorted(asked.items())
    ]
    written = set(step.messages) if len(step.messages) > 1 else set(served)  # one text: the launcher's
    if step.post_objective is not None:
        written &= {step.post_objective.language, *step.post_objective.versions}
    for language, count in sorted(served.items()):
        if plan.language and language not in written:
            notes.append(
                f"{count} in {language} read the procedure's {step.message_language or plan.language} texts"
            )
    return notes


def pin_sms_sizes(plan: RunPlan, step: StepPlan) -> dict[str, SmsSize]:
    """The post-objective SMS's parts in each language, as its longest recipient's text takes."""
    if step.post_objective is None:
        return {}
    largest: dict[str, SmsSize] = {}
    for contact_id in step.destinations:
        contact = plan.person(contact_id)
        if not contact.mobile:
            continue
        version = step.post_objective.in_language(plan.language_for(contact))
        source = version.sms or version.body
        if version.language in largest and not fields_of(source) - set(plan.fields):
            continue  # the same text for everyone in this language: measured once
        size = sms_size(render(source, plan.post_fields(contact)))
        held = largest.get(version.language)
        if held is None or (size.segments, size.units) > (held.segments, held.units):
            largest[version.language] = size
    return dict(sorted(largest.items()))


def _last_turn(due: list[timedelta], per_second: float) -> timedelta | None:
    """When the last of these goes, each at its time or the queue's next turn if later."""
    pace, turn, last = timedelta(seconds=1 / per_second), timedelta(), None
    for at in due:
        last = max(at, turn)
        turn = last + pace
    return last
