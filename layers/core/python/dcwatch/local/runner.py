"""`play`: one scenario on a running pipeline, the one loop `dcwatch demo` and `dcwatch scenarios` run: its steps
at their times, watched until its outcome is decided, then judged and reported."""

from __future__ import annotations

import time
from contextlib import ExitStack
from datetime import datetime
from typing import Any

from dcwatch.local.overlap import OverlapSampler
from dcwatch.local.pipeline import LocalPipeline
from dcwatch.local.report import (
    build_report,
    detection_goal,
    drill_outcome,
    lease_cost,
    lease_timing,
    probe_detection,
    since,
    vms_on,
)
from dcwatch.local.scenario.judge import Seen, alert_kind, judge
from dcwatch.local.scenario.player import OperatorControls, Player
from dcwatch.local.scenario.spec import ScenarioSpec
from dcwatch.local.schedule import ProbeSchedule
from dcwatch.local.timeline import Timeline
from dcwatch.local.watcher import FENCING_STEPS, WATCH_POLL_S, Observations, Watcher, customer_targets

# Functions (and steps: `<function>/<step>`) whose failure is an outcome the pipeline handles, not an error of
# the run: an evaluation that dies
# is delivered again (evaluator-crash); a Fence step that could not power the failed site off raises its typed
# vCenter fault, which the workflow catches for ProveFenced to judge.
OUTCOME_FAILURES = ("-Evaluate", "/Fence")


def play(
    pipeline: LocalPipeline,
    spec: ScenarioSpec,
    timeline: Timeline,
    *,
    steady_s: float | None = None,
    settle_s: float = 2.0,
    controls: OperatorControls | None = None,
) -> dict[str, Any]:
    """Run `spec` on a started (or freshly reset) pipeline; stop as soon as its outcome is decided."""
    config = pipeline.config
    standby = config.other_site(config.active_site)
    obs = Observations()
    fault: dict[str, float] = {}

    def powered(site: str, vm: str) -> None:
        if site == standby and "at" in fault:
            obs.powered_on.append(vm)
            timeline.add("vm_powered_on", f"{vm} at {site}", site=site, vm=vm)

    pipeline.listen(
        on_site_status=lambda event: add_site_status(timeline, event),
        on_notification=lambda body: add_notification(timeline, obs, body),
        on_power_on=powered,
    )
    player = Player(pipeline, spec, lambda kind, text: None, controls)
    if pipeline.agents is not None:
        timeline.add("agents_running", pipeline.agents.describe())
    with ExitStack() as stack:
        watcher = Watcher(pipeline, timeline, obs).start()
        stack.callback(watcher.stop)
        sampler = OverlapSampler(customer_targets(pipeline), watcher.production, standby=standby).start()
        stack.callback(sampler.stop)
        probes = ProbeSchedule(pipeline, config.probe.interval_s, timeline).start()
        stack.callback(probes.stop)

        time.sleep(spec.steady_s if steady_s is None else steady_s)
        start, begun = time.monotonic(), timeline.now()
        planned = player.schedule()
        has_fault = any(is_fault for *_, is_fault in planned)
        for at, action, text, is_fault in planned:
            time.sleep(max(0.0, start + at - time.monotonic()))
            t = timeline.add("fault_injected" if is_fault else "step_applied", text)
            # Detection and recovery are timed from the first fault, not from the switches that set the stage.
            if is_fault or not has_fault:
                fault.setdefault("at", t)
                watcher.fault_at = fault["at"]
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - a step that cannot run fails the scenario, not the run
                player.errors.append(f"step {text!r}: {exc}")
                timeline.add("step_failed", f"{text}: {exc}")
        end = start + spec.max_s
        quiet_until = start + spec.last_step_at + spec.observe_s
        # A DOWN expected within a bound is watched for until it shows or the bound has passed, however
        # short the quiet window: otherwise a detection inside its bound but after the window is "missed".
        # Likewise the alerts the file expects: until each has come (or max_s), an early end is no verdict.
        down_due = _down_due(spec, player, planned, start)
        while time.monotonic() < end and not (
            _decided(spec, watcher, obs, quiet_until)
            and _downs_seen(timeline, player, spec, down_due)
            and _alerts_in(spec, obs)
        ):
            time.sleep(WATCH_POLL_S)
        time.sleep(settle_s)
        probes.stop()
        time.sleep(min(1.0, config.probe.interval_s))
        watcher.stop()
        watcher.poll()
        overlap = sampler.stop()

        dns_after = pipeline.dns_values()
        active_after = pipeline.store.active_site(config.active_site)
        pump = pipeline.delivery.pump
        assert pump is not None
        errors = pump.errors + [
            f"{name} failed"
            for name, ok in pipeline.lambdas.invocations
            if not ok and not name.endswith(OUTCOME_FAILURES)
        ]
        seen = _observed(timeline, obs, watcher, active_after, pump.errors + player.errors, player.drills, begun)
        seen.both_serving_s = float(overlap["both_serving_s"])  # type: ignore[arg-type]
        seen.standby_answered_s = float(overlap["standby_answered_s"])  # type: ignore[arg-type]
        seen.drills = {name: drill_outcome(pipeline, name, obs) for name in player.drills}
        seen.self_fenced = {site: round(t - (watcher.fault_at or 0.0), 2) for site, t in watcher.self_fenced.items()}
        left_on = vms_on(pipeline, config.active_site)
        lease = lease_timing(pipeline, timeline, config.active_site)
        probed = probe_detection(config, probes.history, config.active_site, watcher.fault_at)
        # What the lease cost a recovery: only where one happened (otherwise AWS never had to act on it).
        seen.lease_cost_s = lease_cost(lease, probed) if seen.failovers else None
    verdict = judge(spec, config, seen)
    report = build_report(
        config,
        pipeline.config_path,
        spec,
        steady_s,
        timeline,
        obs,
        watcher,
        dns_after,
        active_after,
        errors,
        standby,
        verdict,
    )
    summary = report["summary"]
    summary |= {"fencing": seen.fencing, "fence_proofs": seen.proofs, "vms_on_at_failed_site": left_on}
    summary |= {"both_serving": overlap}
    summary |= {"both_serving_s": seen.both_serving_s, "lease": lease, "lease_cost_s": seen.lease_cost_s}
    summary |= {"standby_answered_s": seen.standby_answered_s, "drills": seen.drills}
    fault_at = summary["fault_at"]
    summary |= {"probe_detected_at": probed, "probe_detection_s": since(probed, fault_at)}
    # Where AWS had to wait out the failed site's lease, its end is a floor of the decision as real as the quorum's.
    lease_floor = since(lease["may_act_at"], fault_at) if lease and seen.lease_cost_s is not None else None
    summary |= detection_goal(
        summary["detection_floor_s"], probes.durations_s, summary["detected_after_fault_s"], lease_floor
    )
    summary["agents"] = pipeline.agents.describe() if pipeline.agents is not None else None
    return report


