"""Launching: validate everything, freeze it into the workflow input, reserve a PIN, start.

Nothing reaches Temporal until every check has passed, so a refused launch leaves no trace
and a started one never depends on files that may change while it runs.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from config import Settings
from directory import caller_key, pin_lease_id
from domain.conference import PIN_DIGITS, ConferenceInput
from domain.contacts import load_contacts, resolve_destinations, to_e164
from domain.errors import InvalidLaunch
from domain.messages import Invitation, check_single_sms, load_templates, render
from domain.scheme import CONFCALL, DEFAULT_MAX_DURATION, AlertScheme
from workflows import search_attributes as sa
from workflows.conference import ConferenceCall
from workflows.pin_lease import LeaseTerms, PinLease

MAX_WELCOME = 1000
LEASE_GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class LaunchRequest:
    destinations: list[str]
    contacts_file: Path | None = None
    welcome: str = ""
    record: bool = False
    scheme: AlertScheme = CONFCALL
    max_duration: timedelta = DEFAULT_MAX_DURATION


@dataclass(frozen=True)
class Launched:
    workflow_id: str
    pin: str
    dial_in_number: str


def new_conference_id(now: datetime) -> str:
    return f"conference-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def prepare(request: LaunchRequest, settings: Settings, pin: str) -> ConferenceInput:
    """Validate the launch and freeze it; raises InvalidLaunch listing every problem."""
    contacts = load_contacts(request.contacts_file) if request.contacts_file else {}
    participants = resolve_destinations(request.destinations, contacts)
    welcome = request.welcome.strip()
    if len(welcome) > MAX_WELCOME:
        raise InvalidLaunch([f"welcome message is {len(welcome)} characters; at most {MAX_WELCOME}"])
    try:
        dial_in = to_e164(settings.dial_in_number)
    except ValueError as exc:
        raise InvalidLaunch([f"RALLYCALL_DIAL_IN_NUMBER: {exc}"]) from exc
    templates = load_templates()
    for contact in participants:
        invitation = Invitation(
            body=welcome, dial_in_number=dial_in, pin=pin, contact_id=contact.id, contact_name=contact.name
        )
        if contact.mobile:
            check_single_sms(render(templates.sms, invitation.fields()), contact.id)
    return ConferenceInput(
        pin=pin,
        dial_in_number=dial_in,
        welcome=welcome,
        record=request.record,
        participants=tuple(participants),
        scheme=request.scheme,
        templates=templates,
        max_duration=request.max_duration,
        calls_per_second=settings.calls_per_second,
        pin_lease_id=pin_lease_id(pin, settings.pin_secret),
    )


async def reserve_pin(client: Client, settings: Settings, conference_id: str, hold_for: timedelta) -> str:
    """Draw PINs until one is free among running conferences, and hold it with a lease."""
    for _ in range(50):
        pin = f"{secrets.randbelow(10**PIN_DIGITS):0{PIN_DIGITS}d}"
        try:
            await client.start_workflow(
                PinLease.run,
                LeaseTerms(conference_id=conference_id, expires_after=hold_for + LEASE_GRACE),
                id=pin_lease_id(pin, settings.pin_secret),
                task_queue=settings.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                static_summary="PIN lease",
                memo={"conference": conference_id},
            )
        except WorkflowAlreadyStartedError:
            continue
        return pin
    raise RuntimeError("could not find a free PIN after 50 draws")


async def launch(client: Client, settings: Settings, request: LaunchRequest) -> Launched:
    conference_id = new_conference_id(datetime.now(UTC))
    checked = prepare(request, settings, pin="0" * PIN_DIGITS)  # refuse bad input before any PIN
    pin = await reserve_pin(client, settings, conference_id, request.max_duration)
    conference = checked.model_copy(
        update={"pin": pin, "pin_lease_id": pin_lease_id(pin, settings.pin_secret)}
    )
    names = ", ".join(p.name for p in conference.participants[:5])
    more = len(conference.participants) - 5
    summary = f"Conference call: {names}" + (f" +{more}" if more > 0 else "")
    try:
        await client.start_workflow(
            ConferenceCall.run,
            conference,
            id=conference_id,
            task_queue=settings.task_queue,
            static_summary=summary[:200],
            static_details=conference.welcome or None,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.STATE, "running"),
                    SearchAttributePair(sa.PARTICIPANTS, len(conference.participants)),
                    SearchAttributePair(sa.IN_CONFERENCE, 0),
                    SearchAttributePair(
                        sa.CALLER_KEYS,
                        sorted(
                            {
                                caller_key(n, settings.pin_secret)
                                for c in conference.participants
                                for n in c.numbers()
                            }
                        ),
                    ),
                ]
            ),
        )
    except BaseException:
        await client.get_workflow_handle(conference.pin_lease_id).terminate("conference did not start")
        raise
    return Launched(workflow_id=conference_id, pin=pin, dial_in_number=conference.dial_in_number)
