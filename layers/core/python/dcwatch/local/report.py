"""What a run measured, and its report: detection against its floor and goal, the failed site's lease and what
it cost, the VMs left on; the JSON report and the printed summary."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from dcwatch.adapters.vsphere import VsphereInventory
from dcwatch.config import Config
from dcwatch.local.pipeline import LocalPipeline
from dcwatch.local.scenario.judge import ScenarioVerdict
from dcwatch.local.scenario.spec import ScenarioSpec
from dcwatch.local.timeline import Timeline
from dcwatch.local.watcher import Observations, Watcher
from dcwatch.observability import logger
from dcwatch.recovery.fencing import act_after

DETECTION_SLACK = 1.1  # the goal: detected within 1.1 x the floor, plus one probe round's own duration


def detection_goal(
    floor_s: float, rounds_s: list[float], detected_s: float | None, lease_floor_s: float | None = None
) -> dict[str, Any]:
    """Whether the outage was detected within 1.1 x its floor + one round's duration (the median of the rounds
    run): what the evaluator may add to the physical floor, at any number of checks.

    The floor is the quorum's, interval x failures_to_down. Where the failed site's agent fell silent, AWS may
    not call the site DOWN before its lease has run out (lease_ttl_s + margin_s after its last renewal, up to
    7.5 s in the demo): the later of the two is the floor then, `lease_floor_s` after the fault."""
    if not rounds_s:
        return {}
    round_s = statistics.median(rounds_s)
    goal_floor_s = max(floor_s, lease_floor_s or 0.0)
    by_lease = goal_floor_s > floor_s
    goal_s = round(DETECTION_SLACK * goal_floor_s + round_s, 2)
    met = None if detected_s is None else detected_s <= goal_s
    return {
        "round_s": round(round_s, 2),
        "goal_floor_s": round(goal_floor_s, 2),
        "goal_floor": "lease" if by_lease else "quorum",
        "detection_goal_s": goal_s,
        "detection_goal_met": met,
    }


def since(t: float | None, fault_at: float | None) -> float | None:
    return round(t - fault_at, 2) if t is not None and fault_at is not None else None


def probe_detection(
    config: Config, rounds: list[tuple[float, dict[str, set[tuple[str, str]]]]], site: str, fault_at: float | None
) -> float | None:
    """When the probes alone had the site DOWN: the end of the `failures_to_down`-th round in a row, after the
    fault, in which the quorum of vantage points saw every check of the site they run fail. What the evaluator
    would decide on with no agent to hear (before its own lag)."""
    if fault_at is None:
        return None
    vantages = config.topology.vantage_points
    quorum = config.thresholds.quorum or len(vantages)
    runs = {v.name: {c for c in v.checks if c[0] == site} for v in vantages}
    streak = 0
    for t, failing in rounds:
        if t < fault_at:
            continue
        seeing = [v for v, checks in runs.items() if checks and checks <= failing.get(v, set())]
        streak = streak + 1 if len(seeing) >= quorum else 0
        if streak >= config.thresholds.failures_to_down:
            return t
    return None


def lease_cost(lease: dict[str, Any] | None, detected_at: float | None) -> float | None:
    """How much later than the probes' detection AWS may act on the failed site's lease (0: it could at once):
    what the lease costs the recovery beyond detection. None when the lease was still renewed after the
    detection (its agent alive and reaching AWS: no lease proof was possible)."""
    if lease is None or detected_at is None or lease["renewed_at"] > detected_at:
        return None
    return round(max(0.0, lease["may_act_at"] - detected_at), 2)


def lease_timing(pipeline: LocalPipeline, timeline: Timeline, site: str) -> dict[str, Any] | None:
    """The site's lease as AWS last recorded it, on the timeline: renewed, expired, and the earliest AWS may act
    on it (`dcwatch.recovery.fencing.act_after`: lease_ttl_s + margin_s after the later of its last renewal and the last
    time the standby's agent heard it); None without agents or lease."""
    fencing = pipeline.config.fencing
    if fencing is None:
        return None
    try:
        lease = pipeline.site_lease(site)
        report = pipeline.store.agent_report(pipeline.config.other_site(site))
    except Exception as exc:  # noqa: BLE001 - a report line, not the outcome
        logger.warning("lease not read", site=site, error=str(exc))
        return None
    if lease is None:
        return None
    return {
        "site": site,
        "agent_id": lease.agent_id,
        "renewed_at": timeline.at(lease.renewed_at),
        "expires_at": timeline.at(lease.expires_at),
        "may_act_at": timeline.at(act_after(lease, report, fencing)),
        "lease_ttl_s": fencing.lease_ttl_s,
        "margin_s": fencing.margin_s,
    }


def vms_on(pipeline: LocalPipeline, site: str) -> list[str] | None:
    """The site's service VMs that are on, read from its vCenter directly, as someone at the site sees them
    (no link of AWS's network in between); None when its vCenter is down."""
    if not pipeline.vcsims[site].running:
        return None
    vcenter, names = (
        pipeline.config.site(site).vcenter,
        [vm.name for _, at in pipeline.config.services_at(site) for vm in at.vms],
    )
    try:
        with VsphereInventory.connect(vcenter, pipeline.vcenter_logins[site], timeout_s=5) as inventory:
            return sorted(vm for vm, power in inventory.power_states(names).items() if power == "poweredOn")
    except Exception as exc:  # noqa: BLE001 - a report line, not the outcome
        logger.warning("power states not read", site=site, error=str(exc))
        return None


def drill_outcome(pipeline: LocalPipeline, name: str, obs: Observations) -> str:
    """`passed` when drill `name`'s execution succeeded and its audit record says it passed and what its cleanup
    did; else `failed: why`."""
    status = next((e["status"] for e in obs.executions.values() if e["name"] == name), "never started")
    try:
        records = pipeline.store.audit(name)
    except Exception as exc:  # noqa: BLE001 - the outcome unknown is a failed drill, said why
        return f"failed: audit not read ({exc})"[:200]
    passed = next((r for r in records if r.get("outcome") == "drill-passed"), None)
    cleanup = ((passed or {}).get("drill") or {}).get("cleanup")
    if status == "SUCCEEDED" and passed is not None and cleanup:
        return "passed"
    outcomes = ", ".join(str(r.get("outcome")) for r in records) or "no audit record"
    return f"failed: execution {status}, {outcomes}, cleanup {cleanup or 'not done'}"


def build_report(
    config: Config,
    config_path: str,
    spec: ScenarioSpec,
    steady_s: float | None,
    timeline: Timeline,
    obs: Observations,
    watcher: Watcher,
    dns_after: dict[str, list[str]],
    active_after: str,
    errors: list[str],
    standby: str,
    verdict: ScenarioVerdict,
) -> dict[str, Any]:
    fault_at = watcher.fault_at
    started = sorted(e["started_at"] for e in obs.executions.values())
    before_fault = [t for t in started if fault_at is None or t < fault_at]
    after_fault = [t for t in started if fault_at is not None and t >= fault_at]
    expected_dns = {s.dns.name: sorted(s.sites[standby].dns_values) for s in config.services}
    dns_switched = [e["t"] for e in timeline.events if e["kind"] == "dns_changed"]
    dns_switched_at = (
        max(dns_switched) if dns_switched and {k: sorted(v) for k, v in dns_after.items()} == expected_dns else None
    )
    summary: dict[str, Any] = {
        "fault_at": fault_at,
        "detected_at": timeline.first("site_down", site=config.active_site),
        "failover_started_at": after_fault[0] if after_fault else None,
        "dns_switched_at": dns_switched_at,
        "service_restored_at": watcher.restored_at,
        "active_site": active_after,
        "powered_on": obs.powered_on,
        "dns": dns_after,
        "notifications": len(obs.notifications),
        "false_failovers": verdict.false_failovers + len(before_fault),
        "missed_failovers": verdict.missed_failovers,
        "detection_floor_s": config.probe.interval_s * config.thresholds.failures_to_down,
        "executions": [{"name": e["name"], "status": e["status"]} for e in obs.executions.values()],
        "errors": errors,
    }
    for key in ("detected_at", "failover_started_at", "dns_switched_at", "service_restored_at"):
        value = summary[key]
        summary[key.replace("_at", "_after_fault_s")] = (
            round(value - fault_at, 2) if value is not None and fault_at is not None else None
        )
    return {
        "scenario": {
            "name": spec.name,
            "description": spec.description,
            "config": config_path,
            "fault_site": config.active_site,
            "standby_site": standby,
            "probe_interval_s": config.probe.interval_s,
            "failures_to_down": config.thresholds.failures_to_down,
            "steady_s": spec.steady_s if steady_s is None else steady_s,
        },
        "events": sorted(timeline.events, key=lambda e: e["t"]),
        "notifications": list(obs.notifications),
        "summary": summary,
        "verdict": verdict.row(),
    }


def _lease_lines(s: dict[str, Any]) -> list[str]:
    """The failed site's lease next to the detection: when the probes alone had it DOWN, when AWS could act on
    its lease, and what that cost beyond the detection (at most one lease TTL)."""
    lease, fault = s.get("lease"), s.get("fault_at")
    if not lease or fault is None or s.get("lease_cost_s") is None:
        return []
    renewed, act = lease["renewed_at"] - fault, lease["may_act_at"] - fault
    return [
        f"  by the probes       +{s['probe_detection_s']:.2f} s   (the quorum's {s['detection_floor_s']:g} s floor, "
        "before the evaluator's lag)",
        f"  lease               last renewed {renewed:+.2f} s; AWS may act {act:+.2f} s (lease_ttl_s "
        f"{lease['lease_ttl_s']:g} + margin_s {lease['margin_s']:g})",
        f"  lease cost          +{s['lease_cost_s']:.2f} s beyond the probes' detection (at most one TTL: "
        f"{lease['lease_ttl_s']:g} s)",
    ]


def print_summary(report: dict[str, Any], out: Callable[[str], None]) -> None:
    s = report["summary"]

    def fmt(key: str) -> str:
        value = s.get(key.replace("_at", "_after_fault_s"))
        return "never" if value is None else f"+{value:.2f} s"

    out("")
    out("summary (times after the fault):")
    floor = s["detection_floor_s"]
    out(f"  detected            {fmt('detected_at')}   (physical floor: interval x threshold = {floor} s)")
    if s.get("detection_goal_s") is not None:
        met = {True: "met", False: "MISSED", None: "no detection"}[s["detection_goal_met"]]
        of = f"{floor:g} s" if s.get("goal_floor") != "lease" else f"the lease's end at {s['goal_floor_s']:.2f} s"
        out(
            f"  detection goal      +{s['detection_goal_s']:.2f} s   (1.1 x {of} + one round, "
            f"{s['round_s']:.2f} s median): {met}"
        )
    for line in _lease_lines(s):
        out(line)
    out(f"  failover started    {fmt('failover_started_at')}")
    out(f"  DNS switched        {fmt('dns_switched_at')}")
    out(f"  service restored    {fmt('service_restored_at')}")
    out(f"  active site         {s['active_site']}")
    out(f"  powered on          {', '.join(s['powered_on']) or 'nothing'}")
    for record, values in s["dns"].items():
        out(f"  dns                 {record} -> {', '.join(values)}")
    if s.get("agents"):
        out(f"  agents              {s['agents']}")
    proofs = ", ".join(sorted(set((s.get("fence_proofs") or {}).values()))) or "none"
    fencing = (s.get("fencing") or ["no fencing step ran"])[-1]
    out(f"  fencing proof       {proofs}: {fencing}")
    both = s.get("both_serving") or {}
    if both:
        out(
            f"  both serving        {both['both_serving_s']:.2f} s   ({both['samples']} samples of the customers' "
            f"view, largest gap {both['largest_gap_s']:.2f} s)"
        )
        lit = ", ".join(both.get("standby_services") or []) or "none"
        out(f"  standby answered    {both.get('standby_answered_s', 0):.2f} s   (its production endpoints: {lit})")
    for name, outcome in (s.get("drills") or {}).items():
        out(f"  drill               {name}: {outcome}")
    out(f"  notifications       {s['notifications']}")
    out(f"  false failovers     {s['false_failovers']}   missed failovers {s['missed_failovers']}")
    verdict = report["verdict"]
    out(f"  expected            {verdict['expected']}")
    out(f"  got                 {verdict['got']}   ({'as expected' if verdict['passed'] else 'NOT as expected'})")
    for problem in verdict["problems"]:
        out(f"  problem             {problem}")
    for error in s["errors"]:
        out(f"  error               {error}")
