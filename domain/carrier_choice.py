"""Which carrier a run's next call goes through: the first in order that has not just failed.

A worker that sees a carrier fail several times running stops sending it calls and says so
(`carrier.health`); the run then moves its calls to the next carrier in order, each paced at
that carrier's own rate. After FAILED_FOR, one call goes through the failed carrier again as a
probe while the others keep to the next: once a call is placed through it, it takes calls
again; if it fails again, it waits another FAILED_FOR. Calls only: a run's SMS fail over
message by message in the worker, where no rate needs the run's choice.

Pure and deterministic (the run passes `workflow.now()`); a run that continues as new learns
it again from its next call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.call_queue import CarrierRoute

FAILED_FOR = timedelta(seconds=60)
"""How long a run keeps its calls off a carrier that failed before one probes it again: long
enough that an outage does not cost a failed call a few seconds, short enough that the first
carrier (the one whose number people know) is back within a minute of its recovery."""


@dataclass
class CarrierChoice:
    routes: list[CarrierRoute]
    down_until: dict[str, datetime] = field(default_factory=dict)
    probing: set[str] = field(default_factory=set)
    """Carriers with a probe call under way: no other call goes to them until it settles."""

    def pick(self, now: datetime) -> CarrierRoute:
        """The carrier for a call starting now: the first not failed, or due a probe. With
        every carrier failed, the first: its worker keeps trying it until the deadline."""
        for route in self.routes:
            until = self.down_until.get(route.name)
            if until is None:
                return route
            if now >= until and route.name not in self.probing:
                self.probing.add(route.name)
                return route
        return self.routes[0]

    def has_alternative(self, name: str, now: datetime) -> bool:
        """Whether a call failing on `name` could go through another carrier now."""
        return any(r.name != name and self._usable(r.name, now) for r in self.routes)

    def failed(self, name: str, now: datetime) -> CarrierRoute | None:
        """`name` failed a call: off it for FAILED_FOR. The carrier to try that call on now,
        or None when no other is usable."""
        self.down_until[name] = now + FAILED_FOR
        self.probing.discard(name)
        for route in self.routes:
            if route.name != name and self._usable(route.name, now):
                if route.name in self.down_until:
                    self.probing.add(route.name)
                return route
        return None

    def worked(self, name: str) -> bool:
        """A call went through `name`: it takes calls again. True when it had failed."""
        self.probing.discard(name)
        return self.down_until.pop(name, None) is not None

    def released(self, name: str) -> None:
        """A call to `name` ended without telling whether it works (withdrawn before it was
        placed): the next call may probe it."""
        self.probing.discard(name)

    def down(self, now: datetime) -> list[str]:
        return [name for name, until in self.down_until.items() if now < until]

    def _usable(self, name: str, now: datetime) -> bool:
        until = self.down_until.get(name)
        return until is None or (now >= until and name not in self.probing)