def _down_due(spec: ScenarioSpec, player: Player, planned: list[Any], start: float) -> float | None:
    """When the DOWNs the scenario expects must have shown (monotonic), or None when it expects none."""
    within, faults = spec.expect.detected_within_s, [at for at, *_, is_fault in planned if is_fault]
    if not spec.expect.down or within is None or not faults:
        return None
    return start + min(faults) + within


def _downs_seen(timeline: Timeline, player: Player, spec: ScenarioSpec, due: float | None) -> bool:
    if due is None or time.monotonic() >= due:
        return True
    seen = {e.get("site") for e in timeline.events if e["kind"] == "site_down"}
    return all(player.site(ref) in seen for ref in spec.expect.down or [])


def _alert_counts(notifications: list[dict[str, Any]]) -> dict[str, int]:
    """Alerts sent, by kind (the first word of the subject)."""
    counts: dict[str, int] = {}
    for note in notifications:
        kind = alert_kind(str(note.get("subject") or ""))
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def _alerts_in(spec: ScenarioSpec, obs: Observations) -> bool:
    """Every alert the file expects has come, as often as it expects (more are the verdict's business)."""
    seen = _alert_counts(list(obs.notifications))
    return all(seen.get(str(kind), 0) >= count for kind, count in spec.expect.alerts.items())


def _decided(spec: ScenarioSpec, watcher: Watcher, obs: Observations, quiet_until: float) -> bool:
    """Failover expected: it ran to its end and customers are served. None expected: the quiet window passed."""
    # A workflow waiting at an approval gate has done all it will do without a human.
    ended = bool(obs.executions) and all(
        e["status"] != "RUNNING" or e.get("waiting_at") for e in obs.executions.values()
    )
    if spec.expect.failover:
        return ended and watcher.restored_at is not None and bool(obs.notifications)
    return time.monotonic() >= quiet_until and (ended or not obs.executions)


def _observed(
    timeline: Timeline,
    obs: Observations,
    watcher: Watcher,
    active_after: str,
    errors: list[str],
    drills: list[str],
    begun: float = 0.0,
) -> Seen:
    """What the run saw; a failover is an execution that switched DNS, a drill's (its drill records) none.
    `begun`: the scenario's first step (timeline seconds); what moved before it had no cause in this scenario."""
    fault_at = watcher.fault_at
    down = [e for e in sorted(timeline.events, key=lambda e: e["t"]) if e["kind"] == "site_down"]
    after = [e["t"] for e in down if fault_at is not None and e["t"] >= fault_at]
    steps = [e for e in sorted(timeline.events, key=lambda e: e["t"]) if e["kind"] == "workflow_step"]
    switched = {e["execution"] for e in steps if e["step"] == "SwitchDns" and e["execution"] not in drills}
    early = [f"DOWN {e['site']} at {e['t'] - begun:.2f} s" for e in down if e["t"] < begun] + [
        f"workflow {x} at {t - begun:.2f} s" for x, t in _first_steps(steps).items() if t < begun
    ]
    alerts = _alert_counts(obs.notifications)
    return Seen(
        down=[e["site"] for e in down],
        alerts=alerts,
        failovers=len(switched),
        active_site=active_after,
        detection_s=round(after[0] - fault_at, 2) if after and fault_at is not None else None,
        errors=list(errors),
        fencing=[e["fencing"] for e in steps if e["step"] in FENCING_STEPS and e.get("fencing")],
        proofs={e["execution"]: e["proof"] for e in steps if e.get("proof") and e["execution"] in switched},
        before_start=early,
    )


def _first_steps(steps: list[dict[str, Any]]) -> dict[str, float]:
    """Each execution's first step (timeline seconds), from steps in time order."""
    first: dict[str, float] = {}
    for e in steps:
        first.setdefault(e["execution"], e["t"])
    return first


def add_site_status(timeline: Timeline, event: dict[str, Any]) -> None:
    detail = event["detail"]
    kind = "site_down" if detail["status"] == "DOWN" else "site_up"
    failed = "; ".join(detail.get("failedChecks", []))
    text = f"{detail['site']} ({detail['role']}) {detail['status']}: {detail['action']}"
    decided = timeline.at(datetime.fromisoformat(detail["decidedAt"]))
    timeline.add(kind, text, t=decided, site=detail["site"], failed_checks=failed)


def add_notification(timeline: Timeline, obs: Observations, body: dict[str, Any]) -> None:
    obs.notifications.append({"subject": body.get("Subject"), "message": body.get("Message")})
    timeline.add("notification", str(body.get("Subject")), subject=body.get("Subject"))
