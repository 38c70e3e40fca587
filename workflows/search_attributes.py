"""Custom search attributes the Web UI and `starter.py list` filter conferences on.

They must be registered on the server before a workflow upserts them (the embedded stack and
the tests do it from `ALL`)."""

from temporalio.common import SearchAttributeKey

STATE = SearchAttributeKey.for_keyword("RallycallState")
PARTICIPANTS = SearchAttributeKey.for_int("RallycallParticipants")
IN_CONFERENCE = SearchAttributeKey.for_int("RallycallInConference")
CALLER_KEYS = SearchAttributeKey.for_keyword_list("RallycallCallerKeys")
"""Keyed hashes of the participants' numbers, so a dial-in can find its conference."""
PROCEDURE = SearchAttributeKey.for_keyword("RallycallProcedure")
LAUNCHED_BY = SearchAttributeKey.for_keyword("RallycallLaunchedBy")
CHANNEL = SearchAttributeKey.for_keyword("RallycallChannel")
"""Who launched a run and from where (cli, web, cmc, procedure), so a console can filter its own."""
ALL = (STATE, PARTICIPANTS, IN_CONFERENCE, CALLER_KEYS, PROCEDURE, LAUNCHED_BY, CHANNEL)
