"""Alarms reach the alerts topic, the watchdog is watched, the dashboard shows what the functions emit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from dcwatch import observability
from dcwatch_infra import constants
from tests.helpers import probe_result
from tests.infrastructure.synth import Synth
from tests.infrastructure.template import refs, resources

pytestmark = pytest.mark.infrastructure

# The demo's topology: a probe outside any VPC and one inside its network.
DEMO_VANTAGES = ["aws-public", "aws-vpc"]


def alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    """Alarm properties by the name's tail (`dcwatch-<name>-<what>` -> what)."""
    prefix = f"dcwatch-{synth.config.name}-"
    return {
        a["Properties"]["AlarmName"].removeprefix(prefix): a["Properties"]
        for a in resources(synth, "AWS::CloudWatch::Alarm").values()
    }


def metric_of(alarm: dict[str, Any]) -> dict[str, Any]:
    """Namespace, name, dimensions, period and statistic, whether the alarm names a metric or a query."""
    if "Metrics" in alarm:
        [query] = alarm["Metrics"]
        stat = query["MetricStat"]
        metric = stat["Metric"]
        period, statistic = stat["Period"], stat["Stat"]
    else:
        metric, period, statistic = alarm, alarm["Period"], alarm["Statistic"]
    dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
    return {
        "namespace": metric["Namespace"],
        "name": metric["MetricName"],
        "dimensions": dimensions,
        "period": period,
        "stat": statistic,
    }


def dashboard(synth: Synth) -> dict[str, Any]:
    """The dashboard body as JSON, references to other resources replaced by their logical ids."""
    [board] = resources(synth, "AWS::CloudWatch::Dashboard").values()
    parts = board["Properties"]["DashboardBody"]["Fn::Join"][1]
    return json.loads("".join(p if isinstance(p, str) else "|".join(sorted(refs(p))) or "?" for p in parts))


def dashboard_metrics(synth: Synth) -> list[list[Any]]:
    """Every custom metric the dashboard plots: [namespace, name, dimension, value, ...]."""
    return [
        metric
        for widget in dashboard(synth)["widgets"]
        for metric in widget.get("properties", {}).get("metrics", [])
        if str(metric[0]).startswith("dcwatch/")
    ]


def emitted(capsys: pytest.CaptureFixture[str]) -> set[tuple[str, frozenset[tuple[str, str]]]]:
    """(metric, dimensions) of every EMF record the functions' metric helpers write, for the demo's sites
    seen from its vantage points."""
    at = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    for vantage in DEMO_VANTAGES:
        observability.record_probe_results(
            [
                probe_result(site, "vcenter", None, True, at).model_copy(update={"vantage": vantage})
                for site in ("dc-a", "dc-b")
            ],
            per_check=True,
        )
        observability.record_results_received(vantage, 1)
    observability.record_detection("dc-a", 1.0)
    observability.record_detection("dc-b", 1.0)
    found = set()
    for line in capsys.readouterr().out.splitlines():
        record = json.loads(line)
        definition = record["_aws"]["CloudWatchMetrics"][0]
        [names] = definition["Dimensions"]
        dimensions = frozenset((name, record[name]) for name in names)
        found |= {(m["Name"], dimensions) for m in definition["Metrics"]}
    return found


def test_the_watchdog_fires_when_no_probe_result_arrives_for_a_few_periods_from_any_vantage_point(
    demo: Synth, prod: Synth
):
    for synth, vantages, period in [
        (demo, DEMO_VANTAGES, 60),
        (prod, ["aws-public", "aws-vpc", "aws-eu-west-1"], 300),
    ]:
        found = alarms(synth)
        for vantage in vantages:
            alarm = found[f"no-probe-results-{vantage}"]
            assert metric_of(alarm) == {
                "namespace": f"dcwatch/{synth.config.name}",
                "name": "ProbeResultsReceived",
                "dimensions": {"service": "dcwatch", "vantage": vantage},
                "period": period,
                "stat": "Sum",
            }
            assert alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["Threshold"] == 1
            assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == constants.WATCHDOG_PERIODS
            assert alarm["TreatMissingData"] == "breaching", "silence is an outage of dcwatch, not good news"
        assert len([name for name in found if name.startswith("no-probe-results-")]) == len(vantages)


def test_the_watchdog_counts_what_the_evaluator_emits(demo: Synth, capsys: pytest.CaptureFixture[str]):
    watched = metric_of(alarms(demo)["no-probe-results-aws-public"])
    assert (watched["name"], frozenset(watched["dimensions"].items())) in emitted(capsys)


