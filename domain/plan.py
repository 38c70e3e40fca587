"""A launched procedure's plan, frozen into the workflow input: its people, the alert schemes
they are reached by, its steps, what each says, and when each gives up.

The launcher builds it from the definitions (`procedures/`), the contacts and the launch form,
so a running procedure never changes when a definition, a contact or a scheme is edited. It is
kept compact (schemes by name, not one alert per person and medium), because a step may have
thousands of destinations and every byte of it is in the workflow history.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from itertools import groupby
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.contacts import Contact
from domain.speech import Speech, plain, spoken
from i18n.languages import served

Medium = Literal["voice_pro", "voice_home", "voice_mobile", "sms", "email"]
VoiceMedium = Literal["voice_pro", "voice_home", "voice_mobile"]
VOICE_MEDIA: tuple[VoiceMedium, ...] = ("voice_pro", "voice_home", "voice_mobile")
Objective = Literal["conference", "acknowledgement", "information"]
LaunchChannel = Literal["cli", "web", "cmc", "procedure"]
DEFAULT_MAX_DURATION = timedelta(hours=4)
ADDRESS_OF: dict[Medium, str] = {
    "voice_pro": "voice_pro",
    "voice_home": "voice_home",
    "voice_mobile": "mobile",
    "sms": "mobile",
    "email": "email",
}
"""Which of a contact's fields each medium uses."""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class SchemeMedium(Frozen):
    medium: Medium
    after: timedelta = timedelta(0)
    """Counted from the start of the step."""


class SchemePlan(Frozen):
    """An alert scheme as it was when the run was launched."""

    name: str
    media: tuple[SchemeMedium, ...]
    ring_timeout: timedelta = timedelta(seconds=30)


class PostText(Frozen):
    """A post-objective message in one language (template sources)."""

    subject: str
    body: str
    sms: str | None = None
    """What the SMS says; the body when absent."""
    language: str = ""
    """The language it is written in ("" before 0.2.0)."""


class PostObjective(PostText):
    """Sent by SMS and email to the step's destinations when the step ends, in the procedure's
    default language and in any other it was written in."""

    versions: dict[str, PostText] = {}
    """The same message in other languages, by language."""

    def in_language(self, language: str) -> PostText:
        """The version for someone served in `language`: theirs if written, else the default."""
        return self.versions.get(language, self)


class StepPlan(Frozen):
    number: str
    objective: Objective
    percent: int = Field(ge=1, le=100)
    run: Literal["always", "if_previous_not_reached"] = "always"
    destinations: tuple[str, ...]
    """Contact ids, all among the run's people."""
    scheme: str | None = None
    """One scheme for every destination; None: each contact's own, else the run's default."""
    message: str = ""
    """Already rendered: spoken on calls (before the bridge, or with the acknowledgement
    prompt) and sent by the sms and email media; in `message_language`."""
    message_language: str = ""
    """The language of `message`: the procedure's default ("" before 0.2.0)."""
    messages: dict[str, Speech] = {}
    """The message in each language its procedure holds, as spoken: the launcher's own text
    (`#{Body}`) is a part in the language the launcher wrote it in."""
    deadline: timedelta
    post_objective: PostObjective | None = None
    batch_sizes: tuple[int, ...] = ()
    """For a step without a bridge, in the run's plan: its destinations were frozen at launch
    into batches of these sizes (`StepBatch`), and `destinations` is empty here."""

    @property
    def size(self) -> int:
        """How many destinations the step has, wherever they are listed."""
        return len(self.destinations) + sum(self.batch_sizes)

    def batches(self, prefix: str) -> list[tuple[str, int]]:
        """The step's batches started at launch, in order: their workflow IDs and sizes."""
        return [(batch_id(prefix, self.number, n), size) for n, size in enumerate(self.batch_sizes, start=1)]

    def needed(self) -> int:
        """How many destinations make the objective: `percent` of them, rounded up."""
        return math.ceil(self.percent * self.size / 100)

    @property
    def has_bridge(self) -> bool:
        return self.objective == "conference"

    def said_to(self, language: str) -> Speech:
        """The message as someone served in `language` hears it: their version if the
        procedure holds one, else the default one."""
        return self.messages.get(language) or spoken(self.message, self.message_language)

    def text_for(self, language: str) -> tuple[str, str]:
        """The message as an SMS or email to someone served in `language` carries it, and the
        language that text is in."""
        if language in self.messages:
            return plain(self.messages[language]), language
        return self.message, self.message_language


def post_fields(fields: dict[str, str], contact: Contact, call_me_link: str | None) -> dict[str, object]:
    """A post-objective message's fields for one person: the launch's, their own
    (`#{Contact.Name}`) and, when the procedure offers it, their call-me link."""
    personal: dict[str, object] = {**fields, "Contact": {"Id": contact.id, "Name": contact.name}}
    if call_me_link is not None:
        personal["CallMeLink"] = call_me_link
    return personal


def batch_id(prefix: str, step_number: str, index: int) -> str:
    """`prefix`: the run's ID for batches a run started itself (before 0.2.0); the run's ID and
    its launch attempt's mark for batches a launcher started (`RunPlan.batch_prefix`)."""
    return f"{prefix}-step{step_number}-batch{index:03d}"


