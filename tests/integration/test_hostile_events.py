"""Hostile input to the evaluator, in moto, through its real handler: what anyone allowed to post on the bus could
send. Each forged, replayed, stale or oversized round is refused and logged, and changes nothing: no check state,
no round mark, no execution. Genuine rounds after it are judged as ever."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from dcwatch.events import PROBE_ROUND, REPLAY_FIELD, ProbeResult, ProbeRound, probe_rounds, probe_source
from tests.integration.test_evaluate_rounds import deployment, invoke, receive, round_of  # noqa: F401

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def envelope(probe_round: ProbeRound, source: str | None = None, **extra: Any) -> dict[str, Any]:
    """The EventBridge event the rule queues for the evaluator; `source` as the sender chose it."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": PROBE_ROUND,
        "source": probe_source(probe_round.vantage) if source is None else source,
        "account": "123456789012",
        "time": NOW.isoformat(),
        "region": "eu-west-1",
        "resources": [],
        "detail": json.loads(probe_round.model_dump_json(by_alias=True)),
        **extra,
    }


def messages(bodies: list[str]) -> list[dict[str, Any]]:
    """Queued messages, as the probe-rounds queue hands them to the evaluator."""
    return [
        {"MessageId": f"m{n}", "ReceiptHandle": f"h{n}", "Body": body, "Attributes": {"MessageGroupId": "g"}}
        for n, body in enumerate(bodies)
    ]


def rounds(config, n: int, failing: str | None = None, **update: Any) -> list[ProbeRound]:
    """Round `n` (observed `n` seconds after NOW - 5 min) as ProbeRound events; `update` changes every result."""
    results = [
        r.model_copy(update={"observed_at": NOW - timedelta(minutes=5) + timedelta(seconds=n), **update})
        for r in round_of(config, n, failing)
    ]
    return probe_rounds(results)


def state_table(store) -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName=store.table, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def executions() -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions")
    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    return sfn.list_executions(stateMachineArn=machine)["executions"]


def logged(caplog, message: str) -> list[dict[str, Any]]:
    """The handler's structured log lines with this message: their fields (Powertools' extra keys)."""
    return [vars(r) for r in caplog.records if r.getMessage() == message]


def refusals(caplog) -> list[dict[str, Any]]:
    return logged(caplog, "probe round refused")


def judge(bodies: list[str], arn: str) -> dict[str, Any]:
    answer = invoke(messages(bodies), arn)
    assert answer == {"batchItemFailures": []}, "refused, not retried: no retry makes it true"
    return answer


def one_round(config, **update: Any) -> ProbeRound:
    """The active site's round from the VPC vantage point, every result failing, changed by `update`."""
    probe_round = next(r for r in rounds(config, 1, failing=config.active_site) if r.vantage == "aws-vpc")
    return probe_round.model_copy(update=update)


def with_results(probe_round: ProbeRound, whole: dict[str, Any] | None = None, **update: Any) -> ProbeRound:
    """The round changed by `whole`, every result by `update` (validated again, as the evaluator will)."""
    results = tuple(r.model_copy(update=update) for r in probe_round.results)
    changed = probe_round.model_copy(update={"results": results, **(whole or {})})
    return ProbeRound.model_validate(json.loads(changed.model_dump_json(by_alias=True)))


def hostile(config) -> dict[str, tuple[str, str]]:
    """name -> (queued body, what the refusal's reason says)."""
    down = one_round(config)
    critical = {r.check: config.topology.endpoint(r.site, r.check).critical for r in down.results}
    claimed = down.model_copy(
        update={"results": tuple(r.model_copy(update={"critical": not critical[r.check]}) for r in down.results)}
    )
    later = NOW + timedelta(days=365 * 73)  # 2099
    older = NOW - timedelta(hours=2)
    future = with_results(down, {"started_at": later}, observed_at=later)
    old = with_results(down, {"started_at": older}, observed_at=older)
    unknown_check = with_results(down, check="nope")
    atlantis = with_results(down, {"site": "atlantis"}, site="atlantis")
    mars = with_results(down, {"vantage": "aws-mars"}, vantage="aws-mars")
    huge = with_results(down, reason="x" * 300_000)
    return {
        "forged: the bare source any principal could use": (json.dumps(envelope(down, "dcwatch.probe")), "source"),
        "forged: another vantage point's source": (json.dumps(envelope(down, probe_source("aws-public"))), "source"),
        "forged: not a probe at all": (json.dumps(envelope(down, "evil.corp")), "source"),
        "future-dated (2099)": (json.dumps(envelope(future)), "future-dated"),
        "too old (2 hours)": (json.dumps(envelope(old)), "too old"),
        "an archive replay": (json.dumps(envelope(down, **{REPLAY_FIELD: "incident-review"})), "replay"),
        "an unknown check": (json.dumps(envelope(unknown_check)), "does not run nope"),
        "an unknown site": (json.dumps(envelope(atlantis)), "site atlantis is not one of"),
        "an unknown vantage point": (json.dumps(envelope(mars)), "vantage aws-mars is not one of"),
        "a claimed critical": (json.dumps(envelope(claimed)), "the config says"),
        "oversized (300 KB)": (json.dumps(envelope(huge)), "oversized"),
        "not JSON": ("{not json", "not a ProbeRound"),
        "no ProbeRound in it": (
            json.dumps({"source": probe_source("aws-vpc"), "detail-type": PROBE_ROUND}),
            "no ProbeRound",
        ),
    }


