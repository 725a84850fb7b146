"""Drills on clones: what a drill works on, what it never touches, and how it always cleans up (domain logic over
in-memory fakes; `tests/integration/test_recovery_modes.py` runs it against vcsim and moto)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from dcwatch.config import ConfigError, parse_config
from dcwatch.errors import DrillCleanupIncomplete, DrillCloneFailed, DrillCloneTimeout
from dcwatch.events import ProbeResult
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.recovery import messages, steps
from dcwatch.recovery.plan import build_plan, describe_plan
from tests.unit.fakes import Clock, FakeDrillLab, FakeHooks, FakeLeases, FakeNotifier, FakeStore, ZoneDns

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
STANDBY_VMS = ["shop-db-b", "shop-web-b1", "shop-web-b2", "transit-db-b", "transit-app-b", "radio-stream-b"]
DRILLED = ["shop-db-b", "transit-db-b", "shop-web-b1", "shop-web-b2", "transit-app-b"]
DRILL = {"mode": "drill", "from": "dc-a", "to": "dc-b", "reason": "quarterly drill"}
SNAPSHOT = {"name": "present-snapshot", "url": "http://127.0.0.1:1/snap", "modes": ["drill"]}
UNSNAPSHOT = {"name": "remove-snapshot", "url": "http://127.0.0.1:1/unsnap", "modes": ["drill"]}


def config_with(**changes):
    doc = yaml.safe_load(DEMO_CONFIG.read_text())
    for key, value in changes.items():
        doc[key] = value
    return parse_config(doc)


def demo_with_hooks():
    """The demo with a snapshot hook, and at the standby a production hook (the load balancer) on group 2 and a
    drill hook (warm the drill caches) on group 1."""
    doc = yaml.safe_load(DEMO_CONFIG.read_text())
    doc["drill"] |= {"snapshot_hook": SNAPSHOT, "snapshot_cleanup_hook": UNSNAPSHOT}
    doc["sites"][1]["groups"] = [
        {"group": 1, "post_power_on": [{"name": "warm-caches", "url": "http://127.0.0.1:1/w", "modes": ["drill"]}]},
        {"group": 2, "pre_power_on": [{"name": "open-lb", "url": "http://127.0.0.1:1/lb"}]},
    ]
    return parse_config(doc)


@pytest.fixture
def clock():
    return Clock(T0)


def passing_probe(checks, round_id):
    return [ProbeResult.model_validate(_result(c)) for c in checks]


def _result(check):
    return {
        "site": check.site,
        "check": check.name,
        "service": check.service,
        "vantage": "aws-vpc",
        "ok": True,
        "critical": True,
        "observedAt": T0.isoformat(),
        "kind": check.kind,
        "latencyMs": 3,
        "roundId": "verify",
    }


def run_drill(clock, lab, dns, config=None, hooks=None, probed=None):
    """A drill up to its DNS switch, as the state machine runs it (every step passing)."""
    config = config or config_with()
    state = steps.validate_request(DRILL, config, clock, active_site="dc-a")
    state = steps.check_standby(state, lab, clock)
    state = steps.prepare_drill(state, lab, dns, clock, hooks=hooks)
    state = steps.check_clones(state, lab, clock)
    while not state.progress.all_groups_up:
        state = steps.start_group(state, lab, 60, clock, hooks=hooks)
        state = steps.check_group(state, lab, clock, hooks=hooks)
        clock.now += timedelta(seconds=5)

    def probe(checks, round_id):
        (probed if probed is not None else []).extend(checks)
        return passing_probe(checks, round_id)

    state = steps.verify_services(state, config, probe, clock)
    state = steps.switch_dns(state, dns, 60, clock)
    return steps.check_dns(state, dns, clock)


def test_a_drill_plan_powers_on_clones_of_the_drill_services_and_switches_only_their_drill_records():
    plan = build_plan(config_with(), "dc-a", "dc-b", "drill", run="0a1b2c3d")
    assert plan.groups == [
        ["shop-db-b-drill-0a1b2c3d", "transit-db-b-drill-0a1b2c3d"],
        ["shop-web-b1-drill-0a1b2c3d", "shop-web-b2-drill-0a1b2c3d"],
        ["transit-app-b-drill-0a1b2c3d"],
    ], "clones only: radio has no drill, and no standby VM itself is powered on"
    assert plan.drill is not None and sorted(plan.drill.clones.values()) == sorted(DRILLED)
    assert {r.name: r.values for r in plan.records} == {
        "drill-shop.hosting.example.": ["127.0.30.1"],
        "drill-transit.hosting.example.": ["127.0.30.1"],
    }, "the clones' drill addresses, never the standby's production ones"
    assert plan.fence == [] and plan.shutdown == [] and plan.storage is None
    described = "\n".join(describe_plan(plan))
    assert "the standby VMs and production DNS untouched" in described
    assert "NICs moved to the isolated network dcwatch-drill before power-on" in described


def test_a_drill_runs_on_clones_on_the_drill_network_and_never_touches_the_standby_vms(clock):
    lab, dns, probed = FakeDrillLab({vm: "poweredOff" for vm in STANDBY_VMS}, clock), ZoneDns(), []
    before = dict(lab.vms), dict(lab.networks)

    state = run_drill(clock, lab, dns, probed=probed)

    run = state.plan.drill.run
    on = {vm for vm, power in lab.vms.items() if power == "poweredOn"}
    assert on == {f"{vm}-drill-{run}" for vm in DRILLED}, "the clones, and only they, came up"
    assert all(lab.networks[clone] == "dcwatch-drill" for clone in on), "on the isolated network"
    assert {c.name for c in probed} == {"shop-home", "transit-portal"}
    assert {c.spec.url for c in probed} == {"http://127.0.30.1:18080/health", "http://127.0.30.1:18082/"}
    assert dns.records == {
        "drill-shop.hosting.example.": ("127.0.30.1",),
        "drill-transit.hosting.example.": ("127.0.30.1",),
    }

    state = steps.clean_up_drill(state, lab, dns, clock)

    assert lab.vms == before[0] and lab.clones() == [], "the clones are gone, the standby VMs as they were (off)"
    assert {vm: lab.networks[vm] for vm in STANDBY_VMS} == before[1], "the standby VMs' networks as they were"
    assert lab.power_on_calls and all(vm not in STANDBY_VMS for call in lab.power_on_calls for vm in call)
    assert dns.records == {}, "the drill records did not exist before: removed"
    assert state.drill.cleanup.startswith(f"destroyed 5 clones (shop-db-b-drill-{run}")


def test_the_drill_timeline_is_measured_from_the_snapshot_to_the_cleanup(clock):
    lab, dns, hooks = FakeDrillLab({vm: "poweredOff" for vm in STANDBY_VMS}, clock), ZoneDns(), FakeHooks()
    state = run_drill(clock, lab, dns, config=demo_with_hooks(), hooks=hooks)
    clock.now += timedelta(seconds=3)
    state = steps.clean_up_drill(state, lab, dns, clock, hooks=hooks)
    assert list(state.drill.measured) == [
        "snapshot presented",
        "clones ready",
        "powered on",
        "verified",
        "drill records in sync",
        "cleaned up",
    ]
    assert state.drill.measured["cleaned up"] == 18.0, "three groups 5 s apart, then 3 s to the cleanup"
    notifier = FakeNotifier()
    steps.notify(state, notifier, clock)
    ((subject, body),) = notifier.sent
    assert subject.startswith("[dcwatch] OK: DRILL PASSED dc-a -> dc-b, clones proven in")
    assert "Drill timeline (seconds from the start):\n  snapshot presented: 0.0 s\n  clones ready: 0.0 s" in body
    assert "came up on the isolated network dcwatch-drill" in body and "were not touched" in body


def test_the_snapshot_hook_says_where_the_clones_are_made_and_its_cleanup_runs_once_they_are_gone(clock):
    lab, dns, hooks = FakeDrillLab({vm: "poweredOff" for vm in STANDBY_VMS}, clock), ZoneDns(), FakeHooks()
    hooks.answers = {"present-snapshot": {"datastore": "snap-of-replica-7"}}
    state = run_drill(clock, lab, dns, config=demo_with_hooks(), hooks=hooks)
    state = steps.clean_up_drill(state, lab, dns, clock, hooks=hooks)

    (call,) = lab.clone_calls
    assert call["datastore"] == "snap-of-replica-7" and call["run"] == state.plan.drill.run
    names = [name for name, _ in hooks.calls]
    assert names[0] == "present-snapshot" and names[-1] == "remove-snapshot"
    snapshot, removal = hooks.calls[0][1], hooks.calls[-1][1]
    assert snapshot["mode"] == "drill" and sorted(snapshot["vms"]) == sorted(DRILLED)
    assert removal["datastore"] == "snap-of-replica-7" and removal["run"] == state.plan.drill.run


def test_a_production_hook_never_runs_in_a_drill_and_a_drill_hook_is_told_the_mode(clock):
    lab, dns, hooks = FakeDrillLab({vm: "poweredOff" for vm in STANDBY_VMS}, clock), ZoneDns(), FakeHooks()
    run_drill(clock, lab, dns, config=demo_with_hooks(), hooks=hooks)
    called = {name: payload for name, payload in hooks.calls}
    assert "open-lb" not in called, "the production load balancer's hook is not a drill's"
    assert called["warm-caches"]["mode"] == "drill" and called["warm-caches"]["when"] == "post-power-on"

    failover = build_plan(demo_with_hooks(), "dc-a", "dc-b", "disaster")
    assert [h.name for h in failover.group(1).pre_hooks] == ["open-lb"], "a failover runs it"
    assert failover.group(0).post_hooks == [], "and not the drill's"


def test_a_drill_first_removes_the_clones_an_earlier_drill_left_and_says_so(clock):
    lab, dns = FakeDrillLab({vm: "poweredOff" for vm in STANDBY_VMS}, clock), ZoneDns()
    killed = steps.validate_request(DRILL, config_with(), clock, active_site="dc-a")
    killed = steps.prepare_drill(killed, lab, dns, clock)
    killed = steps.check_clones(killed, lab, clock)
    steps.start_group(killed, lab, 60, clock)  # ... and the drill was killed here: two clones on
    left = {c.name for c in lab.clones()}

    state = run_drill(clock, lab, dns)

    assert sorted(state.drill.leftovers) == sorted(left) and not left & set(lab.vms)
    assert f"removed clones an earlier drill left: {', '.join(sorted(left))}" in [e.detail for e in state.timeline]
    assert {c.run for c in lab.clones()} == {state.plan.drill.run}


def test_a_clone_that_cannot_be_made_stops_the_drill_before_anything_powers_on(clock):
    lab, dns = FakeDrillLab({vm: "poweredOff" for vm in STANDBY_VMS}, clock), ZoneDns()
    lab.clone_fail = {"transit-db-b": "insufficient disk space on snap-datastore"}
    state = steps.prepare_drill(steps.validate_request(DRILL, config_with(), clock), lab, dns, clock)
    with pytest.raises(DrillCloneFailed, match="transit-db-b-drill-.*: insufficient disk space on snap-datastore"):
        steps.check_clones(state, lab, clock)
    assert lab.power_on_calls == []


def test_clones_slower_than_the_step_are_waited_for_by_the_state_machine_until_their_deadline(clock):
    lab, dns = FakeDrillLab({vm: "poweredOff" for vm in STANDBY_VMS}, clock), ZoneDns()
    lab.slow_clones = 100
    state = steps.prepare_drill(steps.validate_request(DRILL, config_with(), clock), lab, dns, clock)
    state = steps.check_clones(state, lab, clock)
    assert state.drill.clones_ready is False and state.drill.isolated == [], "nothing isolated before it exists"
    clock.now += timedelta(seconds=601)
    with pytest.raises(DrillCloneTimeout, match=r"drill clones not made within drill.clone_timeout_s \(600 s\)"):
        steps.check_clones(state, lab, clock)


def test_a_clone_left_on_a_production_network_is_never_powered_on(clock):
    lab, dns = FakeDrillLab({vm: "poweredOff" for vm in STANDBY_VMS}, clock), ZoneDns()
    lab.isolate = lambda clones, network: None  # the reconfiguration did not take
    state = steps.prepare_drill(steps.validate_request(DRILL, config_with(), clock), lab, dns, clock)
    with pytest.raises(
        DrillCloneFailed, match=r"not isolated on dcwatch-drill: shop-db-b-drill-\w+ \(poweredOff, on VM Network\)"
    ):
        steps.check_clones(state, lab, clock)
    assert lab.power_on_calls == []


def test_a_clone_that_will_not_go_is_reported_and_the_cleanup_retried_after_the_records_are_restored(clock):
    lab, dns = FakeDrillLab({vm: "poweredOff" for vm in STANDBY_VMS}, clock), ZoneDns()
    dns.records["drill-shop.hosting.example."] = ("192.0.2.99",)
    state = run_drill(clock, lab, dns)
    lab.stuck_clones = frozenset({f"transit-app-b-drill-{state.plan.drill.run}"})
    with pytest.raises(DrillCleanupIncomplete, match="drill clones still at dc-b: transit-app-b-drill-"):
        steps.clean_up_drill(state, lab, dns, clock)
    assert dns.records == {"drill-shop.hosting.example.": ("192.0.2.99",)}, "restored, and the new one removed"
    lab.stuck_clones = frozenset()
    again = steps.clean_up_drill(state, lab, dns, clock)
    assert again.drill.cleanup.startswith("destroyed 1 clone (transit-app-b-drill-"), "the retry finishes the job"


def test_a_drill_that_lost_its_lock_still_destroys_its_clones_and_says_so(clock):
    lab, dns, leases = FakeDrillLab({vm: "poweredOff" for vm in STANDBY_VMS}, clock), ZoneDns(), FakeLeases()
    state = run_drill(clock, lab, dns)
    leases.acquire("dc-a-down-20261125T031500Z", 900, clock())

    state = steps.clean_up_drill_whatever_the_lock(state, lab, dns, leases, 900, clock)

    assert lab.clones() == [] and dns.records == {}, "its clones are its own: no failover needs them"
    assert leases.holder().owner == "dc-a-down-20261125T031500Z"
    subject, body = messages.success_message(state, clock)
    assert subject == "[dcwatch] ACTION NEEDED: DRILL PASSED dc-a -> dc-b, but it lost the lock"
    assert "Lock: the drill lost the lock to dc-a-down-20261125T031500Z before its cleanup" in body


def test_a_failed_drill_announces_its_cleanup_and_a_failed_cleanup_names_the_command_that_finishes_it(clock):
    lab, dns = FakeDrillLab({vm: "poweredOff" for vm in STANDBY_VMS}, clock), ZoneDns()
    state = run_drill(clock, lab, dns)
    state.failed_step, state.error = "VerifyServices", {"Error": "ServiceNotVerified", "Cause": "shop down"}
    cleaned = steps.clean_up_drill(state.model_copy(deep=True), lab, dns, clock)
    subject, _ = messages.failure_message(cleaned)
    assert subject == "[dcwatch] ACTION NEEDED: DRILL FAILED at VerifyServices, production untouched, drill cleaned up"
    state.failed_step = "CleanUpDrill"
    cause = json.dumps({"errorMessage": "drill clones still at dc-b: shop-db-b-drill-0a1b2c3d"})
    state.error = {"Error": "DrillCleanupIncomplete", "Cause": cause}
    subject, body = messages.failure_message(state)
    assert subject == "[dcwatch] ACTION NEEDED: drill cleanup incomplete after CleanUpDrill"
    assert "Cleanup did not finish: drill clones still at dc-b: shop-db-b-drill-0a1b2c3d" in body
    assert "(`dcwatch drill --cleanup`)" in body


def test_a_passed_drill_is_audited_and_never_changes_the_active_site(clock):
    lab, dns, notifier, store = (
        FakeDrillLab({vm: "poweredOff" for vm in STANDBY_VMS}, clock),
        ZoneDns(),
        FakeNotifier(),
        FakeStore(),
    )
    state = steps.clean_up_drill(run_drill(clock, lab, dns), lab, dns, clock)
    steps.record_audit(steps.notify(state, notifier, clock), store, clock)
    assert store.active is None
    (record,) = store.audits[state.incident_id]
    assert record["outcome"] == "drill-passed" and "cleaned up" in record["drill"]["measured"]


def drill_of(name: str, record: str, values: list[str] | None = None, url: str = "http://127.0.30.1/") -> dict:
    check = {"name": "home", "url": url}
    dns = {"zone": "hosting.example.", "name": record}
    return {"services": [{"name": name, "dns": dns, "dns_values": values or ["127.0.30.1"], "checks": [check]}]}


@pytest.mark.parametrize(
    ("drill", "message"),
    [
        (
            drill_of("shop", "shop.hosting.example.") | {"network": "isolated"},
            "drill.services[0].dns.name: shop.hosting.example. is the production record of service shop",
        ),
        (
            drill_of("mail", "d.hosting.example.") | {"network": "isolated"},
            "drill.services[0].name: 'mail' is not one of the services",
        ),
        (
            drill_of("shop", "d.hosting.example.", ["127.0.20.1"]) | {"network": "isolated"},
            "drill.services[0].dns_values: 127.0.20.1 is a production address of shop at dc-b, not the clones' "
            "address on the drill network",
        ),
        (
            drill_of("shop", "d.hosting.example.", url="http://127.0.20.1:18080/health") | {"network": "isolated"},
            "drill.services[0].checks[0]: 127.0.20.1:18080 is where shop/shop-home checks production at dc-b, not "
            "a clone's address on the drill network",
        ),
        (drill_of("shop", "d.hosting.example."), "drill.network: Field required"),
        (
            drill_of("shop", "d.hosting.example.")
            | {"network": "isolated", "snapshot_hook": SNAPSHOT | {"modes": ["disaster"]}},
            "drill.snapshot_hook: modes: ['disaster'] leaves out drill, the only mode this hook runs in",
        ),
        (
            drill_of("shop", "d.hosting.example.")
            | {"network": "isolated", "snapshot_hook": SNAPSHOT | {"timeout_s": 120}},
            "drill.snapshot_hook.timeout_s: 120 s, more than the 45 s a PrepareDrill step Lambda",
        ),
    ],
)
def test_a_drill_config_that_would_touch_production_or_names_nothing_is_refused(drill, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config_with(drill=drill)


class Pages:
    """The report bucket, in memory: one page per key, never replaced."""

    def __init__(self, fail: bool = False) -> None:
        self.kept: dict[str, str] = {}
        self.fail = fail

    def put_report(self, key: str, html: str) -> str:
        if self.fail:
            raise ConnectionError("s3 unreachable")
        self.kept.setdefault(key, html)
        return f"https://reports.example/{key}"


def test_a_drill_s_report_is_written_from_its_audit_record_and_linked_from_its_notice(clock):
    lab, dns = FakeDrillLab({vm: "poweredOff" for vm in STANDBY_VMS}, clock), ZoneDns()
    state = steps.clean_up_drill(run_drill(clock, lab, dns), lab, dns, clock)
    pages, store, notifier = Pages(), FakeStore(), FakeNotifier()
    rendered = []

    def render(record):
        rendered.append(record)
        return f"<html>{record['outcome']}</html>"

    state = steps.record_audit(state, store, clock, reports=pages, render=render)
    (record,) = store.audits[state.incident_id]
    assert rendered == [record], "the page shows what the audit keeps"
    key = f"reports/drill/{state.incident_id}/{state.run_id}.html"
    assert pages.kept == {key: "<html>drill-passed</html>"}
    steps.notify(state, notifier, clock)
    ((_, message),) = notifier.sent
    assert f"Report: https://reports.example/{key}" in message


def test_a_report_that_cannot_be_written_is_said_and_the_outcome_stands(clock):
    lab, dns = FakeDrillLab({vm: "poweredOff" for vm in STANDBY_VMS}, clock), ZoneDns()
    state = steps.clean_up_drill(run_drill(clock, lab, dns), lab, dns, clock)
    store = FakeStore()
    state = steps.record_audit(state, store, clock, reports=Pages(fail=True), render=lambda record: "<html/>")
    assert store.audits[state.incident_id][0]["outcome"] == "drill-passed"
    assert state.report_url is None
    assert state.timeline[-1].detail.endswith("report not written: ConnectionError: s3 unreachable")
