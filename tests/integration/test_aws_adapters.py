"""AWS adapters against moto (`mock_aws`): what they write is what the next reader sees."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from moto import mock_aws

import dcwatch.adapters.dynamodb.table as ddb
from dcwatch import control
from dcwatch.adapters.aws import is_transient
from dcwatch.adapters.dynamodb import DynamoLeases, DynamoStateStore
from dcwatch.adapters.eventbridge import MAX_ATTEMPTS, EventBridgePublisher, backoff_s, batches
from dcwatch.adapters.route53 import Route53Dns
from dcwatch.adapters.secrets import SecretsManagerCredentials
from dcwatch.adapters.sns import SnsNotifier
from dcwatch.adapters.stepfunctions import StepFunctionsStarter
from dcwatch.config import load_config
from dcwatch.detection.announce import part_keys
from dcwatch.errors import EntriesRefused, TransientError, VcenterRefused
from dcwatch.events import ProbeResult
from dcwatch.local.cloud import create_tables
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.model import AutomationSwitch, CheckState, HeldBack, LastFailover, StoredStatus
from dcwatch.ports import Lease, RecordValues
from tests.helpers import moto_credentials

pytestmark = pytest.mark.integration
REGION = "eu-central-1"
T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def aws(monkeypatch):
    moto_credentials(monkeypatch, REGION)
    with mock_aws():
        yield


def queue_arn(sqs, url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def drain(sqs, url, expected, attempts=20):
    bodies = []
    for _ in range(attempts):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        for m in messages:
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        if len(bodies) >= expected:
            break
    return bodies


def result(i: int, ok: bool = True) -> ProbeResult:
    return ProbeResult(
        site="north",
        check=f"c{i}",
        kind="http",
        critical=True,
        ok=ok,
        latencyMs=1.5,
        observedAt=T0,
        vantage="v",
        roundId="r1",
    )


def test_a_probe_round_reaches_the_bus_as_one_event_per_vantage_point_and_site():
    events, sqs = boto3.client("events"), boto3.client("sqs")
    events.create_event_bus(Name="bus")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    events.put_rule(Name="r", EventBusName="bus", EventPattern=json.dumps({"detail-type": ["ProbeRound"]}))
    events.put_targets(Rule="r", EventBusName="bus", Targets=[{"Id": "1", "Arn": queue_arn(sqs, url)}])
    calls = []
    client = boto3.client("events")
    client.meta.events.register(
        "before-call.events.PutEvents", lambda params, **_: calls.append(len(json.loads(params["body"])["Entries"]))
    )
    results = [result(i) for i in range(23)] + [result(i).model_copy(update={"site": "south"}) for i in range(5)]

    sent = EventBridgePublisher("bus", client).publish_probe_results(results)

    assert sent == 28 and calls == [2], "every result, in one call of two events"
    received = drain(sqs, url, 2)
    assert {b["source"] for b in received} == {"dcwatch.probe.v"}, "the vantage point's own source"
    by_site = {b["detail"]["site"]: b["detail"] for b in received}
    assert sorted(r["check"] for r in by_site["north"]["results"]) == sorted(f"c{i}" for i in range(23))
    assert (by_site["south"]["chunk"], by_site["south"]["chunks"], len(by_site["south"]["results"])) == (0, 1, 5)


def entries(n: int) -> list[dict]:
    return [
        {"Source": "dcwatch.probe", "DetailType": "ProbeRound", "Detail": json.dumps({"n": i}), "EventBusName": "bus"}
        for i in range(n)
    ]


def test_events_reach_the_bus_in_calls_of_at_most_ten():
    client = boto3.client("events")
    client.create_event_bus(Name="bus")
    calls = []
    client.meta.events.register(
        "before-call.events.PutEvents", lambda params, **_: calls.append(len(json.loads(params["body"])["Entries"]))
    )
    assert EventBridgePublisher("bus", client).put(entries(23)) == 23
    assert calls == [10, 10, 3]


def test_batches_also_respect_the_256_kb_limit():
    big = {"Detail": "x" * 100_000}
    assert [len(b) for b in batches([big] * 5)] == [2, 2, 1]


def make_table(name="dcwatch"):
    """The tables as the stack and the local runtime create them."""
    tables = create_tables(boto3.client("dynamodb"), name)
    return DynamoStateStore(tables["State"], tables["Audit"])


def make_leases(name="dcwatch") -> DynamoLeases:
    return DynamoLeases(create_tables(boto3.client("dynamodb"), name)["Locks"])


def test_check_state_round_trips_per_vantage_point_and_a_stale_writer_loses():
    store = make_table()
    first = CheckState("north", "web", "shop", True, "UP", 0, 1, T0, "", vantage="aws-public")
    assert store.put_check(first, None)
    assert store.get_check("north", "web", "aws-public") == first
    assert store.get_check("north", "web", "aws-vpc") is None, "each vantage point has its own state"
    newer = CheckState(
        "north",
        "web",
        "shop",
        True,
        "DOWN",
        1,
        0,
        T0 + timedelta(seconds=1),
        "status 503",
        T0,
        "aws-public",
        (T0,),
        True,
        T0 + timedelta(milliseconds=40),
    )
    assert store.put_check(newer, T0)
    assert store.get_check("north", "web", "aws-public") == newer
    assert not store.put_check(newer, T0), "a writer that read the old state must not overwrite the new one"
    assert not store.put_check(first, None), "a first write must not overwrite an existing check"
    other = CheckState("north", "web", "shop", True, "UP", 0, 1, T0, "", vantage="aws-vpc")
    assert store.put_check(other, None)
    assert sorted(store.site_checks("north"), key=lambda c: c.vantage) == [newer, other]
    assert store.site_checks("south") == []


def test_only_one_evaluator_wins_a_change_of_condition():
    store = make_table()
    up = store.condition("site/north", "UP")
    assert up == StoredStatus("UP")
    held = HeldBack.gates("automation off")
    down = StoredStatus("DOWN", since=T0, incident_id="north-down-1", blocked=held, alerted=True, version=1)
    assert store.change_condition("site/north", up, down)
    assert not store.change_condition("site/north", up, replace(down, incident_id="north-down-2"))
    assert store.condition("site/north", "UP") == down
    settled = replace(down, blocked=None, version=2)
    assert store.change_condition("site/north", down, settled)
    assert not store.change_condition("site/north", down, settled), "the same version is taken once"
    assert store.condition("site/north", "UP") == settled


def test_the_automation_switch_cooldown_and_acknowledgements_are_kept():
    store = make_table()
    assert store.automation() == AutomationSwitch()
    off = AutomationSwitch(False, "storage migration", "alice", T0)
    store.set_automation(off)
    assert store.automation() == off
    assert store.last_failover() is None
    store.record_failover(LastFailover("north-down-1", T0))
    assert store.last_failover() == LastFailover("north-down-1", T0)
    assert not store.acknowledged("south-down-2")
    store.acknowledge("south-down-2", "alice", "south really is gone")
    assert store.acknowledged("south-down-2")


def test_the_lease_has_one_holder_and_only_the_owner_renews_or_releases_it():
    leases = make_leases()
    assert leases.holder() is None
    assert leases.acquire("inc-1", 60, T0) == Lease("inc-1", T0 + timedelta(seconds=60))
    assert leases.acquire("inc-2", 60, T0 + timedelta(seconds=1)).owner == "inc-1", "held: the other gets the holder"
    assert leases.acquire("inc-1", 60, T0 + timedelta(seconds=2)).owner == "inc-1", "the owner may take it again"
    assert not leases.renew("inc-2", 60, T0) and not leases.release("inc-2")
    assert leases.renew("inc-1", 600, T0 + timedelta(seconds=3))
    assert leases.holder() == Lease("inc-1", T0 + timedelta(seconds=603))
    assert leases.release("inc-1") and leases.holder() is None
    assert not leases.release("inc-1"), "released once"


def test_an_expired_lease_can_be_taken_over_and_its_old_owner_can_no_longer_renew_it():
    leases = make_leases()
    leases.acquire("inc-1", 60, T0)
    taken = leases.acquire("inc-2", 60, T0 + timedelta(seconds=61))
    assert taken.owner == "inc-2"
    assert not leases.renew("inc-1", 60, T0 + timedelta(seconds=62))
    assert not leases.release("inc-1")


def test_the_lock_keeps_the_site_its_recovery_leaves_through_renewals():
    leases = make_leases()
    leases.acquire("dc-a-down-1", 60, T0, leaving="dc-a")
    assert leases.renew("dc-a-down-1", 60, T0 + timedelta(seconds=30))
    assert leases.holder() == Lease("dc-a-down-1", T0 + timedelta(seconds=90), "dc-a")
    leases.release("dc-a-down-1")
    assert leases.acquire("drill-1", 60, T0).leaving is None and leases.holder().leaving is None


def test_of_many_acquirers_exactly_one_wins_and_all_see_it():
    # One after another, each with its own client: the condition expression decides, not who came first
    # to a lock of ours. (DynamoDB makes the conditional write atomic; moto alone does not under threads:
    # test_local_moto.py races them against the local runtime's moto, which does.)
    leases = make_leases()
    contenders = [f"evaluator-{i}" for i in range(8)]
    holders = [DynamoLeases(leases.table, boto3.client("dynamodb")).acquire(o, 60, T0).owner for o in contenders]
    winner = leases.holder()
    assert winner is not None and winner.owner == contenders[0]
    assert set(holders) == {winner.owner}, "every contender sees the same single holder"


def test_the_active_site_defaults_to_the_config_until_a_failover_records_another():
    store = make_table()
    assert store.active_site("north") == "north"
    store.set_active_site("south", "north-down-1")
    assert store.active_site("north") == "south"


def test_the_audit_trail_keeps_every_record_in_order():
    store = make_table()
    store.append_audit("inc-1", {"outcome": "started"})
    store.append_audit("inc-1", {"outcome": "succeeded"})
    store.append_audit("inc-2", {"outcome": "other"})
    assert [r["outcome"] for r in store.audit("inc-1")] == ["started", "succeeded"]


def test_the_audit_trail_is_kept_apart_from_the_state_it_explains():
    store = make_table()
    store.set_active_site("south", "inc-1")
    store.append_audit("inc-1", {"outcome": "succeeded"})
    dynamodb = boto3.client("dynamodb")
    assert [i["pk"]["S"] for i in dynamodb.scan(TableName=store.table)["Items"]] == ["CONTROL"]
    assert [i["pk"]["S"] for i in dynamodb.scan(TableName=store.audit_table)["Items"]] == ["inc-1"]


def test_the_locks_table_expires_leases_by_their_ttl_attribute():
    make_table()
    ttl = boto3.client("dynamodb").describe_time_to_live(TableName="dcwatch-locks")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiresAt"}


def test_route53_upsert_switches_the_values_and_reports_insync():
    route53 = boto3.client("route53")
    zone = route53.create_hosted_zone(Name="example.test.", CallerReference="z")["HostedZone"]["Id"]
    dns = Route53Dns()
    records = [
        RecordValues("example.test.", "shop.example.test.", "A", 60, ("127.0.32.1",)),
        RecordValues("example.test.", "radio.example.test.", "A", 30, ("127.0.32.1", "127.0.32.2")),
    ]
    changes = dns.upsert(records)
    assert len(changes) == 1, "one change batch per zone"
    assert dns.in_sync(changes)
    assert dns.values("example.test.", "radio.example.test.", "A") == ["127.0.32.1", "127.0.32.2"]
    assert dns.zone_id("example.test.") == zone.split("/")[-1]


def test_route53_names_a_missing_zone():
    with pytest.raises(LookupError, match="nothing.test."):
        Route53Dns().zone_id("nothing.test.")


def test_a_notification_reaches_the_subscribers():
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(sqs, url))
    SnsNotifier(topic).publish("[dcwatch] FAILOVER DONE", "body")
    (body,) = drain(sqs, url, 1)
    assert body["Subject"] == "[dcwatch] FAILOVER DONE" and body["Message"] == "body"


def test_a_workflow_started_twice_under_one_incident_runs_once():
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="failover",
        roleArn="arn:aws:iam::123456789012:role/r",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]
    starter = StepFunctionsStarter(arn)
    first = starter.start("north-down-20261125T030000Z", {"a": 1})
    second = starter.start("north-down-20261125T030000Z", {"a": 1})
    assert first == second
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1


def test_vcenter_credentials_come_from_secrets_manager_and_a_malformed_secret_is_named():
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(Name="vc/north", SecretString=json.dumps({"username": "svc", "password": "pw"}))
    secrets.create_secret(Name="vc/bad", SecretString="not json")
    credentials = SecretsManagerCredentials().get("vc/north")
    assert credentials.username == "svc" and credentials.password == "pw"
    assert "pw" not in repr(credentials)
    with pytest.raises(VcenterRefused, match="vc/bad"):
        SecretsManagerCredentials().get("vc/bad")


def test_a_vcenter_secret_that_cannot_be_read_is_a_refusal_never_an_unreachable_site():
    # Given no secret of that name: the vCenter may be fine, we just cannot log in to it
    with pytest.raises(VcenterRefused, match="vc/missing of the vCenter credentials cannot be read: ResourceNotFound"):
        SecretsManagerCredentials().get("vc/missing")


REFUSED = {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}


def refusing(*refused: bool) -> dict:
    """A PutEvents answer refusing the entries marked True, accepting the rest."""
    return {
        "FailedEntryCount": sum(refused),
        "Entries": [REFUSED if no else {"EventId": str(i)} for i, no in enumerate(refused)],
    }


def test_entries_the_bus_refuses_are_sent_again_after_a_short_wait():
    client = boto3.client("events")
    stubber = Stubber(client)
    stubber.add_response("put_events", refusing(False, True, False))
    stubber.add_response("put_events", refusing(False), expected_params={"Entries": [ANY]})
    waits: list[float] = []
    with stubber:
        assert EventBridgePublisher("bus", client, sleep=waits.append).put(entries(3)) == 3
    stubber.assert_no_pending_responses()
    assert len(waits) == 1 and 0.1 <= waits[0] <= 0.2


def test_entries_refused_at_every_attempt_are_counted_after_bounded_jittered_waits():
    client = boto3.client("events")
    stubber = Stubber(client)
    for _ in range(MAX_ATTEMPTS):
        stubber.add_response("put_events", refusing(True))
    waits: list[float] = []
    with stubber, pytest.raises(EntriesRefused, match="refused 1 entries after 3 attempts") as refused:
        EventBridgePublisher("bus", client, sleep=waits.append).publish_probe_results([result(0)])
    assert (refused.value.sent, refused.value.lost, refused.value.errors) == (0, 1, {"ThrottlingException": 1})
    assert isinstance(refused.value, TransientError), "callers that retry transient errors keep doing so"
    assert len(waits) == MAX_ATTEMPTS - 1 and sum(waits) <= 0.6, "the waits are short and bounded"
    assert [backoff_s(1, lambda: 0), backoff_s(1, lambda: 1), backoff_s(2, lambda: 0), backoff_s(2, lambda: 1)] == [
        0.1, 0.2, 0.2, 0.4
    ], "each wait doubles, half of it jittered"  # fmt: skip


def test_a_batch_the_bus_keeps_refusing_does_not_keep_the_other_batches_off_it():
    client = boto3.client("events")
    stubber = Stubber(client)
    stubber.add_response("put_events", refusing(*[False] * 10))
    stubber.add_response("put_events", refusing(True, *[False] * 9))
    stubber.add_response("put_events", refusing(False, False, False))
    stubber.add_response("put_events", refusing(True))
    stubber.add_response("put_events", refusing(True))
    with stubber, pytest.raises(EntriesRefused) as refused:
        EventBridgePublisher("bus", client, sleep=lambda _: None).put(entries(23))
    stubber.assert_no_pending_responses()
    assert (refused.value.sent, refused.value.lost) == (22, 1)


def test_a_refused_probe_round_counts_every_result_it_carries_as_lost():
    client = boto3.client("events")
    stubber = Stubber(client)
    stubber.add_response("put_events", refusing(False, True))
    for _ in range(MAX_ATTEMPTS - 1):
        stubber.add_response("put_events", refusing(True))
    results = [result(i) for i in range(7)] + [result(i).model_copy(update={"site": "south"}) for i in range(4)]
    with stubber, pytest.raises(EntriesRefused) as refused:
        EventBridgePublisher("bus", client, sleep=lambda _: None).publish_probe_results(results)
    assert (refused.value.sent, refused.value.lost) == (7, 4), "north's round made it, south's 4 results did not"


def test_a_throttled_call_is_tried_again_with_everything_it_did_not_send():
    client = boto3.client("events")
    stubber = Stubber(client)
    stubber.add_response("put_events", refusing(*[False] * 10))
    stubber.add_client_error("put_events", service_error_code="ThrottlingException", http_status_code=400)
    stubber.add_response("put_events", refusing(*[False] * 10))
    stubber.add_response("put_events", refusing(False, False, False))
    with stubber:
        publisher = EventBridgePublisher("bus", client, sleep=lambda _: None)
        assert publisher.put(entries(23)) == 23
    stubber.assert_no_pending_responses()


def test_a_rotated_vcenter_password_is_read_again_once_the_cached_one_is_old():
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(Name="vc/north", SecretString=json.dumps({"username": "svc", "password": "old"}))
    now = [0.0]
    credentials = SecretsManagerCredentials(max_age_s=300, clock=lambda: now[0])
    assert credentials.get("vc/north").password == "old"
    secrets.put_secret_value(SecretId="vc/north", SecretString=json.dumps({"username": "svc", "password": "new"}))
    now[0] = 299
    assert credentials.get("vc/north").password == "old", "within its age the cached value saves a call"
    now[0] = 301
    assert credentials.get("vc/north").password == "new"


def test_two_writers_at_the_same_instant_both_keep_their_audit_record(monkeypatch):
    """Each Lambda environment is a process of its own: the same microsecond must still give two keys."""

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return T0

    store = make_table()
    monkeypatch.setattr(ddb, "datetime", Frozen)
    for writer in ("Evaluate", "Steps"):
        monkeypatch.setattr(ddb, "_sequence", itertools.count(), raising=False)  # a fresh process counts from 0
        store.append_audit("inc-1", {"writer": writer})
    assert sorted(r["writer"] for r in store.audit("inc-1")) == ["Evaluate", "Steps"]


@pytest.mark.parametrize(
    ("code", "transient"),
    [
        ("InternalServerError", True),  # DynamoDB
        ("KMSThrottlingException", True),  # SNS or DynamoDB asking KMS
        ("InternalServiceError", True),  # Secrets Manager
        ("ThrottlingException", True),  # KMS, Secrets Manager
        ("ValidationException", False),
        ("AccessDeniedException", False),
    ],
)
def test_aws_faults_that_pass_are_transient_and_the_others_are_not(code, transient):
    error = ClientError({"Error": {"Code": code, "Message": "injected"}}, "PutItem")
    assert is_transient(error) is transient


def test_a_transaction_cancelled_only_by_throttling_or_a_conflict_is_transient_a_failed_condition_is_not():
    def cancelled(*reasons: str) -> ClientError:
        response = {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": r} for r in reasons],
        }
        return ClientError(response, "TransactWriteItems")  # type: ignore[arg-type]

    assert is_transient(cancelled("None", "ThrottlingError")) and is_transient(cancelled("TransactionConflict"))
    assert not is_transient(cancelled("ConditionalCheckFailed", "None")) and not is_transient(cancelled("None"))


def test_the_outcome_and_its_audit_record_land_together_or_not_at_all():
    store = make_table()
    store.record_outcome("inc-1", {"outcome": "succeeded"}, active_site="south", failover=LastFailover("inc-1", T0))
    assert store.active_site("north") == "south" and store.last_failover() == LastFailover("inc-1", T0)
    assert [r["outcome"] for r in store.audit("inc-1")] == ["succeeded"]

    boto3.client("dynamodb").delete_table(TableName=store.audit_table)
    with pytest.raises(Exception, match="TransactWriteItems|ResourceNotFound"):
        store.record_outcome("inc-2", {"outcome": "succeeded"}, active_site="north", failover=LastFailover("inc-2", T0))
    assert store.active_site("north") == "south" and store.last_failover() == LastFailover("inc-1", T0)


@pytest.mark.parametrize("services", [2, 120])
def test_the_conditions_a_move_starts_afresh_are_deleted_with_it_beyond_one_transaction_too(services):
    """The parts of the site production moves to (its vCenter, each service) start afresh; other conditions stay.
    120 services exceed a transaction's 100 writes: the rest go right after it."""
    store = make_table()
    down = StoredStatus("DOWN", since=T0, version=1)
    keys = part_keys("south", [f"svc{n}" for n in range(services)])
    for key in [*keys, "site/north", "vcenter/north"]:
        assert store.change_condition(key, StoredStatus("UP"), down)
    store.record_outcome("inc-3", {"outcome": "succeeded"}, active_site="south", fresh_conditions=keys)
    assert {key: store.condition(key, "UP").status for key in keys} == dict.fromkeys(keys, "UP"), "never judged"
    assert store.condition("site/north", "UP").status == store.condition("vcenter/north", "UP").status == "DOWN"
    assert store.active_site("north") == "south" and [r["outcome"] for r in store.audit("inc-3")] == ["succeeded"]


def test_an_operators_switch_window_and_acknowledgement_land_with_their_audit_record_or_not_at_all():
    store, config = make_table(), load_config(DEMO_CONFIG)
    control.switch_automation(store, False, "storage migration", "alice", T0, caller="arn:aws:iam::1:user/alice")
    assert not store.automation().enabled
    assert [r["kind"] for r in store.audit(control.AUTOMATION_AUDIT)] == ["automation"]

    boto3.client("dynamodb").delete_table(TableName=store.audit_table)  # the audit cannot be written now
    with pytest.raises(Exception, match="TransactWriteItems|ResourceNotFound"):
        control.switch_automation(store, True, "migration done", "alice", T0)
    with pytest.raises(Exception, match="TransactWriteItems|ResourceNotFound"):
        control.open_maintenance(store, config, "dc-a", None, timedelta(hours=1), "patching", "bob", T0)
    with pytest.raises(Exception, match="TransactWriteItems|ResourceNotFound"):
        control.acknowledge(store, "dc-a-down-1", "dc-a really is gone", "carol", T0)
    # none of the three changes landed without its record
    assert not store.automation().enabled
    assert store.maintenance_windows() == [] and not store.acknowledged("dc-a-down-1")
