"""Custom search attributes the Web UI, `starter.py list` and the console filter runs on. None
holds a PIN, a number, a name or an email.

They must be registered on the server before a workflow upserts them (the embedded stack and
the tests do it from `ALL`)."""

from temporalio.common import SearchAttributeKey

STATE = SearchAttributeKey.for_keyword("RallycallState")
PARTICIPANTS = SearchAttributeKey.for_int("RallycallParticipants")
IN_CONFERENCE = SearchAttributeKey.for_int("RallycallInConference")
PROCEDURE = SearchAttributeKey.for_keyword("RallycallProcedure")
LAUNCHED_BY = SearchAttributeKey.for_keyword("RallycallLaunchedBy")
CHANNEL = SearchAttributeKey.for_keyword("RallycallChannel")
"""Who launched a run and from where (cli, web, cmc, procedure), so a console can filter its own."""
ALL = (STATE, PARTICIPANTS, IN_CONFERENCE, PROCEDURE, LAUNCHED_BY, CHANNEL)
