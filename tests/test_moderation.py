"""A moderator's controls on the live bridge, through the carrier's Conference Participants API:
mute and unmute, remove, and "call again now" for someone not in it; each is recorded with who
did it, and a run that has ended refuses them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from domain.events import EndRequest, ModeratorAction
from tests.support import eventually, harness
from workflows.procedure_run import ProcedureRun

ALICE_WORK = "+41215550101"


async def test_mute_remove_and_call_again(
    time_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    async with harness(time_env.client, tmp_path, contacts_file) as h, h.worker():
        launched = await h.launch("alice", "bruno")
        handle = h.handle(launched)
        await eventually(lambda: h.roster(launched), lambda r: r.person("alice").in_conference)
        room = h.simulator.rooms[launched.workflow_id]

        assert await moderate(handle, "mute", "alice") == "Alice Martin muted"
        assert [p.muted for p in room.participants.values()] == [True], "muted at the carrier"
        assert (await h.roster(launched)).person("alice").muted
        assert await moderate(handle, "unmute", "alice") == "Alice Martin unmuted"
        assert [p.muted for p in room.participants.values()] == [False]

        assert await refusal(handle, "mute", "bruno") == "not in the bridge on a phone call"
        assert await refusal(handle, "call_again", "alice") == "already in the bridge"
        assert await refusal(handle, "remove", "zoe") == "no one with id 'zoe' in this run"

        assert await moderate(handle, "remove", "alice") == "Alice Martin removed"
        await eventually(lambda: h.roster(launched), lambda r: not r.person("alice").in_conference)
        assert launched.workflow_id not in h.simulator.rooms, "her leg left the room, which ended"

        assert await moderate(handle, "call_again", "alice") == "calling Alice Martin again"
        view = await eventually(lambda: h.roster(launched), lambda r: r.person("alice").in_conference)
        assert h.called_numbers().count(ALICE_WORK) == 2, "called again on the phone she answered"
        assert [a.attempt_id for a in view.person("alice").attempts] == ["001/alice/0", "001/alice/again1"]
        assert [(m.kind, m.person_id, m.by) for m in view.moderation] == [
            ("mute", "alice", "ops"),
            ("unmute", "alice", "ops"),
            ("remove", "alice", "ops"),
            ("call_again", "alice", "ops"),
        ], "every moderator action is recorded with who did it"

        await handle.execute_update(ProcedureRun.end, EndRequest())
        await handle.result()
        with pytest.raises(RPCError) as over:
            await moderate(handle, "mute", "alice")
        assert over.value.status == RPCStatusCode.NOT_FOUND, "a run that ended takes no more actions"


async def moderate(handle: WorkflowHandle[Any, Any], kind: Any, person: str) -> str:
    action = ModeratorAction(kind=kind, person_id=person, by="ops")
    result: str = await handle.execute_update(ProcedureRun.moderate, action)
    return result


async def refusal(handle: WorkflowHandle[Any, Any], kind: Any, person: str) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await moderate(handle, kind, person)
    assert isinstance(failed.value.cause, ApplicationError)
    return failed.value.cause.message
