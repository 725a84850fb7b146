"""The scenario matrix end to end: every scenario file played against the local runtime, judged by its own file.

One run of the whole matrix feeds every test here: a few shards side by side, each one moto server and one
vcsim per site, reset between its scenarios.
"""

from __future__ import annotations

import re

import pytest

from dcwatch.config import load_config
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.local.matrix import load_matrix, table, write_report
from dcwatch.local.scenario import scenario_files
from tests.e2e.shards import play_matrix

pytestmark = pytest.mark.e2e

NAMES = [f.stem for f in scenario_files()]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory) -> dict[str, dict]:
    """The demo config on ports of its own, so a demo running elsewhere on this machine cannot collide; the
    scenarios in shards side by side (`tests.e2e.shards`), each shard a runtime of its own."""
    tmp = tmp_path_factory.mktemp("matrix")
    reports = play_matrix(load_matrix(), DEMO_CONFIG.read_text(), tmp)
    write_report(reports, tmp / "scenarios-report.json")  # measured against bound, for a reader after the run
    print("\n".join(table(reports)))
    return {r["verdict"]["scenario"]: r for r in reports}


def story(report: dict) -> str:
    """What to read when a scenario failed: its problems, then its timeline without the probe rounds."""
    lines = [
        f"{e['t']:7.2f} s  {e['kind']:<18} {str(e['text'])[:240]}"
        for e in report["events"]
        if e["kind"] != "probe_round"
    ]
    return "\n".join([*report["verdict"]["problems"], *lines])


def test_every_scenario_file_was_played(matrix):
    assert sorted(matrix) == sorted(NAMES)
    assert len(NAMES) >= 12


@pytest.mark.parametrize("name", NAMES)
def test_the_scenario_moves_production_exactly_as_its_file_expects(matrix, name):
    verdict = matrix[name]["verdict"]
    assert verdict["decision_passed"], story(matrix[name])
    assert verdict["false_failovers"] == 0 and verdict["missed_failovers"] == 0, story(matrix[name])


@pytest.mark.parametrize("name", NAMES)
def test_the_scenario_sends_exactly_the_alerts_its_file_expects(matrix, name):
    verdict = matrix[name]["verdict"]
    assert verdict["alerts_passed"], story(matrix[name])


def test_the_matrix_has_no_false_and_no_missed_failover(matrix):
    assert sum(r["verdict"]["false_failovers"] for r in matrix.values()) == 0
    assert sum(r["verdict"]["missed_failovers"] for r in matrix.values()) == 0


def test_the_hard_outage_is_detected_no_sooner_than_its_physical_floor_allows(matrix):
    report = matrix["hard-outage"]
    verdict, scenario = report["verdict"], report["scenario"]
    interval = scenario["probe_interval_s"]
    assert verdict["detection_floor_s"] == interval * scenario["failures_to_down"]
    # The fault may land just before a round: one interval less than the floor is the earliest possible.
    assert verdict["detection_floor_s"] - interval <= verdict["detection_s"]


def test_faults_reach_the_probers_as_network_behaviour_not_as_edited_results(matrix):
    rounds = [e["text"] for e in matrix["one-vantage-latency"]["events"] if e["kind"] == "probe_round"]
    after = rounds[-1]
    seen_failing_at_a = set(re.findall(r"dc-a/[\w-]+@([\w-]+)", after))
    assert seen_failing_at_a == {"aws-vpc"}, after  # the standby's services fail from everywhere: they are off
    assert "timeout" in after


def test_the_fence_step_meets_the_deployed_network_and_without_a_proof_a_human_is_asked(matrix):
    """Its services dead and the VPN to it cut, the active site is declared DOWN; the Fence step runs in the VPC,
    whose only path to the (running) active vCenter is that VPN, so it cannot reach it (VcenterUnreachable); the
    site's agent still renews its lease, so nothing proves the site cannot serve, and the approval gate asks a
    human. The active VMs stay on. Over a flat network the Fence step would have powered them off."""
    report = matrix["active-dies-vpn-cut"]
    summary, active = report["summary"], report["scenario"]["fault_site"]
    assert summary["active_site"] == active, "no promotion without a proof"
    assert any("VcenterUnreachable" in f for f in summary["fencing"]), summary["fencing"]
    assert any(f.startswith(f"cannot prove {active} is fenced") for f in summary["fencing"]), summary["fencing"]
    config = load_config(DEMO_CONFIG)
    every_vm = sorted(vm.name for _, at in config.services_at(active) for vm in at.vms)
    assert summary["vms_on_at_failed_site"] == every_vm, "read from the active vCenter directly: nothing powered off"


def test_a_site_cut_off_from_both_voters_fences_itself_before_the_standby_comes_up(matrix):
    report = matrix["partition-active-isolated"]
    summary = report["summary"]
    fenced = next(e for e in report["events"] if e["kind"] == "site_self_fenced")
    first_on = min(e["t"] for e in report["events"] if e["kind"] == "vm_powered_on")
    assert fenced["t"] < first_on, "the isolated site is down by its own hand before the standby powers on"
    assert summary["vms_on_at_failed_site"] == [] and list(summary["fence_proofs"].values()) == ["lease"]
    assert summary["both_serving_s"] == 0


def test_the_dead_sites_lease_costs_its_recovery_at_most_one_ttl_beyond_the_probes_detection(matrix):
    summary = matrix["partition-site-dies"]["summary"]
    ttl = summary["lease"]["lease_ttl_s"]
    assert summary["probe_detection_s"] is not None and summary["lease_cost_s"] is not None
    assert 0 <= summary["lease_cost_s"] <= ttl


def test_no_scenario_ever_has_both_sites_serving_customers(matrix):
    assert {name: r["summary"]["both_serving_s"] for name, r in matrix.items()} == dict.fromkeys(matrix, 0.0)


def test_a_cut_vpn_cuts_the_vpc_probe_too_and_leaves_the_public_path(matrix):
    rounds = [e["text"] for e in matrix["vpn-standby-down"]["events"] if e["kind"] == "probe_round"]
    cut = next(text for text in rounds if "dc-b/vcenter@aws-vpc" in text)
    assert "aws-vpc 7/14" in cut, cut  # the standby's 4 vCenter checks lost, its 3 services off as always
    assert "aws-public 3/6" in cut, "the internet path to the standby's services is untouched"
