"""Someone who can write to Temporal but holds no key cannot steer a run: a signal or update sent
in clear (not sealed by the codec) is dropped or refused, and the run goes on as if it never
came. On the dev server, with a real worker and a running conference."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from domain.events import EndRequest, RecordingReady
from tests.support import eventually, harness
from workflows.procedure_run import ProcedureRun


async def test_signals_and_updates_sent_in_clear_do_not_reach_the_run(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    target = dev_env.client.service_client.config.target_host
    forger = await Client.connect(
        target, namespace=dev_env.client.namespace, data_converter=pydantic_data_converter
    )  # no codec: what anyone who can reach Temporal without the key sends
    async with harness(dev_env.client, tmp_path, contacts_file) as h, h.worker():
        launched = await h.launch("alice", "bruno")
        forged = forger.get_workflow_handle_for(ProcedureRun.run, launched.workflow_id)
        await forged.signal(ProcedureRun.recording_ready, RecordingReady(recording_sid="RE1", url="https://evil/"))
        with pytest.raises(WorkflowUpdateFailedError):
            await forged.execute_update(ProcedureRun.end, EndRequest(reason="forged", by="mallory"))

        view = await h.roster(launched)
        assert view.state != "ended" and view.end_reason is None, "the forged end was refused"
        assert view.recording_url is None, "the forged signal was dropped"

        await h.handle(launched).execute_update(ProcedureRun.end, EndRequest(reason="drill over", by="ops"))
        ended = await eventually(lambda: h.roster(launched), lambda v: v.state == "ended", seconds=10)
        assert ended.end_reason == "drill over", "a sealed update from the launcher still works"
