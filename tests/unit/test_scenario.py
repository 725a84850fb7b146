"""Scenario files: every shipped file is valid, a bad file is refused naming file and path, verdicts add up."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from dcwatch.config import load_config
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.local.matrix import table
from dcwatch.local.runner import _observed
from dcwatch.local.scenario import (
    SCENARIOS_DIR,
    ScenarioError,
    Seen,
    alert_kind,
    check_against,
    judge,
    load_scenario,
    scenario_files,
)
from dcwatch.local.timeline import Timeline
from dcwatch.local.watcher import Observations

MATRIX = {
    "hard-outage",
    "flapping-check",
    "one-vantage-loss",
    "one-vantage-latency",
    "vantage-isolated",
    "vcenter-down",
    "service-down",
    "standby-down",
    "maintenance-window",
    "automation-off",
    "duplicate-reordered-events",
    "two-manual-triggers",
    "evaluator-crash",
    "public-vantage-cut",
    "vpn-standby-down",
    "active-dies-vpn-cut",
    "partition-site-dies",
    "partition-active-isolated",
    "partition-inter-site-cut",
    "partition-aws-gone",
    "partition-agent-dies",
    "partition-standby-dies",
    "partition-aws-cut-from-active",
    "partition-aws-paths-cut",
    "partition-vcenter-refuses-login",
    "drill-during-normal-operation",
}


def test_every_scenario_of_the_issue_has_a_valid_file_that_fits_the_demo_config():
    config = load_config(DEMO_CONFIG)
    specs = [load_scenario(f) for f in scenario_files()]
    assert {s.name for s in specs} == MATRIX
    for spec in specs:
        check_against(spec, config)
        assert spec.name == spec.source.rsplit("/", 1)[-1].removesuffix(".yaml")


def write(tmp_path, text: str):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def test_a_step_with_two_actions_is_refused_naming_the_file_and_the_step(tmp_path):
    path = write(
        tmp_path,
        "name: x\ndescription: d\nproves: p\nsteps:\n  - {at: 0, kill_site: active, isolate: aws-vpc}\n"
        "expect: {failover: false}\n",
    )
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert f"{path}: steps[0]: a step needs exactly one of" in str(err.value)


def test_unknown_fields_and_bad_values_are_named_by_path(tmp_path):
    path = write(
        tmp_path,
        "name: x\ndescription: d\nproves: p\nsteps:\n  - at: 0\n    network: {vantage: v, loss_pct: 120}\n"
        "expect: {failover: maybe, alerts: {PAGED: 1}}\n",
    )
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    text = str(err.value)
    assert "steps[0].network.loss_pct" in text
    assert "expect.failover" in text
    assert "expect.alerts.PAGED" in text


def test_sites_services_and_vantage_points_must_exist_in_the_config(tmp_path):
    path = write(
        tmp_path,
        "name: x\ndescription: d\nproves: p\nsteps:\n  - {at: 0, kill_site: dc-z}\n"
        "  - at: 1\n    stop_service: {site: active, service: mail}\n  - {at: 2, isolate: aws-moon}\n"
        "expect: {failover: false}\n",
    )
    with pytest.raises(ScenarioError) as err:
        check_against(load_scenario(path), load_config(DEMO_CONFIG))
    text = str(err.value)
    assert "steps[0].kill_site: unknown site 'dc-z'" in text
    assert "steps[1].stop_service.service: unknown service 'mail'" in text
    assert "steps[2].isolate: unknown vantage point 'aws-moon'" in text


@pytest.mark.parametrize(
    ("subject", "kind"),
    [
        ("[dcwatch] dc-a DOWN: 4 of 4 critical checks failing from 2 vantage points", "DOWN"),
        ("[dcwatch] vantage point aws-vpc ISOLATED", "ISOLATED"),
        ("[dcwatch] dc-a recovered after 3 min", "RECOVERED"),
        ("[dcwatch] DRY RUN dc-a -> dc-b: no action needed", "OTHER"),
        ("[dcwatch] DOWN dc-a (active): failover started", "DOWN"),
        ("[dcwatch] SERVICE DOWN shop at dc-a: no automatic action", "SERVICE"),
        ("[dcwatch] FAILOVER DONE dc-a -> dc-b: services run at dc-b", "FAILOVER"),
        ("[dcwatch] OK: REFUSED dc-a -> dc-b, another recovery holds the lock; no action needed", "REFUSED"),
        ("[dcwatch] VCENTER DOWN at dc-a (active): its services answer; no automatic action", "VCENTER"),
        ("[dcwatch] VCENTER RECOVERED at dc-a after 5 s", "VCENTER"),
        ("[dcwatch] SERVICE RECOVERED shop at dc-a after 9 s", "SERVICE"),
        ("[dcwatch] PARTITIONED dc-a: AWS cannot reach dc-a; its agent reports it alive and serving", "PARTITIONED"),
        ("[dcwatch] PARTITION OVER dc-a: AWS reaches dc-a again after 12 s", "PARTITION_OVER"),
        ("[dcwatch] AGENT SILENT dc-a: no report since 10:00:01", "AGENT_SILENT"),
        ("[dcwatch] AGENT BACK dc-a: its agent reports again after 20 s silent", "AGENT_BACK"),
        ("[dcwatch] APPROVAL NEEDED: failover dc-a -> dc-b, not proven fenced", "APPROVAL"),
        ("[dcwatch] OK: DRILL PASSED dc-a -> dc-b, standby proven in 14.2 s", "DRILL"),
        ("[dcwatch] ACTION NEEDED: DRILL FAILED at CheckGroup, production untouched, drill cleaned up", "DRILL"),
    ],
)
def test_an_alert_is_known_by_the_first_word_of_its_subject_that_names_a_kind(subject, kind):
    assert alert_kind(subject) == kind


def spec_expecting(tmp_path, failover: bool):
    return load_scenario(
        write(
            tmp_path,
            f"name: x\ndescription: d\nproves: p\nsteps:\n  - {{at: 0, kill_site: active}}\n"
            f"expect: {{failover: {str(failover).lower()}, down: [active], alerts: {{FAILOVER: 1}}}}\n",
        )
    )


def test_two_workflows_that_switch_dns_are_one_false_failover(tmp_path):
    config = load_config(DEMO_CONFIG)
    seen = Seen(down=["dc-a"], alerts={"FAILOVER": 2}, failovers=2, active_site="dc-b", detection_s=3.1, errors=[])
    verdict = judge(spec_expecting(tmp_path, True), config, seen)
    assert (verdict.false_failovers, verdict.missed_failovers, verdict.passed) == (1, 0, False)
    assert verdict.got.startswith("2 failovers")


def test_an_outage_without_a_failover_is_a_missed_failover(tmp_path):
    config = load_config(DEMO_CONFIG)
    seen = Seen(down=["dc-a"], alerts={}, failovers=0, active_site="dc-a", detection_s=3.1, errors=[])
    verdict = judge(spec_expecting(tmp_path, True), config, seen)
    assert (verdict.false_failovers, verdict.missed_failovers, verdict.decision_passed) == (0, 1, False)
    assert verdict.detection_floor_s == config.probe.interval_s * config.thresholds.failures_to_down


def test_the_expected_outcome_passes(tmp_path):
    config = load_config(DEMO_CONFIG)
    seen = Seen(down=["dc-a"], alerts={"FAILOVER": 1}, failovers=1, active_site="dc-b", detection_s=3.1, errors=[])
    verdict = judge(spec_expecting(tmp_path, True), config, seen)
    assert verdict.passed and verdict.problems == ()


def test_the_matrix_table_prints_the_physical_floor_next_to_each_detection_time(tmp_path):
    config = load_config(DEMO_CONFIG)
    outage = Seen(down=["dc-a"], alerts={"DOWN": 1}, failovers=1, active_site="dc-b", detection_s=4.3, errors=[])
    calm = Seen(down=[], alerts={}, failovers=0, active_site="dc-a", detection_s=None, errors=[])
    hard = load_scenario(SCENARIOS_DIR / "hard-outage.yaml")
    quiet = load_scenario(SCENARIOS_DIR / "service-down.yaml")
    reports = [
        {"scenario": {"name": spec.name}, "verdict": judge(spec, config, seen).row()}
        for spec, seen in ((hard, outage), (quiet, calm))
    ]
    header, _, hard_row, quiet_row = table(reports)
    floor = config.probe.interval_s * config.thresholds.failures_to_down
    assert header.split(" | ")[3].strip() == "detection"
    assert hard_row.split(" | ")[3].strip() == f"4.30 s (floor {floor:g} s)"
    assert quiet_row.split(" | ")[3].strip() == "-", "no outage, no detection time"


def test_every_scenario_that_declares_a_down_bounds_its_detection_close_to_the_floor():
    config = load_config(DEMO_CONFIG)
    interval = config.probe.interval_s
    floor = interval * config.thresholds.failures_to_down
    lag_s = 4  # the most the local evaluator's lag measured on a loaded 2-core machine (docs/scenarios.md)
    # An agent that dies with its site (or is cut off with it) leaves a last report that says serving: the
    # evaluator holds to it until its lease runs out, lease_ttl_s after the renewal, rounded up to the second.
    lease_s = config.fencing.lease_ttl_s + 1 if config.fencing else 0
    for spec in (load_scenario(f) for f in scenario_files()):
        if spec.expect.down:
            assert spec.expect.detected_within_s is not None, f"{spec.name}: a DOWN without a detection bound"
            # So may one whose vCenter restarts refusing logins while its services die: until its agent, its
            # checks slowed by that vCenter, reports again.
            silenced = any(
                s.kill_site == "active"
                or (s.partition and "aws" in s.partition.between)
                or s.vcenter_refuses_login == "active"
                for s in spec.steps
            )
            bound = max(floor, lease_s if silenced else 0) + 2 * interval + lag_s
            # Redelivered events (a crash's retries, a bus delivering twice) add evaluator work, nothing else.
            extra = any(s.bus or s.evaluator_crash for s in spec.steps)
            assert spec.expect.detected_within_s <= (2 * bound if extra else bound), spec.name


def test_detection_is_timed_from_the_first_fault_not_from_the_steps_that_set_the_stage():
    spec = load_scenario(SCENARIOS_DIR / "automation-off.yaml")
    assert [(s.action, s.is_fault) for s in spec.steps] == [("automation", False), ("kill_site", True)]
    crash = load_scenario(SCENARIOS_DIR / "evaluator-crash.yaml")
    assert [s.is_fault for s in crash.steps] == [False, True]


def test_an_alert_count_that_depends_on_timing_may_be_bounded_from_above(tmp_path):
    config = load_config(DEMO_CONFIG)
    spec = load_scenario(
        write(
            tmp_path,
            "name: x\ndescription: d\nproves: p\nsteps:\n  - {at: 0, kill_site: active}\n"
            "expect: {failover: false, alerts: {FLAPPING: 1}, alerts_at_most: {SERVICE: 3}}\n",
        )
    )
    calm = dict(down=[], failovers=0, active_site="dc-a", detection_s=None, errors=[])
    assert judge(spec, config, Seen(alerts={"FLAPPING": 1, "SERVICE": 2}, **calm)).passed
    noisy = judge(spec, config, Seen(alerts={"FLAPPING": 1, "SERVICE": 4}, **calm))
    assert not noisy.alerts_passed and noisy.problems == ("SERVICE alerts: 4, expected at most 3",)
    assert "SERVICE=<=3" in noisy.expected and "SERVICE=4" in noisy.got


DRILL_STEP = "steps:\n  - at: 0\n    manual_drill: {reason: quarterly}\n"


def test_a_drill_is_a_step_of_its_own_that_moves_nothing_and_its_expectations_parse(tmp_path):
    spec = load_scenario(
        write(
            tmp_path,
            f"name: x\ndescription: d\nproves: p\n{DRILL_STEP}"
            "expect: {failover: false, alerts: {DRILL: 1}, standby_dark: true, drill: passed}\n",
        )
    )
    check_against(spec, load_config(DEMO_CONFIG))
    (step,) = spec.steps
    assert step.action == "manual_drill" and not step.is_fault, "a drill breaks nothing: no fault to time from"
    assert step.manual_drill is not None
    assert (step.manual_drill.from_site, step.manual_drill.to, step.manual_drill.reason) == (
        "active",
        "standby",
        "quarterly",
    )
    assert (spec.expect.standby_dark, spec.expect.drill, spec.expect.alerts) == (True, "passed", {"DRILL": 1})


def refusal(tmp_path, steps: str, expect: str) -> str:
    """Why loading a file with these steps and this expect is refused."""
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, f"name: x\ndescription: d\nproves: p\nsteps:\n{steps}expect: {expect}\n"))
    return str(err.value)


def test_a_bad_drill_step_or_expectation_is_refused_naming_the_field(tmp_path):
    text = refusal(
        tmp_path, "  - at: 0\n    manual_drill: {count: 2}\n", "{failover: false, drill: maybe, standby_dark: perhaps}"
    )
    assert "steps[0].manual_drill.count: Extra inputs are not permitted" in text
    assert "expect.drill: Input should be 'passed' or 'failed'" in text
    assert "expect.standby_dark" in text


def test_a_drill_outcome_is_expected_only_of_a_scenario_that_starts_a_drill(tmp_path):
    text = refusal(tmp_path, "  - {at: 0, kill_site: active}\n", "{failover: false, drill: passed}")
    assert "expect.drill judges the drills the steps start, and no step is a manual_drill" in text


def test_a_drill_step_needs_sites_that_exist_and_a_config_with_a_drill(tmp_path):
    spec = load_scenario(
        write(
            tmp_path,
            "name: x\ndescription: d\nproves: p\nsteps:\n  - at: 0\n    manual_drill: {from: dc-z}\n"
            "expect: {failover: false}\n",
        )
    )
    demo = load_config(DEMO_CONFIG)
    with pytest.raises(ScenarioError) as err:
        check_against(spec, demo.model_copy(update={"drill": None}))
    text = str(err.value)
    assert "steps[0].manual_drill.from: unknown site 'dc-z'" in text
    assert "steps[0].manual_drill: this config has no `drill` section: nothing to drill" in text


def drill_spec(tmp_path):
    return load_scenario(
        write(
            tmp_path,
            f"name: x\ndescription: d\nproves: p\n{DRILL_STEP}"
            "expect: {failover: false, down: [], alerts: {DRILL: 1}, standby_dark: true, drill: passed}\n",
        )
    )


CALM = dict(down=[], alerts={"DRILL": 1}, failovers=0, active_site="dc-a", detection_s=None, errors=[])


def test_a_drill_that_passed_with_the_standby_dark_passes(tmp_path):
    verdict = judge(
        drill_spec(tmp_path), load_config(DEMO_CONFIG), Seen(**CALM, drills={"manual-drill-dc-a-1": "passed"})
    )
    assert verdict.passed and verdict.problems == () and verdict.standby_answered_s == 0


def test_the_standby_production_endpoints_answering_during_a_drill_fails_it(tmp_path):
    seen = Seen(**CALM, drills={"manual-drill-dc-a-1": "passed"}, standby_answered_s=3.4)
    verdict = judge(drill_spec(tmp_path), load_config(DEMO_CONFIG), seen)
    assert not verdict.decision_passed
    assert verdict.problems == ("the standby's production endpoints answered customers for 3.4 s",)
    assert verdict.row()["standby_answered_s"] == 3.4


def test_a_drill_that_failed_or_never_ran_fails_a_scenario_expecting_it_to_pass(tmp_path):
    spec, config = drill_spec(tmp_path), load_config(DEMO_CONFIG)
    failed = "failed: execution FAILED, failed, cleanup not done"
    verdict = judge(spec, config, Seen(**CALM, drills={"manual-drill-dc-a-1": failed}))
    assert verdict.problems == (f"drill manual-drill-dc-a-1: {failed}, expected passed",)
    assert judge(spec, config, Seen(**CALM)).problems == ("no drill ran, expected one that passed",)


def test_a_drill_that_switched_its_drill_records_is_no_failover():
    """Counting: a failover is an execution that switched DNS; a drill's SwitchDns moves only its drill records."""
    timeline = Timeline(lambda line: None)
    for execution in ("manual-drill-dc-a-1", "manual-dc-a-1"):
        timeline.add("workflow_step", "SwitchDns done", step="SwitchDns", execution=execution)
    watcher = SimpleNamespace(fault_at=0.0)
    seen = _observed(timeline, Observations(), watcher, "dc-b", [], ["manual-drill-dc-a-1"])  # type: ignore[arg-type]
    assert seen.failovers == 1