CASES = [
    "forged: the bare source any principal could use",
    "forged: another vantage point's source",
    "forged: not a probe at all",
    "future-dated (2099)",
    "too old (2 hours)",
    "an archive replay",
    "an unknown check",
    "an unknown site",
    "an unknown vantage point",
    "a claimed critical",
    "oversized (300 KB)",
    "not JSON",
    "no ProbeRound in it",
]


@pytest.mark.parametrize("case", CASES)
def test_a_hostile_round_is_refused_logged_and_changes_nothing(deployment, caplog, case):  # noqa: F811
    config, _, arn, store = deployment
    judge([json.dumps(envelope(r)) for r in rounds(config, 0)], arn)  # genuine, all UP: there is state to keep
    before = state_table(store)
    caplog.clear()
    body, why = hostile(config)[case]

    judge([body], arn)

    assert state_table(store) == before, "no check state, no round mark, no generation changed"
    assert executions() == []
    (refused,) = refusals(caplog)
    assert why in refused["reason"], refused


def test_forged_down_rounds_from_two_vantage_names_start_no_failover_where_genuine_ones_do(deployment, caplog):  # noqa: F811
    config, _, arn, store = deployment
    judge([json.dumps(envelope(r)) for r in rounds(config, 0)], arn)

    for n in (1, 2, 3):  # DOWN from both vantage points, past failures_to_down, quorum met, as any principal posts it
        judge([json.dumps(envelope(r, "dcwatch.probe")) for r in rounds(config, n, failing=config.active_site)], arn)

    assert executions() == [], "no failover, so no Fence of the healthy production VMs"
    assert {c.status for c in store.site_checks(config.active_site)} == {"UP"}
    assert len(refusals(caplog)) == 3 * 2 * len(config.vantage_points)

    for n in (4, 5, 6):  # the same rounds from the probes themselves: the failover starts
        judge([json.dumps(envelope(r)) for r in rounds(config, n, failing=config.active_site)], arn)
    assert len(executions()) == 1


def test_a_round_dated_2099_does_not_freeze_its_checks(deployment):  # noqa: F811
    config, _, arn, store = deployment
    later = NOW + timedelta(days=365 * 73)
    frozen = [with_results(r, {"started_at": later}, observed_at=later) for r in rounds(config, 0)]
    judge([json.dumps(envelope(r)) for r in frozen], arn)

    judge([json.dumps(envelope(r)) for r in rounds(config, 1, failing=config.active_site)], arn)

    failing = [c for c in store.site_checks(config.active_site) if c.failures]
    assert failing and all(c.last_observed_at < later for c in failing), "the genuine round was judged"


def test_the_rule_lets_no_archive_replay_nor_foreign_source_reach_the_evaluator(deployment):  # noqa: F811
    config, url, _, _ = deployment
    events = boto3.client("events")
    bus = events.describe_event_bus(Name="bus")["Arn"]
    archive = events.create_archive(ArchiveName="all", EventSourceArn=bus)["ArchiveArn"]
    genuine = rounds(config, 1)[0]
    entry = {"Detail": json.dumps(envelope(genuine)["detail"]), "DetailType": PROBE_ROUND, "EventBusName": "bus"}
    events.put_events(Entries=[{**entry, "Source": probe_source(genuine.vantage)}])
    events.put_events(Entries=[{**entry, "Source": "dcwatch.probe"}, {**entry, "Source": "evil.corp"}])
    (queued,) = receive(url, 1)  # the genuine round only
    boto3.client("sqs").delete_message(QueueUrl=url, ReceiptHandle=queued["ReceiptHandle"])  # FIFO: the next may come

    start = NOW - timedelta(hours=1)
    events.start_replay(
        ReplayName="review",
        EventSourceArn=archive,
        EventStartTime=start,
        EventEndTime=datetime.now(UTC) + timedelta(minutes=1),
        Destination={"Arn": bus},
    )
    assert events.describe_replay(ReplayName="review")["State"] == "COMPLETED"
    assert receive(url, 1) == [], "the replayed events are archived ones: the rule does not queue them"


def test_a_check_removed_from_the_config_no_longer_stands_in_the_verdict_and_is_pruned(deployment, caplog):  # noqa: F811
    config, _, arn, store = deployment
    gone = ProbeResult.model_validate(
        {
            **json.loads(round_of(config, 0)[0].model_dump_json(by_alias=True)),
            "check": "old-check",
            "vantage": "aws-vpc",
        }
    )
    store.put_checks([_state_of(gone)])  # its last UP, stored before the check was removed from the config

    for n in (1, 2, 3):
        judge([json.dumps(envelope(r)) for r in rounds(config, n, failing=config.active_site)], arn)

    assert "old-check" not in {c.check for c in store.site_checks(gone.site)}, "pruned"
    assert len(executions()) == 1, "site_rule all: the site went DOWN without the removed check's last UP"
    (pruned,) = logged(caplog, "check states pruned: the config no longer names them")
    assert pruned["pruned"] == [f"old-check@aws-vpc at {gone.site}"]


def _state_of(result: ProbeResult):
    from dcwatch.model import CheckState

    return CheckState(
        result.site, result.check, result.service, True, "UP", 0, 1, result.observed_at, vantage=result.vantage
    )
