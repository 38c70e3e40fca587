"""How the simulated carrier behaves: per number, how the phone answers, and faults to inject.

ring_seconds: 2                      # how long a phone rings before its outcome
calls_per_second: 1                  # the account's CPS: calls beyond it wait queued (QueueTime)
default: no-answer                   # answer | no-answer | busy | fail | machine
numbers:
  "+41215550101": answer
  "+41215550102": {answer: answer, hangup_after_s: 20}   # hangs up by mistake after 20 s
  "+41215550104": {answer: answer, press: "1"}           # acknowledges when asked
faults:                              # consumed in order, one per API request to that number
  "+41215550103": [rate-limited, lost-response, 21614]
sms_undelivered: ["+41795550109"]    # texts to these numbers end `undelivered` (error 30003)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

Behaviour = Literal["answer", "no-answer", "busy", "fail", "machine"]
"""`machine`: an answering machine picks up; a call that asked for machine detection is told
`AnsweredBy=machine_start` and left to its application, any other call runs its TwiML."""
Fault = Literal["rate-limited", "server-error", "lost-response"] | int
"""`rate-limited`: 429 / 20429; `server-error`: 500, nothing done; `lost-response`: the call or
SMS is made but the response is a 500 (as when a reply is lost); a number: that Twilio error
code with status 400."""


class NumberPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: Behaviour = "answer"
    hangup_after_s: float | None = Field(default=None, gt=0)
    """Answers, then hangs up (by mistake) this many seconds later."""
    press: str | None = None
    """Keys pressed when the call asks for them (acknowledgement: "1")."""


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ring_seconds: float = Field(default=2.0, ge=0)
    calls_per_second: float | None = Field(default=None, gt=0)
    """The account's outbound calls per second (Twilio's CPS): calls created faster wait in
    the account's queue. None: the stack's RALLYCALL_CALLS_PER_SECOND."""
    sms_per_second: float | None = Field(default=None, gt=0)
    """The account's SMS per second: messages created faster wait `queued` in the carrier's
    queue. None: the stack's RALLYCALL_SMS_PER_SECOND (no limit when the stack sets none)."""
    default: Behaviour = "no-answer"
    numbers: dict[str, Behaviour | NumberPlan] = {}
    faults: dict[str, list[Fault]] = {}
    sms_undelivered: list[str] = []
    """Handsets that never get texts: their messages end `undelivered` with error 30003."""
    recording_seconds: float = Field(default=0.0, ge=0)
    """How long after a recorded conference ends its recording is reported (Twilio takes from
    seconds to minutes, longer for long conferences)."""

    def with_account_rate(self, calls_per_second: float, sms_per_second: float | None = None) -> Scenario:
        """This scenario, its account calling at `calls_per_second` and texting at
        `sms_per_second` unless it says otherwise."""
        return self.model_copy(
            update={
                "calls_per_second": self.calls_per_second or calls_per_second,
                "sms_per_second": self.sms_per_second or sms_per_second,
            }
        )

    def plan(self, number: str) -> NumberPlan:
        found = self.numbers.get(number, self.default)
        return found if isinstance(found, NumberPlan) else NumberPlan(answer=found)


def load_scenario(path: Path | None) -> Scenario:
    if path is None:
        return Scenario()
    try:
        return Scenario.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise SystemExit(f"scenario {path}: {exc}") from exc
