"""Custom search attributes the Web UI and `starter.py list` filter conferences on.

They must be registered on the server before a workflow upserts them (the embedded stack and
the tests do it from `ALL`)."""

from temporalio.common import SearchAttributeKey

STATE = SearchAttributeKey.for_keyword("RallycallState")
PARTICIPANTS = SearchAttributeKey.for_int("RallycallParticipants")
IN_CONFERENCE = SearchAttributeKey.for_int("RallycallInConference")
ALL = (STATE, PARTICIPANTS, IN_CONFERENCE)
