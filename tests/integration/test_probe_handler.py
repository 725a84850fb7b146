"""The probe function as the schedule invokes it: rounds on the interval, every result on the bus."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from dcwatch import runtime
from dcwatch.local.lambdas import LambdaContext, load_handler
from dcwatch.wiring import RULES, function
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
        # As CDK deploys it: the probe in the VPC, which reaches the private vCenters and the public services.
        "DCWATCH_VANTAGE": "aws-vpc",
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
            Name="all",
            EventBusName="dcwatch-probe",
            EventPattern=json.dumps(next(r for r in RULES if r.target == "Evaluate").pattern),
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
    published = [b["detail"] for b in received(sqs, url)]
    assert sorted((p["roundId"], p["site"]) for p in published) == [
        (f"sched-1-{n}", site) for n in range(3) for site in ("north", "south")
    ], "one ProbeRound per round and site"
    details = [d for p in published for d in p["results"]]
    assert len(details) == 3 * checks_per_round
    vcenter = [d for d in details if d["check"].startswith("vcenter") and d["roundId"] == "sched-1-0"]
    assert {d["check"] for d in vcenter} == {"vcenter", "vcenter-hosts", "vcenter-datastores", "vcenter-alarms"}
    assert not any(d["ok"] for d in vcenter), "no vCenter listens: every part fails"
    assert all("unreachable" in d["reason"] for d in vcenter)


def test_a_round_whose_results_the_bus_keeps_refusing_is_counted_lost_and_the_next_rounds_still_run(
    probe_env, capsys, caplog, monkeypatch
):
    sqs, url = probe_env
    refused_calls = []

    def refuse_the_first_round(params, **_):
        """The bus throttles every entry of round 0, at every attempt; the other rounds reach moto."""
        entries = json.loads(params["body"])["Entries"]
        if not all(json.loads(e["Detail"])["roundId"].endswith("-0") for e in entries):  # one round per call
            return None
        refused_calls.append(len(entries))
        answer = {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}
        return AWSResponse(params["url"], 200, {}, None), {
            "FailedEntryCount": len(entries),
            "Entries": [answer] * len(entries),
        }

    # botocore's event system, on the session the function's default clients come from.
    session = boto3.session.Session()
    session.events.register("before-call.events.PutEvents", refuse_the_first_round)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    handler = load_handler(function("Probe"))
    context = LambdaContext(
        "probe", "arn:aws:lambda:eu-central-1:1:function:probe", "req-2", deadline=time.monotonic() + 30
    )

    answer = handler({"id": "sched-2"}, context)

    rounds = answer["rounds"]
    assert [r["roundId"] for r in rounds] == ["sched-2-0", "sched-2-1", "sched-2-2"], "no round is lost to the bus"
    assert [(r["published"], r["lost"]) for r in rounds] == [(0, 12), (12, 0), (12, 0)]
    assert answer["lost"] == 12
    assert refused_calls == [2, 2, 2], "round 0's two events (one per site) were tried three times"
    assert {b["detail"]["roundId"] for b in received(sqs, url)} == {"sched-2-1", "sched-2-2"}
    output = capsys.readouterr().out
    lost = [json.loads(line) for line in output.splitlines() if '"ProbeResultsLost"' in line and '"_aws"' in line]
    assert [(m["ProbeResultsLost"], m["vantage"]) for m in lost] == [([12.0], "aws-vpc")], "one metric, for round 0"
    [logged] = [r for r in caplog.records if r.getMessage() == "probe results lost"]
    assert (logged.levelname, logged.round_id, logged.lost, logged.errors) == (
        "ERROR", "sched-2-0", 12, {"ThrottlingException": 12}
    )  # fmt: skip
