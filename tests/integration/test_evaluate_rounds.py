"""The evaluator behind its FIFO queue, in moto: probe rounds in, one batch at a time, each site read once,
only what changed written, a failed round retried with the rounds after it, a judged round never judged again."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws

from dcwatch import runtime
from dcwatch.adapters.dynamodb import DynamoStateStore
from dcwatch.adapters.eventbridge import EventBridgePublisher
from dcwatch.config import load_config
from dcwatch.events import ProbeResult
from dcwatch.local.cloud import create_tables
from dcwatch.local.lambdas import LambdaContext, load_handler
from dcwatch.local.queues import sqs_event
from dcwatch.model import CheckState
from dcwatch.wiring import RULES, function, message_group
from tests.configs import write_pair_config
from tests.helpers import moto_credentials

pytestmark = pytest.mark.integration

# The evaluator judges only what was observed within the last hour (`dcwatch.detection.trust`), by its own clock.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
RULE = next(r for r in RULES if r.target == "Evaluate")


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    """The probe-rounds rule, its FIFO queue and the evaluator's tables, topic and state machine, as deployed."""
    moto_credentials(monkeypatch)
    config_path = write_pair_config(tmp_path, name="rounds")
    with mock_aws():
        events, sqs = boto3.client("events"), boto3.client("sqs")
        events.create_event_bus(Name="bus")
        url = sqs.create_queue(
            QueueName="rounds.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="rounds", EventBusName="bus", EventPattern=json.dumps(RULE.pattern))
        target = {"Id": "q", "Arn": arn, "SqsParameters": {"MessageGroupId": message_group("rounds")}}
        events.put_targets(Rule="rounds", EventBusName="bus", Targets=[target])
        tables = create_tables(boto3.client("dynamodb"), "rounds")
        topic = boto3.client("sns").create_topic(Name="alerts")["TopicArn"]
        machine = boto3.client("stepfunctions").create_state_machine(
            name="failover",
            definition='{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}',
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]
        env = {
            "DCWATCH_CONFIG": str(config_path),
            "DCWATCH_BUS_NAME": "bus",
            "DCWATCH_TABLE_NAME": tables["State"],
            "DCWATCH_AUDIT_TABLE_NAME": tables["Audit"],
            "DCWATCH_LOCKS_TABLE_NAME": tables["Locks"],
            "DCWATCH_TOPIC_ARN": topic,
            "DCWATCH_STATE_MACHINE_ARN": machine,
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        runtime.reset()
        yield load_config(config_path), url, arn, DynamoStateStore(tables["State"], tables["Audit"])
        runtime.reset()


def round_of(config, n: int, failing: str | None = None) -> list[ProbeResult]:
    """Round `n` from every vantage point: the standby's services off, `failing`'s checks all failing."""
    out = []
    for vantage in config.topology.vantage_points:
        for site, check in sorted(vantage.checks):
            endpoint = config.topology.endpoint(site, check)
            service = endpoint.service
            ok = site != failing and not (site != config.active_site and service is not None)
            out.append(
                ProbeResult(
                    site=site, check=check, service=service, kind="vcenter" if service is None else "http",
                    critical=endpoint.critical, ok=ok, reason="" if ok else "connection refused", latency_ms=2.0,
                    observed_at=T0 + timedelta(seconds=n), vantage=vantage.name, round_id=f"r{n}",
                )
            )  # fmt: skip
    return out


def receive(url: str, expected: int) -> list[dict]:
    sqs, messages = boto3.client("sqs"), []
    for _ in range(20):
        messages += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if len(messages) >= expected:
            break
        time.sleep(0.05)
    return messages


def invoke(messages: list[dict], arn: str, handler=None) -> dict:
    """One invocation; of a fresh environment unless `handler` is a loaded one (warm)."""
    context = LambdaContext("evaluate", "arn:aws:lambda:eu-west-1:1:function:evaluate", "req", time.monotonic() + 30)
    return (handler or load_handler(function("Evaluate")))(sqs_event(messages, arn), context)


def test_a_round_goes_through_the_queue_and_each_batch_reads_each_site_once(deployment, monkeypatch):
    config, url, arn, store = deployment
    published = EventBridgePublisher("bus").publish_probe_results(round_of(config, 1))
    messages = receive(url, 2 * len(config.vantage_points))
    assert published == len(round_of(config, 1))
    assert len(messages) == 2 * len(config.vantage_points), "one event per vantage point and site"
    queries = []
    session = boto3.session.Session()  # the handler's clients come from the default session: this one, hooked
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    session.events.register(
        "before-parameter-build.dynamodb.Query",
        lambda params, **_: queries.append(params["ExpressionAttributeValues"][":pk"]["S"]),
    )
    runtime.reset()

    answer = invoke(messages, arn)

    assert answer == {"batchItemFailures": []}
    sites = sorted(q for q in queries if q.startswith("SITE#"))
    assert sites == ["SITE#north", "SITE#south"], "the batch's rounds share one read of each site"
    states = store.site_checks(config.active_site) + store.site_checks(config.other_site(config.active_site))
    assert len(states) == len(round_of(config, 1)), "every check's state is written once, at its first result"


def test_a_warm_evaluator_reads_each_sites_generation_not_its_states_on_its_next_batch(deployment, monkeypatch):
    config, url, arn, _ = deployment
    calls = []
    session = boto3.session.Session()  # the handler's clients come from the default session: this one, hooked
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    session.events.register(
        "before-parameter-build.dynamodb.*",
        lambda model, params, **_: calls.append(
            f"{model.name} {params.get('ExpressionAttributeValues', {}).get(':pk', {}).get('S', '')}".strip()
        ),
    )
    runtime.reset()
    warm = load_handler(function("Evaluate"))
    for n in (1, 2):
        EventBridgePublisher("bus").publish_probe_results(round_of(config, n))
        messages = receive(url, 2 * len(config.vantage_points))
        calls.clear()
        assert invoke(messages, arn, warm) == {"batchItemFailures": []}
        boto3.client("sqs").delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        )
        if n == 1:
            assert {"Query SITE#north", "Query SITE#south"} <= set(calls), "the first batch reads both sites"

    # Then the next batch read no site's states: one GetItem per site for its generation
    assert not [c for c in calls if c.startswith("Query SITE#")], calls
    assert calls.count("GetItem") >= 2


def test_a_sites_generation_is_claimed_only_from_the_one_read(deployment):
    _, _, _, store = deployment
    first = store.claim_generation("north", None)
    assert first is not None and store.generation("north") == first
    assert store.claim_generation("north", None) is None, "claimed already: not from nothing"
    assert store.claim_generation("north", "stale") is None
    second = store.claim_generation("north", first)
    assert second not in (None, first) and store.generation("north") == second


def test_a_steady_round_writes_nothing_but_its_marks_and_a_judged_round_is_dropped_whole(deployment):
    config, url, arn, store = deployment
    for n in (1, 2):
        EventBridgePublisher("bus").publish_probe_results(round_of(config, n))
        messages = receive(url, 2 * len(config.vantage_points))
        assert invoke(messages, arn) == {"batchItemFailures": []}
        boto3.client("sqs").delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        )
    active = {(c.check, c.vantage): c for c in store.site_checks(config.active_site)}

    # The steady round wrote no state: its marks date the checks it passed (health.refreshed).
    assert {c.successes for c in active.values()} == {1}, "written at round 1 only"
    assert {c.last_observed_at for c in active.values()} == {T0 + timedelta(seconds=2)}

    # The same round once more (a redelivery) is judged already: nothing changes.
    before = sorted(store.site_checks(config.active_site), key=lambda c: (c.check, c.vantage))
    again = sqs_event_from(round_of(config, 2, failing=config.active_site))
    assert invoke(again, arn) == {"batchItemFailures": []}
    assert sorted(store.site_checks(config.active_site), key=lambda c: (c.check, c.vantage)) == before


