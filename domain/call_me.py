"""What a person's call-me link may do in one run: it is recorded as "call again now" by
`LINK`, and it rings its person at most CALLS_PER_PERSON times.

The run's workflow refuses the update beyond that (its validator: nothing written to history), so
the count holds whichever console replica the link is opened on. Three is a missed call, a
second try, and a way back after a dropped line; a link that leaked (a forwarded SMS, a screen
seen over a shoulder) cannot ring anyone's phone more than that. The PIN keeps working, and a
moderator's "call again now" is not limited.
"""

from __future__ import annotations

from collections.abc import Iterable

from domain.run_view import ModerationRecord
from i18n.catalogues import N_

LINK = "call-me link"
"""`by` of a "call again now" sent by a call-me link (an account name never has a space)."""
CALLS_PER_PERSON = 3
SPENT_TEXT = N_(
    "this link has called you {calls} times, its limit for this conference; "
    "dial in with the number and PIN in your message"
)
"""The refusal as the catalogues translate it (the call-me page says it in its person's language)."""
SPENT = SPENT_TEXT.format(calls=CALLS_PER_PERSON)


def calls_made(moderation: Iterable[ModerationRecord], person_id: str) -> int:
    """How many times the person's call-me link has had them called in this run."""
    return sum(m.kind == "call_again" and m.by == LINK and m.person_id == person_id for m in moderation)
