"""The ExecutionEnded function against the tables and topic as deployed (moto).

moto emits no aws.states events, so the test invokes the handler with the sample event as EventBridge
would deliver it, twice where EventBridge's at-least-once delivery would.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dcwatch import runtime
from dcwatch.adapters.dynamodb import DynamoLeases, DynamoStateStore
from dcwatch.local.cloud import create_tables
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.local.lambdas import LambdaContext, load_handler
from dcwatch.wiring import function
from tests.helpers import load_event, moto_credentials

pytestmark = pytest.mark.integration

SAMPLE = "samples/StepFunctionsExecutionStatusChange.json"


class Deployed:
    """What the function touches, read back through the same APIs: the lock, the audit trail, the alerts."""

    def __init__(self, names: dict[str, str], queue_url: str, invoke: Callable[[dict[str, Any]], dict[str, Any]]):
        self.leases = DynamoLeases(names["Locks"])
        self.store = DynamoStateStore(names["State"], names["Audit"])
        self.invoke = invoke
        self._sqs, self._queue = boto3.client("sqs"), queue_url

    def alerts(self) -> list[dict[str, Any]]:
        """Every SNS message the topic delivered to its test subscriber so far (Subject, Message)."""
        received = []
        for _ in range(10):
            batch = self._sqs.receive_message(QueueUrl=self._queue, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                break
            for message in batch:
                received.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self._queue, ReceiptHandle=message["ReceiptHandle"])
        return received


@pytest.fixture
def deployed(monkeypatch) -> Iterator[Deployed]:
    moto_credentials(monkeypatch)
    with mock_aws():
        names = create_tables(boto3.client("dynamodb"), "ended")
        topic = boto3.client("sns").create_topic(Name="ended-alerts")["TopicArn"]
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="ended-alerts-subscriber")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        for spec_key, variable in (
            ("State", "DCWATCH_TABLE_NAME"),
            ("Audit", "DCWATCH_AUDIT_TABLE_NAME"),
            ("Locks", "DCWATCH_LOCKS_TABLE_NAME"),
            ("Idempotency", "DCWATCH_IDEMPOTENCY_TABLE_NAME"),
        ):
            monkeypatch.setenv(variable, names[spec_key])
        monkeypatch.setenv("DCWATCH_TOPIC_ARN", topic)
        monkeypatch.setenv("DCWATCH_CONFIG", str(DEMO_CONFIG))
        runtime.reset()
        handler = load_handler(function("ExecutionEnded"))

        def invoke(event: dict[str, Any]) -> dict[str, Any]:
            context = LambdaContext("execution-ended", "arn:aws:lambda:eu-west-1:1:function:ended", event["id"])
            return handler(event, context)  # type: ignore[no-any-return]

        yield Deployed(names, queue_url, invoke)
        runtime.reset()


def stopped_event(**detail: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event(SAMPLE))
    event["detail"].update(detail)
    return event


def test_a_stopped_execution_holding_the_lock_is_audited_released_and_announced_once(deployed: Deployed):
    # Given the execution an operator stopped still holds the failover lock
    event = stopped_event()
    name = event["detail"]["name"]
    deployed.leases.acquire(name, 900, datetime.now(UTC))

    # When EventBridge delivers its status change, then delivers it again
    first = deployed.invoke(event)
    again = deployed.invoke({**event, "id": "redelivered"})

    # Then the lock is free, one audit record names the run, and the operators got exactly one alert
    assert deployed.leases.holder() is None
    assert first == again and first["incidentId"] == "dc-a-down-20240514T083200Z"
    [record] = deployed.store.audit("dc-a-down-20240514T083200Z")
    assert (record["status"], record["executionName"]) == ("ABORTED", name)
    assert record["executionArn"] == event["detail"]["executionArn"]
    assert record["request"]["mode"] == "disaster" and record["stoppedAt"] == "2024-05-14T08:41:07+00:00"
    assert record["lock"].startswith("released")
    [alert] = deployed.alerts()
    assert alert["Subject"] == f"[dcwatch] ACTION NEEDED: failover {name} was stopped (ABORTED)"
    assert "Lock: released" in alert["Message"] and event["detail"]["executionArn"] in alert["Message"]
    assert alert["MessageId"] == first["messageId"]


def test_a_timed_out_execution_never_releases_the_lock_another_execution_holds(deployed: Deployed):
    # Given the lock is held by a later execution, not by the one that timed out
    deployed.leases.acquire("manual-dc-a-20240514T090000Z-abc123", 900, datetime.now(UTC))
    event = stopped_event(status="TIMED_OUT", error="States.Timeout")

    deployed.invoke(event)

    holder = deployed.leases.holder()
    assert holder is not None and holder.owner == "manual-dc-a-20240514T090000Z-abc123"
    [alert] = deployed.alerts()
    assert alert["Subject"].endswith("timed out (TIMED_OUT)")
    assert "held by manual-dc-a-20240514T090000Z-abc123" in alert["Message"]
    [record] = deployed.store.audit("dc-a-down-20240514T083200Z")
    assert record["status"] == "TIMED_OUT" and "left alone" in record["lock"]


def test_without_an_incident_id_in_the_input_the_record_is_filed_under_the_workflows_name_for_it(deployed: Deployed):
    request = {"mode": "disaster", "from": "dc-a", "to": "dc-b", "reason": "by hand from the console"}
    arn = "arn:aws:states:eu-central-1:123456789012:execution:dcwatch-demo-failover:console-start-1"
    event = stopped_event(name="console-start-1", executionArn=arn, input=json.dumps(request))

    outcome = deployed.invoke(event)

    assert outcome["incidentId"] == "manual-console-start-1"
    [record] = deployed.store.audit("manual-console-start-1")
    assert "free" in record["lock"]
    assert len(deployed.alerts()) == 1
