"""The alert scheme: which medium is tried when, for destinations not yet in the conference."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

VoiceMedium = Literal["voice_pro", "voice_home"]


class AlertStep(BaseModel):
    """Call everyone not yet in on this medium, `after` the launch."""

    model_config = ConfigDict(frozen=True)

    medium: VoiceMedium
    after: timedelta


class AlertScheme(BaseModel):
    """Timings of a conference call; frozen into each run so edits never change a live one."""

    model_config = ConfigDict(frozen=True)

    name: str
    steps: tuple[AlertStep, ...]
    ring_timeout: timedelta
    invitation_after: timedelta
    """When every destination gets the dial-in number and PIN by SMS and email."""


CONFCALL = AlertScheme(
    name="CONFCALL",
    steps=(
        AlertStep(medium="voice_pro", after=timedelta(0)),
        AlertStep(medium="voice_home", after=timedelta(minutes=1)),
    ),
    ring_timeout=timedelta(seconds=30),
    invitation_after=timedelta(minutes=2),
)
"""The spec's global scheme: work phone at t=0, home phone at +1 min, PIN by SMS/email at +2 min."""

DEFAULT_MAX_DURATION = timedelta(hours=4)
