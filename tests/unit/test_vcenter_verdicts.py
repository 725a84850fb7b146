"""The vCenter check: which parts a site's config plans, and the verdict on each from one snapshot."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
import yaml

from dcwatch.config import Config, Thresholds, VcenterProbe, parse_config
from dcwatch.detection.checks import vcenter_checks
from dcwatch.detection.decision import Gates, failover_decision, site_verdict
from dcwatch.detection.vcenter import (
    DatastoreState,
    HostState,
    TriggeredAlarm,
    VcenterSnapshot,
    VmState,
    judge_alarms,
    judge_datastores,
    judge_hosts,
    judge_part,
    judge_vms,
)
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.local.schedule import failing_by_reason
from dcwatch.model import AutomationSwitch, CheckState

GiB = 1024**3
PROBE = VcenterProbe(critical_vms=["shop-web-1", "shop-db-1"], expected_maintenance=["esx-3"])
HEALTHY = VcenterSnapshot(
    about="VMware vCenter Server 8.0",
    hosts=(HostState("esx-1", "connected", False), HostState("esx-2", "connected", False)),
    vms=(VmState("shop-web-1", "poweredOn", "green"), VmState("shop-db-1", "poweredOn", "green")),
    datastores=(DatastoreState("ds1", True, 100 * GiB, 40 * GiB),),
)


def config_with_probe(**probe: object) -> Config:
    doc = copy.deepcopy(yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8")))
    doc["sites"][0]["vcenter"]["probe"] = probe
    return parse_config(doc, "demo.yaml")


def test_a_healthy_site_passes_every_part():
    for part in ("login", "hosts", "vms", "datastores", "alarms"):
        assert judge_part(part, PROBE, HEALTHY).ok, part


def test_a_disconnected_host_and_one_in_unexpected_maintenance_are_both_named():
    hosts = (
        HostState("esx-1", "disconnected", False),
        HostState("esx-2", "connected", True),
        HostState("esx-4", "notResponding", False),
    )
    outcome = judge_hosts(PROBE, hosts)
    assert not outcome.ok and not outcome.warning
    assert outcome.reason == "host esx-1 disconnected; host esx-2 in maintenance; host esx-4 notResponding"


def test_a_host_in_expected_maintenance_passes():
    assert judge_hosts(PROBE, (HostState("esx-1", "connected", False), HostState("esx-3", "connected", True))).ok


def test_a_vcenter_without_hosts_proves_nothing_and_fails():
    assert judge_hosts(PROBE, ()).reason == "no hosts in the inventory"


def test_a_critical_vm_must_run_with_a_green_tools_heartbeat():
    probe = VcenterProbe(critical_vms=["web", "db", "cache", "ghost"])
    vms = (
        VmState("web", "poweredOff", "gray"),
        VmState("db", "poweredOn", "gray"),
        VmState("cache", "poweredOn", "red"),
    )
    outcome = judge_vms(probe, vms)
    assert (
        outcome.reason
        == "vm web poweredOff; vm db tools heartbeat gray; vm cache tools heartbeat red; vm ghost not found"
    )


def test_one_running_copy_of_a_vm_name_that_repeats_in_other_folders_is_enough():
    probe = VcenterProbe(critical_vms=["web"])
    assert judge_vms(probe, (VmState("web", "poweredOff", "gray"), VmState("web", "poweredOn", "green"))).ok


def test_a_datastore_below_the_free_space_threshold_fails_with_its_share():
    outcome = judge_datastores(PROBE, (DatastoreState("ds1", True, 200 * GiB, 15 * GiB),))
    assert outcome.reason == "datastore ds1 7.5 % free < 10 %"


def test_an_inaccessible_datastore_fails_whatever_its_free_space():
    outcome = judge_datastores(PROBE, (DatastoreState("ds2", False, 0, 0), DatastoreState("ds1", True, 10, 9)))
    assert outcome.reason == "datastore ds2 inaccessible"


def test_a_threshold_of_zero_checks_only_that_datastores_are_accessible():
    assert judge_datastores(VcenterProbe(datastore_min_free_pct=0), (DatastoreState("ds1", True, 10, 0),)).ok


def test_triggered_alarms_are_a_warning_red_first_never_a_critical_failure():
    alarms = (
        TriggeredAlarm("Datastore usage on disk", "ds1", "yellow"),
        TriggeredAlarm("Host connection failure", "esx-2", "red"),
    )
    outcome = judge_alarms(alarms)
    assert (outcome.ok, outcome.warning) == (False, True)
    assert (
        outcome.reason == "alarm 'Host connection failure' red on esx-2; alarm 'Datastore usage on disk' yellow on ds1"
    )


def test_no_triggered_alarm_passes():
    assert judge_alarms(()).ok


def test_a_long_list_of_problems_stays_a_short_reason_that_says_how_many_more():
    hosts = tuple(HostState(f"esx-{i:02}.dc-a.hosting.example", "disconnected", False) for i in range(20))
    reason = judge_hosts(PROBE, hosts).reason
    assert len(reason) <= 200
    assert reason.startswith("host esx-00.dc-a.hosting.example disconnected; ")
    shown = reason.count("disconnected")
    assert reason.endswith(f" (+{20 - shown} more)")


def test_an_unknown_part_is_a_programming_error_not_a_pass():
    with pytest.raises(ValueError, match="unknown vCenter check part 'power'"):
        judge_part("power", PROBE, HEALTHY)


def test_the_default_config_plans_login_hosts_datastores_and_alarms_with_alarms_only_warning():
    planned = vcenter_checks(config_with_probe(), "dc-a")
    assert [(c.name, c.part, c.critical) for c in planned] == [
        ("vcenter", "login", True),
        ("vcenter-hosts", "hosts", True),
        ("vcenter-datastores", "datastores", True),
        ("vcenter-alarms", "alarms", False),
    ]
    assert {c.kind for c in planned} == {"vcenter"} and {c.service for c in planned} == {None}


def test_critical_vms_add_the_vms_part_and_switched_off_parts_are_not_planned():
    planned = vcenter_checks(config_with_probe(critical_vms=["dc-a-dns"], hosts=False, alarms=False), "dc-a")
    assert [c.part for c in planned] == ["login", "vms", "datastores"]
    assert [c.part for c in vcenter_checks(config_with_probe(critical_vms=["dc-a-dns"]), "dc-b")] == [
        "login",
        "hosts",
        "datastores",
        "alarms",
    ], "critical_vms belong to the site that lists them"


TWO = ["aws-public", "aws-vpc"]
DEAD_A = [CheckState("dc-a", "vcenter", None, True, "DOWN", vantage=v) for v in TWO]


def standby(**statuses: tuple[str, int]) -> list[CheckState]:
    """The standby's vCenter parts, seen alike from both vantage points."""
    return [
        CheckState("dc-b", name, None, True, status, failures=f, vantage=v)  # type: ignore[arg-type]
        for v in TWO
        for name, (status, f) in statuses.items()
    ]


