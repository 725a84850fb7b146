"""What operators see in CloudWatch: detection time, per-site and per-check probe metrics, the watchdog's count."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from dcwatch import observability
from dcwatch.detection.evaluator import evaluate
from dcwatch.detection.health import advance
from tests.helpers import demo_config, probe_result
from tests.unit.fakes import FakeLeases, FakeNotifier, FakePublisher, FakeStore, FakeWorkflows

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
CONFIG = demo_config()
ACTIVE_CHECKS = [("vcenter", None), ("shop-home", "shop"), ("radio-stream", "radio"), ("transit-portal", "transit")]


def emf_records(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]


def dimensions(record: dict) -> dict[str, str]:
    [names] = record["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    return {name: record[name] for name in names}


def test_a_failure_streak_remembers_when_it_began_and_a_success_forgets_it():
    state = None
    for second, ok in [(0, True), (10, False), (20, False), (30, False)]:
        state = advance(
            state, probe_result("dc-a", "web", "shop", ok, T0 + timedelta(seconds=second)), CONFIG.thresholds
        )
    assert state.status == "DOWN" and state.failing_since == T0 + timedelta(seconds=10)
    state = advance(state, probe_result("dc-a", "web", "shop", True, T0 + timedelta(seconds=40)), CONFIG.thresholds)
    assert state.failing_since is None


def test_detection_time_runs_from_the_moment_the_whole_site_was_seen_failing_to_the_decision():
    store, decided_at = FakeStore(), T0 + timedelta(minutes=60, seconds=25)

    def probe_round(at: datetime, failing: set[str]):
        """dc-a's critical checks (those in `failing` fail) and dc-b's vCenter, which passes."""
        outcomes = []
        for site, checks in (("dc-a", ACTIVE_CHECKS), ("dc-b", ACTIVE_CHECKS[:1])):
            for check, service in checks:
                for vantage in CONFIG.vantage_points:
                    ok = check not in failing or site == "dc-b"
                    result = probe_result(site, check, service, ok, at, vantage=vantage)
                    outcomes.append(
                        evaluate(
                            result,
                            CONFIG,
                            store,
                            FakePublisher(),
                            FakeWorkflows(),
                            FakeNotifier(),
                            FakeLeases(),
                            lambda: decided_at,
                        )
                    )
        return [o for o in outcomes if o.site_change]

    # Given the shop check failing since T0 while the rest of the site still served
    for second in (0, 10, 20):
        assert not probe_round(T0 + timedelta(seconds=second), {"shop-home"})
    # When, an hour later, every critical check fails three times
    changes = []
    for second in (0, 10, 20):
        changes += probe_round(T0 + timedelta(minutes=60, seconds=second), {c for c, _ in ACTIVE_CHECKS})

    # Then the site is DOWN, detected 25 s after the whole site was first seen failing, not an hour
    [down] = changes
    assert down.site_change.status == "DOWN"
    assert down.detection_s == pytest.approx(25.0)


def test_probe_metrics_are_per_site_and_vantage_and_per_check_when_asked(capsys):
    results = [
        probe_result("dc-a", "vcenter", None, True, T0),
        probe_result("dc-a", "shop-home", "shop", False, T0),
        probe_result("dc-b", "vcenter", None, True, T0),
    ]

    observability.record_probe_results(results, per_check=False)
    per_site = emf_records(capsys.readouterr().out)
    observability.record_probe_results(results, per_check=True)
    with_checks = emf_records(capsys.readouterr().out)

    assert [dimensions(r) for r in per_site] == [
        {"site": "dc-a", "vantage": "aws-public", "service": "dcwatch"},
        {"site": "dc-b", "vantage": "aws-public", "service": "dcwatch"},
    ]
    assert per_site[0]["CheckSucceeded"] == [1.0, 0.0] and per_site[0]["CheckLatency"] == [2.0, 2.0]
    assert [dimensions(r) for r in with_checks[2:]] == [
        {"site": "dc-a", "check": "vcenter", "service": "dcwatch"},
        {"site": "dc-a", "check": "shop-home", "service": "dcwatch"},
        {"site": "dc-b", "check": "vcenter", "service": "dcwatch"},
    ]


def test_the_watchdog_count_and_the_detection_time_carry_the_dimensions_the_alarms_use(capsys):
    observability.record_results_received("aws-vpc", 14)
    observability.record_detection("dc-a", 95.5)
    received, detection = emf_records(capsys.readouterr().out)
    assert dimensions(received) == {"service": "dcwatch", "vantage": "aws-vpc"}
    assert received["ProbeResultsReceived"] == [14.0]
    assert dimensions(detection) == {"service": "dcwatch", "site": "dc-a"}
    assert detection["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "DetectionTime", "Unit": "Seconds"}]


def test_tracing_is_off_outside_lambda_so_local_runs_need_no_xray_daemon():
    assert observability.tracer.disabled
