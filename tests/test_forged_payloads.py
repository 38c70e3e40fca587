"""Someone who can write to Temporal but holds no key cannot steer a run: a signal or update sent
in clear (not sealed by the codec) is dropped or refused, and the run goes on as if it never
came; a signal that once had no argument (a PIN lease's release, a batch's stop and close) is
ignored without its sealed one. On the dev server, with a real worker and running runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from directory import pin_lease_id
from domain.events import EndRequest, RecordingReady
from domain.run_view import RunView
from tests.support import eventually, harness
from tests.test_procedures import ACK, definitions_with
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
        await forged.signal(
            ProcedureRun.recording_ready, RecordingReady(recording_sid="RE1", url="https://evil/")
        )
        with pytest.raises(WorkflowUpdateFailedError):
            await forged.execute_update(ProcedureRun.end, EndRequest(reason="forged", by="mallory"))

        view = await h.roster(launched)
        assert view.state != "ended" and view.end_reason is None, "the forged end was refused"
        assert view.recording_url is None, "the forged signal was dropped"

        await h.handle(launched).execute_update(ProcedureRun.end, EndRequest(reason="drill over", by="ops"))
        ended = await eventually(lambda: h.roster(launched), lambda v: v.state == "ended", seconds=10)
        assert ended.end_reason == "drill over", "a sealed update from the launcher still works"


async def handled(handle: WorkflowHandle[Any, Any], signal: str) -> None:
    """Until a workflow task has completed after the signal came: it has been handled."""

    async def events() -> list[HistoryEvent]:
        return [event async for event in handle.fetch_history_events()]

    def after_signal(history: list[HistoryEvent]) -> bool:
        came = [i for i, e in enumerate(history)
                if e.workflow_execution_signaled_event_attributes.signal_name == signal]  # fmt: skip
        done = [i for i, e in enumerate(history) if e.HasField("workflow_task_completed_event_attributes")]
        return bool(came) and any(i > came[-1] for i in done)

    await eventually(events, after_signal)


async def test_signals_that_had_no_argument_are_ignored_without_their_sealed_one(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    async with harness(dev_env.client, tmp_path, contacts_file) as h, h.worker():
        conference = await h.launch("alice")
        lease = h.client.get_workflow_handle(pin_lease_id(conference.pin, h.settings.pin_secret))
        await lease.signal("release")  # no argument: nothing the codec could have refused
        await handled(lease, "release")
        assert (await lease.describe()).status == WorkflowExecutionStatus.RUNNING, "the PIN is still held"

        acknowledge = await h.launch_procedure("acknowledge", {"body": "drill", "Contacts.S001": "bruno"},
                                               definitions=definitions_with(tmp_path, ACK))  # fmt: skip
        view = await eventually(lambda: h.roster(acknowledge), lambda v: bool(v.batches))
        batch = h.client.get_workflow_handle(view.batches[0].workflow_id)
        for signal in ("stop", "close"):
            await batch.signal(signal)
            await handled(batch, signal)
        alerting: RunView = await batch.query("view", result_type=RunView)
        assert (alerting.state, alerting.end_reason) == ("running", None), "still alerting: not closed"
        home = [a for a in alerting.people[0].attempts if a.medium == "voice_home"]
        assert home == [], "nor stopped: a stop would have written the home call off (not attempted)"

        await h.handle(acknowledge).execute_update(ProcedureRun.end, EndRequest(reason="drill over"))
        await h.handle(conference).execute_update(ProcedureRun.end, EndRequest(reason="drill over"))
        closed = WorkflowExecutionStatus.COMPLETED
        await eventually(lambda: lease.describe(), lambda d: d.status == closed, seconds=20)
        await batch.terminate("test over")  # its run closes it only after a minute's grace for counts
