"""A PIN lease: one workflow per PIN in use, so two running conferences never share a PIN.

Its ID is an HMAC of the PIN (never the PIN itself); starting it fails while another conference
holds the PIN, and a dial-in finds its conference in the lease's memo.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from domain.events import SEALED_SIGNALS, FromRun


class LeaseTerms(BaseModel):
    conference_id: str
    expires_after: timedelta


@workflow.defn(versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class PinLease:
    def __init__(self) -> None:
        self._released = False

    @workflow.run
    async def run(self, terms: LeaseTerms) -> None:
        """Held until the conference releases it, or expires in case the conference never does."""
        try:
            await workflow.wait_condition(
                lambda: self._released, timeout=terms.expires_after, timeout_summary="PIN held"
            )
        except TimeoutError:
            workflow.logger.warning("PIN lease of %s expired without release", terms.conference_id)

    @workflow.signal
    def release(self, by: FromRun | None = None) -> None:
        """From the run that holds the PIN, sealed; one with no argument is forged (or from a
        0.1.0 run, whose lease then expires instead): ignored."""
        if by is None and workflow.patched(SEALED_SIGNALS):
            workflow.logger.warning("a release without its sealed argument: ignored")
            return
        self._released = True