@dataclass(frozen=True)
class Alert:
    """Try `medium` for this destination `after` the step started, unless already reached.
    `attempt_id` stays unique when a scheme lists the same medium twice."""

    step: str
    contact: Contact
    index: int
    medium: Medium
    after: timedelta
    tag: str = ""
    """Names an attempt outside the scheme (`again1`: a moderator's "call again now")."""

    @property
    def attempt_id(self) -> str:
        return f"{self.step}/{self.contact.id}/{self.tag or self.index}"

    @property
    def address(self) -> str | None:
        value: str | None = getattr(self.contact, ADDRESS_OF[self.medium])
        return value

    @property
    def is_call(self) -> bool:
        return self.medium in VOICE_MEDIA


@dataclass(frozen=True)
class Round:
    """The alerts of one step due at the same moment."""

    after: timedelta
    alerts: tuple[Alert, ...]


class RunPlan(Frozen):
    """Everything a run needs, resolved and validated by the launcher."""

    procedure: str
    title: str
    steps: tuple[StepPlan, ...]
    people: tuple[Contact, ...]
    """Every destination of every step."""
    schemes: dict[str, SchemePlan]
    """The schemes the steps use, by name."""
    default_scheme: str
    fields: dict[str, str] = {}
    """The launch form's text fields, by the name messages use (`Body`)."""
    dial_in_number: str
    carriers: dict[str, str] = {}
    """The carriers in order, each with its dial-in number (0.2.0; the first's is
    `dial_in_number`)."""
    pin: str | None = None
    """Only when a step has the conference objective: there is a bridge to dial into."""
    pin_lease_id: str | None = None
    """Workflow ID of the lease that keeps this PIN unique among running conferences."""
    record: bool = False
    after_drop: Literal["sms", "call", "none"] = "sms"
    """What someone who drops out of the bridge gets: the way back by SMS, a call back, nothing."""
    drop_message: str = ""
    """The SMS for `sms`, rendered at launch: the dial-in number and the PIN."""
    drop_messages: dict[str, str] = {}
    """The same in the other languages of the run's people, by language."""
    language: str = ""
    """The run's default language: of its procedure's texts, and for anyone whose own is not
    shipped ("" before 0.2.0: English, in the carrier's default voice)."""
    call_me_links: dict[str, str] = {}
    """Each person's signed "call me into the conference" link, when the procedure offers it."""
    max_duration: timedelta = DEFAULT_MAX_DURATION
    batch_prefix: str = ""
    """How this launch named the batches it started (its run's ID and a mark of the attempt, so
    a retried or concurrent launch never adopts another attempt's batches); "" before 0.2.0."""
    participants: int = 0
    """Everyone the launch alerts, bridge and batches (0 before 0.2.0: `people` then held all)."""
    launched_by: str = ""
    channel: LaunchChannel = "cli"

    @cached_property
    def _people(self) -> dict[str, Contact]:
        return {contact.id: contact for contact in self.people}

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> RunPlan:
        """A copy whose people index is built again: pydantic copies the instance's `__dict__`,
        where the cached index lives, so a copy with other people would look up the old ones."""
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("_people", None)
        return copied

    def person(self, contact_id: str) -> Contact:
        return self._people[contact_id]

    def knows(self, contact_id: str) -> bool:
        return contact_id in self._people

    @property
    def has_bridge(self) -> bool:
        return any(step.has_bridge for step in self.steps)

    @property
    def welcome(self) -> str:
        """What a caller hears before the bridge: the first conference step's message."""
        return next((s.message for s in self.steps if s.has_bridge), "")

    def language_for(self, contact: Contact) -> str:
        """The shipped language a person is served in: theirs, else the run's."""
        return served(contact.language, self.language)

    def post_fields(self, contact: Contact) -> dict[str, object]:
        """What a post-objective message to this person is rendered with."""
        link = self.call_me_links.get(contact.id, "") if self.call_me_links else None
        return post_fields(self.fields, contact, link)

    def welcome_to(self, language: str) -> Speech:
        """The welcome as someone served in `language` hears it."""
        return next((s.said_to(language) for s in self.steps if s.has_bridge), ())

    def way_back(self, language: str) -> tuple[str, str]:
        """The SMS after a drop for someone served in `language`, and the language it is in."""
        if language in self.drop_messages:
            return self.drop_messages[language], language
        return self.drop_message, self.language

    def step(self, number: str) -> StepPlan:
        return next(s for s in self.steps if s.number == number)

    def scheme_for(self, step: StepPlan, contact: Contact) -> SchemePlan:
        return self.schemes[step.scheme or contact.scheme or self.default_scheme]

    def alerts(self, step: StepPlan) -> Iterator[Alert]:
        for contact_id in step.destinations:
            contact = self.person(contact_id)
            for index, medium in enumerate(self.scheme_for(step, contact).media):
                yield Alert(step.number, contact, index, medium.medium, medium.after)

    def rounds(self, step: StepPlan) -> list[Round]:
        """The step's alerts grouped by when they are due, in time order."""
        ordered = sorted(self.alerts(step), key=lambda alert: alert.after)
        return [Round(after, tuple(alerts)) for after, alerts in groupby(ordered, key=lambda a: a.after)]

    def ring_timeout(self, step: StepPlan) -> timedelta:
        """The longest a call of this step rings before it is given up."""
        schemes = {self.scheme_for(step, self.person(cid)).name for cid in step.destinations}
        return max((self.schemes[name].ring_timeout for name in schemes), default=timedelta(seconds=30))

    def bridge_people(self) -> set[str]:
        """Everyone who can be called into, or join, the run's one bridge."""
        return {cid for step in self.steps if step.has_bridge for cid in step.destinations}
