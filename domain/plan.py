"""A launched procedure's plan, frozen into the workflow input: its steps, who each alerts on
which medium and when, what they say, and when each step gives up.

The launcher builds it from the definitions (`procedures/`) and the launch form, so a running
procedure never changes when a definition, a contact or a scheme is edited.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from itertools import groupby
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Medium = Literal["voice_pro", "voice_home", "voice_mobile", "sms", "email"]
VoiceMedium = Literal["voice_pro", "voice_home", "voice_mobile"]
VOICE_MEDIA: tuple[VoiceMedium, ...] = ("voice_pro", "voice_home", "voice_mobile")
Objective = Literal["conference", "acknowledgement", "information"]
DEFAULT_MAX_DURATION = timedelta(hours=4)


class Alert(BaseModel):
    """Try `medium` for this destination `after` the step started, unless already reached."""

    model_config = ConfigDict(frozen=True)

    contact_id: str
    medium: Medium
    after: timedelta


class PostObjective(BaseModel):
    """Sent by SMS and email to the step's destinations when the step ends (template sources)."""

    model_config = ConfigDict(frozen=True)

    subject: str
    body: str
    sms: str | None = None
    """What the SMS says; the body when absent."""


class StepPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: str
    objective: Objective
    percent: int = Field(ge=1, le=100)
    run: Literal["always", "if_previous_not_reached"] = "always"
    destinations: tuple[str, ...]
    """Contact ids, all among the run's participants."""
    alerts: tuple[Alert, ...]
    ring_timeout: timedelta = timedelta(seconds=30)
    message: str = ""
    """Already rendered: spoken on calls (before the bridge, or with the acknowledgement
    prompt) and sent by the sms and email media."""
    deadline: timedelta
    post_objective: PostObjective | None = None

    def needed(self) -> int:
        """How many destinations make the objective: `percent` of them, rounded up."""
        return math.ceil(self.percent * len(self.destinations) / 100)

    def rounds(self) -> Iterator[tuple[timedelta, list[Alert]]]:
        """The alerts grouped by when they are due, in time order."""
        ordered = sorted(self.alerts, key=lambda alert: alert.after)
        for after, alerts in groupby(ordered, key=lambda alert: alert.after):
            yield after, list(alerts)