def decide(standby_checks: list[CheckState]):
    down = site_verdict("dc-a", "active", DEAD_A, TWO, Thresholds())
    verdict = site_verdict("dc-b", "standby", standby_checks, TWO, Thresholds())
    gates = Gates(AutomationSwitch(), datetime(2026, 11, 25, tzinfo=UTC), 3600)
    return failover_decision(down, verdict, standby_checks, gates)


def test_a_standby_whose_login_fails_is_not_proven_even_if_another_infrastructure_check_passes():
    decision = decide(standby(vcenter=("UP", 1), mirror=("UP", 0)))
    assert not decision.start and "vcenter@aws-public failing (1 in a row)" in decision.reason


def test_a_standby_with_a_passing_login_is_proven_while_a_host_part_fails():
    decision = decide(standby(vcenter=("UP", 0), **{"vcenter-hosts": ("DOWN", 4)}))
    assert decision.start and "vcenter@aws-public, vcenter@aws-vpc passing" in decision.reason
    assert "also failing there: vcenter-hosts@aws-public DOWN" in decision.reason


def test_a_standby_without_a_vcenter_login_result_is_not_proven():
    decision = decide(standby(mirror=("UP", 0)))
    assert not decision.start and "no passing `vcenter` yet" in decision.reason


def test_the_standby_is_down_only_when_every_critical_vcenter_part_is_down():
    parts = {"vcenter": ("DOWN", 3), "vcenter-hosts": ("DOWN", 3), "vcenter-datastores": ("UP", 0)}
    assert site_verdict("dc-b", "standby", standby(**parts), TWO, Thresholds()).status == "UP"
    parts["vcenter-datastores"] = ("DOWN", 3)
    assert site_verdict("dc-b", "standby", standby(**parts), TWO, Thresholds()).status == "DOWN"


def test_the_demo_timeline_names_a_shared_reason_once_for_all_the_checks_that_failed_with_it():
    failed = ["dc-a/vcenter: unreachable", "dc-a/vcenter-hosts: unreachable", "dc-a/shop-home: status 503"]
    assert failing_by_reason(failed) == "dc-a/vcenter, dc-a/vcenter-hosts: unreachable; dc-a/shop-home: status 503"