def test_probe_evaluator_and_workflow_failures_raise_alarms(demo: Synth):
    found = alarms(demo)
    probe, evaluate = demo.function_id("Probe"), demo.function_id("Evaluate")
    vpc_probe = demo.logical_id(demo.stack.probes["aws-vpc"])
    machine = demo.logical_id(demo.stack.state_machine)
    expected = {
        "probe-errors-aws-public": ("AWS/Lambda", "Errors", {"FunctionName": {"Ref": probe}}),
        "probe-errors-aws-vpc": ("AWS/Lambda", "Errors", {"FunctionName": {"Ref": vpc_probe}}),
        "evaluate-errors": ("AWS/Lambda", "Errors", {"FunctionName": {"Ref": evaluate}}),
        "failover-failed": ("AWS/States", "ExecutionsFailed", {"StateMachineArn": {"Ref": machine}}),
        "failover-timed-out": ("AWS/States", "ExecutionsTimedOut", {"StateMachineArn": {"Ref": machine}}),
        # A stopped or timed-out execution whose lock release, audit or alert failed.
        "execution-ended-errors": (
            "AWS/Lambda",
            "Errors",
            {"FunctionName": {"Ref": demo.function_id("ExecutionEnded")}},
        ),
    }
    for vantage in DEMO_VANTAGES:
        lost = metric_of(found[f"probe-results-lost-{vantage}"])
        assert (lost["name"], lost["dimensions"], lost["stat"]) == (
            "ProbeResultsLost",
            {"service": "dcwatch", "vantage": vantage},
            "Sum",
        ), "what the probe counts when the bus keeps refusing its results"
    for what, (namespace, name, dimensions) in expected.items():
        metric = metric_of(found[what])
        assert (metric["namespace"], metric["name"], metric["dimensions"], metric["stat"]) == (
            namespace,
            name,
            dimensions,
            "Sum",
        ), what
        assert found[what]["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and found[what]["Threshold"] == 1
        assert found[what]["TreatMissingData"] == "notBreaching"
    for step in ("Notify", "NotifyFailure"):
        failed = metric_of(found[f"notify-failed-{step}"])
        assert (failed["name"], failed["dimensions"], failed["stat"]) == (
            "NotifyFailed",
            {"service": "dcwatch", "step": step},
            "Sum",
        ), "what RecordAudit counts when a recovery's notification failed every retry"
    watchdog = {f"{what}-{vantage}" for what in ("no-probe-results", "probe-results-lost") for vantage in DEMO_VANTAGES}
    notify = {"notify-failed-Notify", "notify-failed-NotifyFailure"}
    assert set(found) == set(expected) | watchdog | notify | {"dead-letters-probe-rounds", "dead-letters-agent-reports"}


def test_a_probe_round_that_failed_every_attempt_raises_an_alarm_on_its_dead_letter_queue(demo: Synth):
    alarm = alarms(demo)["dead-letters-probe-rounds"]
    metric = metric_of(alarm)
    dead = {"Fn::GetAtt": [demo.logical_id(demo.stack.dead_letters["probe-rounds"]), "QueueName"]}
    assert (metric["namespace"], metric["name"], metric["dimensions"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": dead},
    )
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and alarm["Threshold"] == 1


def test_every_alarm_and_its_recovery_reach_the_alerts_topic_with_what_to_do(demo: Synth, prod: Synth):
    for synth in (demo, prod):
        topic = {"Ref": synth.logical_id(synth.stack.topic)}
        for what, alarm in alarms(synth).items():
            assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic], what
            assert len(alarm["AlarmDescription"]) > 80, f"{what}: say what broke and where to look"


def test_dashboard_shows_per_site_health_and_latency_from_every_vantage_point(prod: Synth):
    plotted = dashboard_metrics(prod)
    for site in ("dc-a", "dc-b"):
        for vantage in ("aws-public", "aws-vpc", "aws-eu-west-1"):
            for name in ("CheckSucceeded", "CheckLatency"):
                key = ["dcwatch/prod", name, "service", "dcwatch", "site", site, "vantage", vantage]
                [metric] = [m for m in plotted if m[:8] == key]
                options = metric[8] if len(metric) > 8 else {}
                # The probe in the second region writes its metrics there; the home dashboard reads them there.
                assert options.get("region") == ("eu-west-1" if vantage == "aws-eu-west-1" else None), key


def test_dashboard_shows_detection_time_and_failover_duration(demo: Synth):
    body = dashboard(demo)
    titles = [w["properties"].get("title", "") for w in body["widgets"]]
    assert any("Detection time" in t for t in titles) and any("Failover duration" in t for t in titles)
    plotted = [m[:6] for m in dashboard_metrics(demo)]
    for site in ("dc-a", "dc-b"):
        assert ["dcwatch/demo", "DetectionTime", "service", "dcwatch", "site", site] in plotted
    execution_time = [
        m
        for w in body["widgets"]
        for m in w["properties"].get("metrics", [])
        if m[:2] == ["AWS/States", "ExecutionTime"]
    ]
    assert execution_time, "failover duration is Step Functions' own ExecutionTime"


def test_every_custom_metric_on_the_dashboard_is_one_the_functions_emit(
    demo: Synth, capsys: pytest.CaptureFixture[str]
):
    produced = emitted(capsys)
    for metric in dashboard_metrics(demo):
        fields = [f for f in metric[2:] if isinstance(f, str)]
        dimensions = frozenset(zip(fields[0::2], fields[1::2], strict=True))
        assert (metric[1], dimensions) in produced, metric