def sqs_event_from(results: list[ProbeResult]) -> list[dict]:
    """The rounds of `results` as received messages (without the bus: a redelivery of the same rounds)."""
    from dcwatch.events import PROBE_ROUND, probe_rounds, probe_source

    return [
        {
            "MessageId": f"m{n}",
            "ReceiptHandle": f"h{n}",
            "Body": json.dumps(
                {
                    "source": probe_source(r.vantage),
                    "detail-type": PROBE_ROUND,
                    "detail": json.loads(r.model_dump_json(by_alias=True)),
                }
            ),
            "Attributes": {"MessageGroupId": "g"},
        }
        for n, r in enumerate(probe_rounds(results))
    ]


def test_a_round_that_fails_is_reported_with_every_round_after_it_and_nothing_before_it_is(deployment, monkeypatch):
    config, _, arn, store = deployment
    messages = sqs_event_from(round_of(config, 1))
    writes = []

    def throttle_the_second_write(**_):
        writes.append(1)
        if len(writes) == 2:  # the second round's check states: DynamoDB throttles them, after boto3's retries
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "throttled"}}
            raise botocore.exceptions.ClientError(error, "BatchWriteItem")

    session = boto3.session.Session()  # the handler's clients come from the default session: this one, hooked
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    session.events.register("before-call.dynamodb.BatchWriteItem", throttle_the_second_write)
    runtime.reset()

    answer = invoke(messages, arn)

    failed = [f["itemIdentifier"] for f in answer["batchItemFailures"]]
    assert failed == [m["MessageId"] for m in messages[1:]], "order kept: the rest waits for it"
    first = messages[0]["Body"]
    judged = json.loads(first)["detail"]
    assert {(c.check, c.vantage) for c in store.site_checks(judged["site"]) if c.vantage == judged["vantage"]} == {
        (r["check"], r["vantage"]) for r in judged["results"]
    }, "the round before the broken one was judged and kept"


def test_the_round_store_marks_chunks_and_refuses_a_chunk_judged_already(deployment):
    _, _, _, store = deployment
    assert store.mark_round("north", "aws-vpc", T0, 0, 2)
    assert not store.mark_round("north", "aws-vpc", T0, 0, 2), "the same chunk again"
    assert store.mark_round("north", "aws-vpc", T0, 1, 2)
    assert not store.mark_round("north", "aws-vpc", T0 - timedelta(seconds=1), 0, 1), "an older round, late"
    state = CheckState("north", "web", "shop", True, "UP", 0, 1, T0 - timedelta(seconds=5), vantage="aws-vpc")
    store.put_checks([state])
    checks, marks = store.site_snapshot("north")
    assert marks["aws-vpc"].whole and marks["aws-vpc"].seen == frozenset({0, 1})
    assert checks == [state.__class__(**{**state.__dict__, "last_observed_at": T0})], "dated by the whole round"
