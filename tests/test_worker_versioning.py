"""Worker Versioning on the dev server: a run is pinned to the build it started on, so a new
build made current mid-conference never changes it under its feet (its home round and PIN
messages still come from the old build's workers), while new runs go to the new build."""

from __future__ import annotations

from pathlib import Path

from temporalio.api.enums.v1 import RoutingConfigUpdateState
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from carrier.twilio import TwilioCarrier
from config import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, Settings
from domain.events import EndRequest
from stack.loopback import Bridged, Harness
from tests.support import FAST, confcall_in_seconds, eventually, harness
from worker import running_workers, smtp_settings
from workflows.procedure_run import ProcedureRun

LONGER = confcall_in_seconds(home_after=3, deadline=6)


async def build_of(h: Harness, run: Bridged) -> str:
    described = await h.handle(run).describe()
    return str(described.raw_description.workflow_execution_info.versioning_info.deployment_version.build_id)


async def made_current(client: Client, config: Settings) -> bool:
    """What the operator runs (`temporal worker deployment set-current-version`), refused until
    the new build's workers poll (the build is unknown before) every task queue the current
    one does."""
    try:
        await client.workflow_service.set_worker_deployment_current_version(
            SetWorkerDeploymentCurrentVersionRequest(
                namespace=client.namespace,
                deployment_name=config.deployment_name,
                build_id=config.build_id,
                identity="operator",
            )
        )
    except RPCError as exc:
        assert exc.status in (RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.NOT_FOUND), exc
        return False
    return True


async def routed_to(client: Client, config: Settings) -> bool:
    """The new current build has reached every task queue: the server propagates a routing change
    after `set-current-version` returns, and a run started in between still starts on the old
    build (seen once in a clean-clone CI run)."""
    described = await client.workflow_service.describe_worker_deployment(
        DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=config.deployment_name)
    )
    info = described.worker_deployment_info
    return (
        info.routing_config.current_deployment_version.build_id == config.build_id
        and info.routing_config_update_state == RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_COMPLETED
    )


async def test_a_run_stays_on_its_build_while_new_runs_go_to_the_current_one(
    dev_env: WorkflowEnvironment, tmp_path: Path, contacts_file: Path
) -> None:
    async with harness(dev_env.client, tmp_path, contacts_file) as h:
        old = h.settings.model_copy(update={"build_id": "1.0"})
        new = h.settings.model_copy(update={"build_id": "2.0"})
        carrier = TwilioCarrier(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, h.simulator_url)
        other = await Client.connect(
            h.client.service_client.config.target_host, data_converter=h.client.data_converter
        )
        smtp = smtp_settings(h.settings, h.mailbox.port)
        async with running_workers(h.client, old, carrier, smtp):  # a new deployment's first build
            first = await h.launch("alice", "bruno", definitions=LONGER)
            # pinned once its first workflow task completes: a run whose first task is still
            # waiting when the new build becomes current starts, and stays, on the new build
            await eventually(lambda: build_of(h, first), lambda build: build == "1.0")
            async with running_workers(other, new, carrier, smtp):
                await eventually(lambda: made_current(h.client, new), bool, 15)
                await eventually(lambda: routed_to(h.client, new), bool, 15)
                second = await h.launch("chloe", definitions=FAST)
                await eventually(lambda: build_of(h, second), lambda build: build == "2.0")
                assert await build_of(h, first) == "1.0"
                view = await eventually(
                    lambda: h.roster(first), lambda r: len(r.person("bruno").attempts) == 2, 20
                )
                assert view.person("bruno").attempts[1].medium == "voice_home", "its home round came"
                await eventually(h.texted_numbers, lambda texted: "+41795550102" in texted, 20)
                assert await build_of(h, first) == "1.0", "and it is still on the build it started on"
                for run in (first, second):
                    await h.handle(run).execute_update(ProcedureRun.end, EndRequest())
        await carrier.close()
