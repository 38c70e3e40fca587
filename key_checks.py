"""Do the workers hold the secrets this process would use? Checked before a launch is promised.

A launcher whose encryption key the workers do not hold seals a run nobody can read (nobody is
called), and one whose PIN secret differs names a PIN lease the callback servers never find
(every right PIN is refused). So each worker publishes fingerprints of its secrets on its build's
worker deployment version (Temporal keeps them, for every worker and every launcher to read),
and a launch compares its own with the current build's before it reserves a PIN.

A fingerprint is an HMAC of a fixed label under the secret: it tells whether two secrets are
the same and nothing about either.

The check is a guard, never an obstacle: Temporal rate-limits requests to a worker deployment
(a burst of launches met "too many requests issued to Worker Deployment"), so a process asks at
most once per CHECK_EVERY, concurrent launches share that one answer, and a check Temporal does
not answer lets the launch go on (logged), as before the check existed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging

from pydantic import BaseModel
from temporalio.api.common.v1 import Payload
from temporalio.api.deployment.v1 import WorkerDeploymentVersion
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    DescribeWorkerDeploymentVersionRequest,
    UpdateWorkerDeploymentVersionMetadataRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from config import Settings

log = logging.getLogger("rallycall.key_checks")

ENTRY = "rallycall.secrets"
"""The metadata entry of a worker deployment version that holds its workers' fingerprints."""
PUBLISH_FOR = 60.0
"""Seconds a worker keeps trying to publish (its version exists once its workers poll)."""
CHECK_EVERY = 30.0
"""Seconds one process trusts the current build's fingerprints before asking again."""


class Fingerprints(BaseModel):
    keys: dict[str, str]
    """Encryption key ID: fingerprint of that key."""
    pin_secret: str


def fingerprint(secret: bytes) -> str:
    return hmac.new(secret, b"rallycall secret fingerprint", hashlib.sha256).hexdigest()[:16]


def fingerprints_of(config: Settings) -> Fingerprints:
    return Fingerprints(
        keys={key.key_id: fingerprint(key.secret) for key in config.encryption_key_ring},
        pin_secret=fingerprint(config.pin_secret.encode()),
    )


def mismatches(config: Settings, workers: Fingerprints, build: str) -> list[str]:
    """What the workers of `build` could not do with this process's secrets, in words."""
    ours = fingerprints_of(config)
    problems = []
    sealing, sealing_print = next(iter(ours.keys.items()))
    if workers.keys.get(sealing) != sealing_print:
        held = ", ".join(repr(key_id) for key_id in workers.keys) or "none"
        problems.append(
            f"RALLYCALL_ENCRYPTION_KEYS: the workers of build {build} do not hold the key this launch "
            f"would encrypt with ({sealing!r}; they hold {held}): nobody would be called"
        )
    if workers.pin_secret != ours.pin_secret:
        problems.append(
            f"RALLYCALL_PIN_SECRET differs from the one of the workers of build {build}: "
            "the PIN could not be checked on the dial-in line"
        )
    return problems


def _version(config: Settings) -> WorkerDeploymentVersion:
    return WorkerDeploymentVersion(deployment_name=config.deployment_name, build_id=config.build_id)


async def publish(client: Client, config: Settings) -> None:
    """This worker's fingerprints on its build's version; retried until the version exists."""
    entry = Payload(
        metadata={"encoding": b"json/plain"}, data=fingerprints_of(config).model_dump_json().encode()
    )
    request = UpdateWorkerDeploymentVersionMetadataRequest(
        namespace=client.namespace,
        deployment_version=_version(config),
        upsert_entries={ENTRY: entry},
        identity=client.identity,
    )
    loop = asyncio.get_running_loop()
    give_up = loop.time() + PUBLISH_FOR
    while True:
        try:
            await client.workflow_service.update_worker_deployment_version_metadata(request)
            return
        except RPCError as exc:
            if exc.status == RPCStatusCode.UNIMPLEMENTED:
                return
            if loop.time() >= give_up:
                log.warning("could not publish this build's secret fingerprints: %s", exc.message)
                return
        await asyncio.sleep(1.0)


async def current_workers(client: Client, config: Settings) -> tuple[str, Fingerprints] | None:
    """The current build of the deployment and its workers' fingerprints; None when there is no
    current build yet, or it published none (no worker has started, an older build)."""
    try:
        deployment = await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(
                namespace=client.namespace, deployment_name=config.deployment_name
            )
        )
        current = deployment.worker_deployment_info.routing_config.current_deployment_version
        if not current.build_id:
            return None
        described = await client.workflow_service.describe_worker_deployment_version(
            DescribeWorkerDeploymentVersionRequest(namespace=client.namespace, deployment_version=current)
        )
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.UNIMPLEMENTED):
            return None
        raise
    entry = described.worker_deployment_version_info.metadata.entries.get(ENTRY)
    if entry is None:
        return None
    try:
        return current.build_id, Fingerprints.model_validate(json.loads(entry.data))
    except ValueError:
        log.warning("build %s published unreadable secret fingerprints", current.build_id)
        return None


_checked: dict[tuple[int, str], tuple[float, asyncio.Future[tuple[str, Fingerprints] | None]]] = {}
"""Per client and deployment: when the current build's fingerprints were asked, and the answer."""


async def problems_with_workers(client: Client, config: Settings) -> list[str]:
    """Why the current build's workers could not serve what this process would send; [] when
    they could, when no worker has said, or when Temporal does not answer the question now."""
    key = (id(client), config.deployment_name)
    loop = asyncio.get_running_loop()
    asked = _checked.get(key)
    if asked is None or loop.time() - asked[0] > CHECK_EVERY or asked[1].get_loop() is not loop:
        asked = (loop.time(), asyncio.ensure_future(current_workers(client, config)))
        _checked[key] = asked
    try:
        found = await asyncio.shield(asked[1])
    except RPCError as exc:
        if _checked.get(key) is asked:
            del _checked[key]  # ask again next time
        log.warning("the workers' secret fingerprints unread (%s): launching unchecked", exc.message)
        return []
    return mismatches(config, found[1], found[0]) if found else []
