"""The probe function as the schedule invokes it: rounds on the interval, every result on the bus."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from moto import mock_aws

from dcwatch import runtime
from dcwatch.local.lambdas import LambdaContext, load_handler
from dcwatch.wiring import function
from tests.configs import write_pair_config

pytestmark = pytest.mark.integration


@pytest.fixture
def probe_env(tmp_path, monkeypatch):
    config_path = write_pair_config(tmp_path, name="probe")
    env = {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "DCWATCH_CONFIG": str(config_path),
        "DCWATCH_BUS_NAME": "dcwatch-probe",
        "DCWATCH_SCHEDULE_PERIOD_S": "3",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        events, sqs = boto3.client("events"), boto3.client("sqs")
        events.create_event_bus(Name="dcwatch-probe")
        url = sqs.create_queue(QueueName="results")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(
            Name="all", EventBusName="dcwatch-probe", EventPattern=json.dumps({"source": ["dcwatch.probe"]})
        )
        events.put_targets(Rule="all", EventBusName="dcwatch-probe", Targets=[{"Id": "q", "Arn": arn}])
        secrets = boto3.client("secretsmanager")
        for site in ("north", "south"):
            secrets.create_secret(Name=f"probe/{site}", SecretString=json.dumps({"username": "u", "password": "p"}))
        runtime.reset()
        yield sqs, url
        runtime.reset()


def received(sqs, url):
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [json.loads(m["Body"]) for m in messages]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        )
    return bodies


def test_one_scheduled_call_runs_a_round_per_interval_and_publishes_every_result(probe_env):
    sqs, url = probe_env
    handler = load_handler(function("Probe"))
    context = LambdaContext(
        "probe", "arn:aws:lambda:eu-central-1:1:function:probe", "req-1", deadline=time.monotonic() + 30
    )

    started = time.monotonic()
    answer = handler({"id": "sched-1"}, context)
    elapsed = time.monotonic() - started

    rounds = answer["rounds"]
    assert [r["roundId"] for r in rounds] == ["sched-1-0", "sched-1-1", "sched-1-2"], "3 s period / 1 s interval"
    assert 1.5 < elapsed < 6, "rounds wait for their interval boundary, then stop inside the period"
    checks_per_round = rounds[0]["checks"]
    assert checks_per_round == 12  # at each of two sites: four vCenter parts and two services
    details = [b["detail"] for b in received(sqs, url)]
    assert len(details) == 3 * checks_per_round
    assert {d["roundId"] for d in details} == {"sched-1-0", "sched-1-1", "sched-1-2"}
    vcenter = [d for d in details if d["check"].startswith("vcenter") and d["roundId"] == "sched-1-0"]
    assert {d["check"] for d in vcenter} == {"vcenter", "vcenter-hosts", "vcenter-datastores", "vcenter-alarms"}
    assert not any(d["ok"] for d in vcenter), "no vCenter listens: every part fails"
    assert all("unreachable" in d["reason"] for d in vcenter)
