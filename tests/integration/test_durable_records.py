"""What a recovery records survives the faults around it, as Step Functions (moto) runs the workflow against
vcsim: SNS down when the outcome is announced, ValidateRequest dying, DynamoDB failing for a moment. Faults are
real botocore error responses (`before-call` hooks on the functions' clients) and Lambda deaths of the local
runtime (`LocalLambdas.crashes`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from dcwatch.local.lambdas import running_step
from dcwatch.local.pipeline import LocalPipeline
from dcwatch.local.services import wait_until
from tests.configs import write_pair_config

pytestmark = pytest.mark.integration

Hook = Callable[..., "tuple[AWSResponse, dict[str, Any]] | None"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Iterator[LocalPipeline]:
    with LocalPipeline(write_pair_config(tmp_path_factory.mktemp("durable"), name="durable")) as running:
        yield running


@pytest.fixture
def fresh(pipeline: LocalPipeline) -> LocalPipeline:
    pipeline.reset()
    return pipeline


def request(name: str) -> dict[str, Any]:
    return {"action": "failover", "from": "north", "to": "south", "reason": "durability drill", "incidentId": name}


def failing(step: str, event: str, code: str, status: int, times: int, only: Callable[[dict], bool] = bool) -> Hook:
    """A botocore hook answering `code` to the first `times` calls made by `step` (that `only` accepts)."""
    left = {"n": times}

    def hook(**kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if running_step() != step or left["n"] <= 0 or not only(kwargs["params"]):
            return None
        left["n"] -= 1
        error = {"Error": {"Code": code, "Message": f"injected {code}"}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return AWSResponse(kwargs["params"]["url"], status, {}, None), error

    hook.left = left  # type: ignore[attr-defined]
    return hook


@contextmanager
def injected(pipeline: LocalPipeline, event: str, hook: Hook) -> Iterator[None]:
    events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
    events.register(event, hook)
    pipeline.lambdas.cold_start()  # new clients, which carry the hook
    try:
        yield
    finally:
        events.unregister(event, hook)
        pipeline.lambdas.cold_start()


def run(pipeline: LocalPipeline, name: str) -> dict[str, Any]:
    return pipeline.wait_execution(pipeline.start_failover(request(name), name=name), timeout_s=180)


def failures(pipeline: LocalPipeline, name: str) -> list[str]:
    arn = next(e["executionArn"] for e in pipeline.executions() if e["name"] == name)
    return [
        e["lambdaFunctionFailedEventDetails"]["error"]
        for e in pipeline.history(arn)
        if e["type"] == "LambdaFunctionFailed"
    ]


def emf(output: str, metric: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if f'"{metric}"' in line and '"_aws"' in line]


def test_sns_down_when_the_outcome_is_announced_loses_neither_the_new_active_site_nor_the_audit(fresh, capsys):
    # Given SNS failing every publish the Notify step makes (a regional outage, as botocore sees it)
    outage = failing("Notify", "before-call.sns.Publish", "InternalError", 500, times=100)
    with injected(fresh, "before-call.sns.Publish", outage):
        described = run(fresh, "manual-sns-down-1")

    # Then production moved and is recorded as moved: the failover itself succeeded
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert fresh.store.active_site("north") == "south"
    succeeded, unannounced = fresh.store.audit("manual-sns-down-1")
    assert succeeded["outcome"] == "succeeded" and unannounced["outcome"] == "notify-failed"
    assert unannounced["notifyError"]["Error"] == "TransientError" and unannounced["notifyStep"] == "Notify"
    # The publish was retried before it was given up, and the lock given back
    assert failures(fresh, "manual-sns-down-1").count("TransientError") >= 3
    assert fresh.leases.holder() is None
    # And the alarm's metric was emitted, since no one was told
    (metric,) = emf(capsys.readouterr().out, "NotifyFailed")
    assert metric["NotifyFailed"] == [1.0] and metric["step"] == "Notify"
    assert not any("manual-sns-down-1" in str(n.get("Message")) for n in fresh.notifications)


def test_a_failure_is_audited_before_it_is_announced_so_sns_down_loses_no_record_of_it(fresh, capsys):
    # Given CheckStandby dying at every attempt (the failover fails there) and SNS down for NotifyFailure
    fresh.lambdas.crashes["CheckStandby"] = 100
    outage = failing("NotifyFailure", "before-call.sns.Publish", "InternalError", 500, times=100)
    with injected(fresh, "before-call.sns.Publish", outage):
        described = run(fresh, "manual-sns-down-2")
    fresh.lambdas.crashes.clear()

    assert described["status"] == "FAILED"
    failed, unannounced = fresh.store.audit("manual-sns-down-2")
    assert failed["outcome"] == "failed" and failed["failedStep"] == "CheckStandby"
    assert unannounced["outcome"] == "notify-failed" and unannounced["notifyStep"] == "NotifyFailure"
    assert fresh.store.active_site("north") == "north" and fresh.leases.holder() is None
    (metric,) = emf(capsys.readouterr().out, "NotifyFailed")
    assert metric["step"] == "NotifyFailure"


def test_validate_request_dying_gives_back_the_lock_taken_for_it_audits_and_announces(fresh):
    # Given the lock taken for the execution (as the evaluator and the CLI do before they start one)
    name = "manual-validate-dies-1"
    assert fresh.leases.acquire(name, 900, datetime.now(UTC), "north").owner == name
    fresh.lambdas.crashes["ValidateRequest"] = 100  # every attempt dies: a timeout, an out-of-memory kill
    notes = len(fresh.notifications)
    try:
        described = run(fresh, name)
    finally:
        fresh.lambdas.crashes.clear()

    # Then the execution fails, but the lock does not block the next failover for lease_s
    assert described["status"] == "FAILED"
    assert failures(fresh, name).count("Lambda.Unknown") >= 2, "retried before it was given up"
    assert fresh.leases.holder() is None
    (record,) = fresh.store.audit(name)
    assert record["outcome"] == "request-failed" and record["error"] == "Lambda.Unknown"
    assert record["lock"].startswith("released")
    assert wait_until(lambda: len(fresh.notifications) > notes, 10), "announced"
    note = fresh.notifications[-1]
    assert note["Subject"].startswith(f"[dcwatch] ACTION NEEDED: failover {name} could not check its request")
    assert fresh.store.active_site("north") == "north", "nothing was changed"


def test_a_bad_request_still_fails_as_itself_and_changes_nothing(fresh):
    name = "manual-bad-request-1"
    fresh.leases.acquire(name, 900, datetime.now(UTC), "north")
    raw = {**request(name), "to": "nowhere"}
    described = fresh.wait_execution(fresh.start_failover(raw, name=name), timeout_s=60)
    assert described["status"] == "FAILED" and described["error"] == "InvalidRequest"
    assert "nowhere" in described["cause"] and fresh.leases.holder() is None
    assert fresh.store.audit(name) == [] and fresh.store.active_site("north") == "north"


def audit_write(params: dict[str, Any]) -> bool:
    """A write of the audit record (PutItem on the audit table, or the transaction holding it)."""
    body = params.get("body") or b""
    return b"audit" in (body if isinstance(body, bytes) else body.encode()).lower()


@pytest.mark.parametrize("code", ["InternalServerError", "ThrottlingException"])
def test_dynamodb_failing_for_a_moment_as_the_outcome_is_recorded_is_retried_not_a_failed_failover(fresh, code):
    name = f"manual-ddb-{code.lower()}"
    writes = {"before-call.dynamodb.PutItem", "before-call.dynamodb.TransactWriteItems"}
    hook = failing("RecordAudit", "", code, 500 if code.startswith("Internal") else 400, times=2, only=audit_write)
    events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
    for event in writes:
        events.register(event, hook)
    fresh.lambdas.cold_start()
    try:
        described = run(fresh, name)
    finally:
        for event in writes:
            events.unregister(event, hook)
        fresh.lambdas.cold_start()

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert hook.left["n"] == 0, "both faults were met"  # type: ignore[attr-defined]
    assert failures(fresh, name) == ["TransientError", "TransientError"]
    assert [r["outcome"] for r in fresh.store.audit(name)] == ["succeeded"]
    assert fresh.store.active_site("north") == "south"


def test_the_new_active_site_is_never_recorded_without_its_audit_record(fresh):
    # Given an audit table that refuses every write (deleted: ResourceNotFoundException, no retry helps)
    fresh.cloud.client("dynamodb").delete_table(TableName=fresh.resources.audit_table_name)
    notes = len(fresh.notifications)
    described = run(fresh, "manual-no-audit-1")

    # Then the state change is not written alone: both or neither (TransactWriteItems)
    assert described["status"] == "FAILED"
    assert fresh.store.active_site("north") == "north"
    assert fresh.store.last_failover() is None
    # And the failure is still announced, though its own record could not be written either
    assert wait_until(lambda: len(fresh.notifications) > notes, 10)
    assert "failed at RecordAudit" in fresh.notifications[-1]["Subject"]