def test_a_down_or_workflow_before_the_first_step_fails_the_scenario_as_left_over_from_before_the_reset(tmp_path):
    """A failover the scenario did not cause must not pass as the one it expects (the previous scenario's outage
    reaching across the reset once did exactly that, and only the alert count caught it)."""
    timeline = Timeline(lambda line: None)
    timeline.add("site_down", "dc-a (active) DOWN: failover", t=1.0, site="dc-a")
    timeline.add("workflow_step", "ValidateRequest done", t=1.5, step="ValidateRequest", execution="dc-a-down-1")
    timeline.add("workflow_step", "SwitchDns done", t=6.0, step="SwitchDns", execution="dc-a-down-1")
    seen = _observed(timeline, Observations(), SimpleNamespace(fault_at=6.5), "dc-b", [], [], 5.5)  # type: ignore[arg-type]
    assert seen.before_start == ["DOWN dc-a at -4.50 s", "workflow dc-a-down-1 at -4.00 s"]

    verdict = judge(spec_expecting(tmp_path, True), load_config(DEMO_CONFIG), seen)
    assert not verdict.decision_passed
    assert verdict.problems[0] == (
        "before the first step, with nothing injected yet: DOWN dc-a at -4.50 s; workflow dc-a-down-1 at -4.00 s"
    )


def test_what_happens_after_the_first_step_is_the_scenarios_own():
    timeline = Timeline(lambda line: None)
    timeline.add("site_down", "dc-a (active) DOWN: failover", t=9.0, site="dc-a")
    timeline.add("workflow_step", "SwitchDns done", t=12.0, step="SwitchDns", execution="dc-a-down-1")
    seen = _observed(timeline, Observations(), SimpleNamespace(fault_at=5.5), "dc-b", [], [], 5.5)  # type: ignore[arg-type]
    assert (seen.before_start, seen.failovers, seen.detection_s) == ([], 1, 3.5)
