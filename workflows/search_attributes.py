"""Custom search attributes the Web UI and `starter.py list` filter conferences on.

They must be registered on the server before a workflow upserts them (the embedded stack and
the tests do it from `ALL`)."""

from temporalio.common import SearchAttributeKey

STATE = SearchAttributeKey.for_keyword("RallycallState")
PARTICIPANTS = SearchAttributeKey.for_int("RallycallParticipants")
IN_CONFERENCE = SearchAttributeKey.for_int("RallycallInConference")
CALLER_KEYS = SearchAttributeKey.for_keyword_list("RallycallCallerKeys")
"""Keyed hashes of the participants' numbers, so a dial-in can find its conference."""
ALL = (STATE, PARTICIPANTS, IN_CONFERENCE, CALLER_KEYS)
