"""`dcwatch demo`: the whole pipeline on one machine, a scripted outage, a timeline and a report.

Default scenario "site-outage": both sites run (vcsim + demo services, built from the config), probes
run on the schedule from every vantage point, then the active site's vCenter and services stop.
Detection, the failover workflow, DNS and the services at the standby are observed from outside, as a
customer would. `--scenario FILE` plays a scenario file (`dcwatch.local.scenario`) instead; `play` is
the one loop both the demo and the scenario matrix run.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

from dcwatch.adapters.probers import probe_round
from dcwatch.adapters.secrets import Credentials
from dcwatch.adapters.vsphere import VsphereInventory
from dcwatch.config import Config, HttpCheck, load_config
from dcwatch.detection.checks import PlannedCheck
from dcwatch.local.links import describe as describe_topology
from dcwatch.local.overlap import OverlapSampler, Target
from dcwatch.local.pipeline import LocalPipeline
from dcwatch.local.scenario import (
    Expect,
    Observed,
    OperatorControls,
    Player,
    ScenarioSpec,
    Step,
    Verdict,
    alert_kind,
    check_against,
    judge,
)
from dcwatch.observability import logger
from dcwatch.recovery.fencing import act_after

DEMO_CONFIG = Path(__file__).with_name("demo.yaml")
WATCH_POLL_S = 0.2
# Functions (and steps: `<function>/<step>`) whose failure is an outcome the pipeline handles, not an error of
# the run: an evaluation that dies
# is delivered again (evaluator-crash); a Fence step that could not power the failed site off raises its typed
# vCenter fault, which the workflow catches for ProveFenced to judge.
OUTCOME_FAILURES = ("-Evaluate", "/Fence")


SITE_OUTAGE = ScenarioSpec(
    name="site-outage",
    description="the active site goes dark: its vCenter and every service stop",
    proves="a dead active site is detected, failed over once, and served from the standby",
    steps=[Step(at=0, kill_site="active")],
    expect=Expect(failover=True, down=["active"]),
    max_s=90,
)


@dataclass(frozen=True)
class Scenario:
    """How the demo paces a scenario: `spec` is the timeline of faults (the site outage unless given)."""

    name: str = "site-outage"
    steady_s: float = 5.0
    deadline_s: float = 90.0
    settle_s: float = 5.0
    spec: ScenarioSpec | None = None

    @property
    def played(self) -> ScenarioSpec:
        return self.spec or SITE_OUTAGE.model_copy(update={"max_s": self.deadline_s})


class Timeline:
    """Events in seconds since the start; printed as they happen, kept for the report."""

    def __init__(self, out: Callable[[str], None]):
        self.t0_wall = datetime.now(UTC)
        self.t0 = time.monotonic()
        self.events: list[dict[str, Any]] = []
        self._out = out
        self._lock = threading.Lock()

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 2)

    def at(self, when: datetime) -> float:
        return round((when - self.t0_wall).total_seconds(), 2)

    def add(self, kind: str, text: str, t: float | None = None, **details: Any) -> float:
        t = self.now() if t is None else t
        with self._lock:
            self.events.append({"t": t, "kind": kind, "text": text, **details})
        self._out(f"{t:7.2f} s  {kind:<20} {text}")
        return t

    def first(self, kind: str, **match: Any) -> float | None:
        with self._lock:
            times = [e["t"] for e in self.events if e["kind"] == kind and all(e.get(k) == v for k, v in match.items())]
        return min(times) if times else None


Route = Callable[[str, str, int], tuple[str, int]]


def _direct(site: str, host: str, port: int) -> tuple[str, int]:
    return host, port


def site_of(config: Config, service: str, values: Iterable[str]) -> str | None:
    """The site whose addresses for `service` these record values are (None: neither site's)."""
    wanted = set(values)
    at = next(s for s in config.services if s.name == service).sites
    return next((site for site, where in at.items() if wanted and wanted <= set(where.dns_values)), None)


def client_view(config: Config, resolved: dict[str, tuple[str, ...]], route: Route = _direct) -> dict[str, bool]:
    """What a customer sees: call each service at the addresses its name resolved to, over the customers' path
    to the site those addresses are at (`route`: site, host, port -> where the connection goes)."""
    calls = []
    for service in config.services:
        check = next(c for c in next(iter(service.sites.values())).checks if isinstance(c, HttpCheck))
        url = urlparse(check.url)
        for value in resolved.get(service.dns.name, ()):
            site = site_of(config, service.name, [value])
            host, port = route(site, value, url.port or 80) if site else (value, url.port or 80)
            target = url._replace(netloc=f"{host}:{port}").geturl()
            spec = check.model_copy(update={"url": target, "timeout_s": 0.5})
            calls.append(PlannedCheck("customer", check.name, service.name, True, 0.5, spec))
    results = probe_round(calls, _no_credentials, vantage="customer", round_id="customer")
    return {s.name: any(r.ok for r in results if r.service == s.name) for s in config.services}


def _no_credentials(secret: str) -> Credentials:
    raise LookupError(f"a customer has no credentials ({secret})")


@dataclass
class Observations:
    powered_on: list[str] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    executions: dict[str, dict[str, Any]] = field(default_factory=dict)


class Watcher:
    """Polls Step Functions, Route 53 and the customer's view; turns changes into timeline events."""

    def __init__(self, pipeline: LocalPipeline, timeline: Timeline, obs: Observations):
        self.pipeline, self.config, self.timeline, self.obs = pipeline, pipeline.config, timeline, obs
        self.dns = pipeline.dns
        self.fault_at: float | None = None
        self.restored_at: float | None = None
        self.lost_at: float | None = None  # customers first failed to reach a service after the fault
        self.self_fenced: dict[str, float] = {}  # site -> when its agent fenced it
        self._moved = False  # a record changed after the fault
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watcher", daemon=True)
        self._seen_steps: dict[str, int] = {}
        self._dns_state: dict[str, tuple[str, ...]] = {}
        self._drill_state: dict[str, tuple[str, ...]] = {}  # drill record -> values, while a workflow runs
        self._state_lock = threading.Lock()

    def start(self) -> Watcher:
        self._records()  # where production points from the first moment on
        self._thread.start()
        return self

    def production(self) -> tuple[dict[str, str | None], frozenset[tuple[str, str]]]:
        """Where each service's production record points now (a site, or None), and the drill copies in use:
        (service, site) whose drill record points at that site."""
        with self._state_lock:
            dns, drill = dict(self._dns_state), dict(self._drill_state)
        config = self.config
        production = {s.name: site_of(config, s.name, dns.get(s.dns.name, ())) for s in config.services}
        drilled = set()
        for copy in config.drill.services if config.drill else []:
            site = site_of(config, copy.name, drill.get(copy.dns.name, ()))
            if site is not None:
                drilled.add((copy.name, site))
        return production, frozenset(drilled)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(WATCH_POLL_S):
            self.poll()

    def poll(self) -> None:
        try:
            self._executions()
            self._records()
            self._customers()
            self._self_fences()
        except Exception as exc:  # noqa: BLE001 - a watcher hiccup must not end the demo
            self.timeline.add("watcher_error", str(exc)[:200])

    def _executions(self) -> None:
        for item in self.pipeline.executions():
            arn, name = item["executionArn"], item["name"]
            known = self.obs.executions.get(arn)
            if known is None:
                known = self.obs.executions[arn] = {"name": name, "status": "RUNNING"}
                t = self.timeline.add(
                    "failover_started",
                    f"workflow {name} started",
                    t=self.timeline.at(item["startDate"]),
                    execution=name,
                )
                known["started_at"] = t
            history = self.pipeline.history(arn)
            for event in history[self._seen_steps.get(arn, 0) :]:
                if event["type"] == "TaskStateEntered" and event["stateEnteredEventDetails"]["name"] in GATES:
                    gate = event["stateEnteredEventDetails"]["name"]
                    known["waiting_at"] = gate
                    self.timeline.add(
                        "approval_asked",
                        f"workflow {name} waits at {gate} for a human",
                        t=self.timeline.at(event["timestamp"]),
                        execution=name,
                        gate=gate,
                    )
                if event["type"] == "TaskStateExited":
                    known.pop("waiting_at", None)
                    step = event["stateExitedEventDetails"]["name"]
                    # What Fence did or ProveFenced proved is the point of a network scenario: the timeline says it.
                    fencing, proof = _fencing(event) if step in FENCING_STEPS else (None, None)
                    self.timeline.add(
                        "workflow_step",
                        f"{step} done" + (f": {fencing}" if fencing else ""),
                        t=self.timeline.at(event["timestamp"]),
                        step=step,
                        execution=name,
                        **({"fencing": fencing} if fencing else {}),
                        **({"proof": proof} if proof else {}),
                    )
                elif event["type"] == "LambdaFunctionFailed":
                    details = event.get("lambdaFunctionFailedEventDetails", {})
                    self.timeline.add(
                        "workflow_error",
                        f"{details.get('error')}: {details.get('cause', '')[:160]}",
                        t=self.timeline.at(event["timestamp"]),
                        execution=name,
                    )
            self._seen_steps[arn] = len(history)
            if item["status"] != known["status"]:
                known["status"] = item["status"]
                kind = "failover_succeeded" if item["status"] == "SUCCEEDED" else "failover_ended"
                self.timeline.add(
                    kind,
                    f"workflow {name} {item['status']}",
                    t=self.timeline.at(item["stopDate"]),
                    execution=name,
                    status=item["status"],
                )

    def _self_fences(self) -> None:
        """A site's agent that fenced its own site, as its state file on the site's disk says."""
        agents = self.pipeline.agents
        for site, fence in (agents.fences() if agents is not None else {}).items():
            if site in self.self_fenced:
                continue
            off = ", ".join(fence.vms_powered_off) or "nothing"
            errors = f"; errors: {'; '.join(fence.errors)}" if fence.errors else ""
            self.self_fenced[site] = self.timeline.add(
                "site_self_fenced",
                f"{site}'s agent fenced its site: {fence.reason}; powered off {off}{errors}",
                t=self.timeline.at(fence.fenced_at),
                site=site,
            )

    def _records(self) -> None:
        running = any(e["status"] == "RUNNING" for e in self.obs.executions.values())
        drills = self.config.drill.services if self.config.drill and running else []
        drill = {d.dns.name: tuple(self.dns.values(d.dns.zone, d.dns.name, d.dns.type)) for d in drills}
        with self._state_lock:
            self._drill_state = drill
        for service in self.config.services:
            values = tuple(self.dns.values(service.dns.zone, service.dns.name, service.dns.type))
            if self._dns_state.get(service.dns.name) not in (None, values):
                self.timeline.add(
                    "dns_changed",
                    f"{service.dns.name} -> {', '.join(values)}",
                    record=service.dns.name,
                    values=list(values),
                )
                self._moved = self.fault_at is not None
            with self._state_lock:
                self._dns_state[service.dns.name] = values

    def _customers(self) -> None:
        if self.fault_at is None or self.restored_at is not None:
            return
        # The names as this poll resolved them, so "restored" can never precede the DNS change it needs.
        view = client_view(self.config, self._dns_state, self.pipeline.customer_address)
        if not all(view.values()):
            self.lost_at = self.lost_at if self.lost_at is not None else self.timeline.now()
        # Restored after a loss or a move: a fault customers do not feel yet (a VPN cut) restores nothing.
        elif self.lost_at is not None or self._moved:
            self.restored_at = self.timeline.add(
                "service_restored", f"customers reach {', '.join(view)} through DNS again"
            )


# The workflow's states that wait for a human's answer (a task token): an approval gate.
GATES = ("RequestApproval", "RequestApprovalForFencing")
# The steps whose `fencing` says whether the failed site was fenced: proof (a), or the other proofs.
FENCING_STEPS = ("Fence", "ProveFenced")


def _fencing(event: dict[str, Any]) -> tuple[str | None, str | None]:
    """What a fencing step reported, and the proof it holds when it holds one (vcenter, lease, storage,
    trust_quorum: `dcwatch.recovery.fencing`)."""
    try:
        output = json.loads(event["stateExitedEventDetails"].get("output") or "{}")
    except json.JSONDecodeError:
        return None, None
    if not isinstance(output, dict):
        return None, None
    proof = output.get("fenceProof") or {}
    kind = str(proof["kind"]) if isinstance(proof, dict) and proof.get("proven") and proof.get("kind") else None
    return (str(output["fencing"]) if output.get("fencing") else None), kind


def console_writer(console: TextIO) -> Callable[[str], None]:
    """Whole lines to the console: the timeline is written from the dispatcher's and the prober's threads,
    and `print` writes a line and its newline apart, so two threads could share one line."""
    lock = threading.Lock()

    def write(line: str) -> None:
        with lock:
            console.write(line + "\n")
            console.flush()

    return write


def run_demo(
    config_path: str | Path = DEMO_CONFIG,
    report_path: str | Path | None = None,
    scenario: Scenario = Scenario(),
    out: Callable[[str], None] | None = None,
    log_path: str | Path = "dcwatch-demo.log",
) -> dict[str, Any]:
    """Run the scenario; handler logs and metrics (JSON) go to `log_path`, the timeline to `out`."""
    out = out or console_writer(sys.stdout)
    with open(log_path, "w", encoding="utf-8") as log, redirect_stdout(log), handler_logs_to(log):
        report = _run(str(Path(config_path).resolve()), scenario, out, Path(log_path).resolve().parent)
    _print_summary(report, out)
    out(f"handler logs and metrics (JSON lines): {log_path}")
    if report_path:
        Path(report_path).write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        out(f"report written to {report_path}")
    return report


@contextmanager
def handler_logs_to(stream: TextIO) -> Iterator[None]:
    handler = logger.registered_handler
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]


def _run(config_path: str, scenario: Scenario, out: Callable[[str], None], log_dir: Path) -> dict[str, Any]:
    timeline = Timeline(out)
    config = load_config(config_path)
    check_against(scenario.played, config)
    active, standby = config.active_site, config.other_site(config.active_site)
    out(f"dcwatch demo: {len(config.services)} services, {active} active, {standby} standby ({config_path})")
    for line in describe_topology(config.topology):
        out(line)
    out(f"scenario {scenario.played.name}: {scenario.played.description}")

    def built(site: str, vms: int) -> None:
        state = "on" if site == config.active_site else "off"
        timeline.add("site_built", f"{site}: vCenter {config.site(site).vcenter.url}, {vms} VMs {state}", site=site)

    with LocalPipeline(config_path, on_site_built=built, log_dir=log_dir) as pipeline:
        timeline.add("aws_ready", f"moto at {pipeline.cloud.endpoint}: bus, rules, table, topic, zone, state machine")
        return play(pipeline, scenario.played, timeline, steady_s=scenario.steady_s, settle_s=scenario.settle_s)


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
        on_site_status=lambda event: _site_status(timeline, event),
        on_notification=lambda body: _notification(timeline, obs, body),
        on_power_on=powered,
    )
    player = Player(pipeline, spec, lambda kind, text: None, controls)
    if pipeline.agents is not None:
        timeline.add("agents_running", pipeline.agents.describe())
    with ExitStack() as stack:
        watcher = Watcher(pipeline, timeline, obs).start()
        stack.callback(watcher.stop)
        sampler = OverlapSampler(customer_targets(pipeline), watcher.production).start()
        stack.callback(sampler.stop)
        probes = ProbeSchedule(pipeline, config.probe.interval_s, timeline).start()
        stack.callback(probes.stop)

        time.sleep(spec.steady_s if steady_s is None else steady_s)
        start = time.monotonic()
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
        assert pipeline.pump is not None
        errors = pipeline.pump.errors + [
            f"{name} failed"
            for name, ok in pipeline.lambdas.invocations
            if not ok and not name.endswith(OUTCOME_FAILURES)
        ]
        seen = _observed(timeline, obs, watcher, active_after, pipeline.pump.errors + player.errors)
        seen.both_serving_s = float(overlap["both_serving_s"])  # type: ignore[arg-type]
        seen.self_fenced = {site: round(t - (watcher.fault_at or 0.0), 2) for site, t in watcher.self_fenced.items()}
        left_on = vms_on(pipeline, config.active_site)
        lease = lease_timing(pipeline, timeline, config.active_site)
        probed = probe_detection(config, probes.history, config.active_site, watcher.fault_at)
        # What the lease cost a recovery: only where one happened (otherwise AWS never had to act on it).
        seen.lease_cost_s = lease_cost(lease, probed) if seen.failovers else None
    verdict = judge(spec, config, seen)
    report = _report(
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
    fault_at = summary["fault_at"]
    summary |= {"probe_detected_at": probed, "probe_detection_s": _since(probed, fault_at)}
    # Where AWS had to wait out the failed site's lease, its end is a floor of the decision as real as the quorum's.
    lease_floor = _since(lease["may_act_at"], fault_at) if lease and seen.lease_cost_s is not None else None
    summary |= detection_goal(
        summary["detection_floor_s"], probes.durations_s, summary["detected_after_fault_s"], lease_floor
    )
    summary["agents"] = pipeline.agents.describe() if pipeline.agents is not None else None
    return report


SHOWN_PER_REASON = 8  # failing checks a timeline line names per reason
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


def _since(t: float | None, fault_at: float | None) -> float | None:
    return round(t - fault_at, 2) if t is not None and fault_at is not None else None


def customer_targets(pipeline: LocalPipeline) -> list[Target]:
    """Every service's endpoint at both sites, as customers reach it: over the customers' path to that site."""
    targets = []
    for service in pipeline.config.services:
        for site, at in service.sites.items():
            check = next((c for c in at.checks if isinstance(c, HttpCheck)), None)
            if check is None:
                continue
            url = urlparse(check.url)
            address = pipeline.customer_address(site, url.hostname or "", url.port or 80)
            targets.append(Target(service.name, site, address, url.path or "/"))
    return targets


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
    timeline: Timeline, obs: Observations, watcher: Watcher, active_after: str, errors: list[str]
) -> Observed:
    fault_at = watcher.fault_at
    down = [e for e in sorted(timeline.events, key=lambda e: e["t"]) if e["kind"] == "site_down"]
    after = [e["t"] for e in down if fault_at is not None and e["t"] >= fault_at]
    steps = [e for e in sorted(timeline.events, key=lambda e: e["t"]) if e["kind"] == "workflow_step"]
    switched = {e["execution"] for e in steps if e["step"] == "SwitchDns"}
    alerts = _alert_counts(obs.notifications)
    return Observed(
        down=[e["site"] for e in down],
        alerts=alerts,
        failovers=len(switched),
        active_site=active_after,
        detection_s=round(after[0] - fault_at, 2) if after and fault_at is not None else None,
        errors=list(errors),
        fencing=[e["fencing"] for e in steps if e["step"] in FENCING_STEPS and e.get("fencing")],
        proofs={e["execution"]: e["proof"] for e in steps if e.get("proof") and e["execution"] in switched},
    )


def _site_status(timeline: Timeline, event: dict[str, Any]) -> None:
    detail = event["detail"]
    kind = "site_down" if detail["status"] == "DOWN" else "site_up"
    failed = "; ".join(detail.get("failedChecks", []))
    text = f"{detail['site']} ({detail['role']}) {detail['status']}: {detail['action']}"
    decided = timeline.at(datetime.fromisoformat(detail["decidedAt"]))
    timeline.add(kind, text, t=decided, site=detail["site"], failed_checks=failed)


def _notification(timeline: Timeline, obs: Observations, body: dict[str, Any]) -> None:
    obs.notifications.append({"subject": body.get("Subject"), "message": body.get("Message")})
    timeline.add("notification", str(body.get("Subject")), subject=body.get("Subject"))


def failing_by_reason(failed: list[str], shown: int = SHOWN_PER_REASON) -> str:
    """`a: why; b: why` as `a, b: why`: the parts of a vCenter that is down share one reason. At most `shown`
    checks per reason are named (a thousand refused checks are one line of the timeline, not a screenful)."""
    by_reason: dict[str, list[str]] = {}
    for entry in failed:
        check, _, reason = entry.partition(": ")
        by_reason.setdefault(reason, []).append(check)
    return "; ".join(f"{_first(checks, shown)}: {reason}" for reason, checks in by_reason.items())


def _first(names: list[str], shown: int) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


class ProbeSchedule:
    """Stands in for EventBridge Scheduler locally: invokes the probe function every interval."""

    MAX_ROUNDS = 1000

    def __init__(self, pipeline: LocalPipeline, interval_s: float, timeline: Timeline):
        self.pipeline, self.interval_s, self.timeline = pipeline, interval_s, timeline
        self.rounds = 0
        # Each round: when it ended, and per vantage point the (site, check) that failed.
        self.history: list[tuple[float, dict[str, set[tuple[str, str]]]]] = []
        self.durations_s: list[float] = []  # each round, from the schedule firing to every probe's return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="probe-schedule", daemon=True)
        self._last = ""

    def start(self) -> ProbeSchedule:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set() and self.rounds < self.MAX_ROUNDS:
            self.rounds += 1
            parts, failing = [], []
            failed: dict[str, set[tuple[str, str]]] = {}
            fired = time.monotonic()
            answers = self.pipeline.probe(f"round-{self.rounds}")
            self.durations_s.append(time.monotonic() - fired)
            for vantage, (payload, error) in answers.items():
                if error:
                    self.timeline.add(
                        "probe_error", f"{vantage}: {payload.get('errorType')}: {payload.get('errorMessage')}"
                    )
                    continue
                for done in payload["rounds"]:
                    parts.append(f"{vantage} {done['checks'] - len(done['failed'])}/{done['checks']}")
                    for entry in done["failed"]:
                        check, _, reason = entry.partition(": ")
                        failing.append(f"{check}@{vantage}: {reason}")
                        site, _, name = check.partition("/")
                        failed.setdefault(vantage, set()).add((site, name))
            self.history.append((self.timeline.now(), failed))
            summary = ", ".join(parts) + " checks pass"
            if parts and summary != self._last:
                self.timeline.add(
                    "probe_round",
                    summary + (f"; failing: {failing_by_reason(failing)}" if failing else ""),
                    round=self.rounds,
                )
                self._last = summary
            next_at += self.interval_s
            self._stop.wait(max(0.0, next_at - time.monotonic()))


def _report(
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
    verdict: Verdict,
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


def _print_summary(report: dict[str, Any], out: Callable[[str], None]) -> None:
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
    out(f"  notifications       {s['notifications']}")
    out(f"  false failovers     {s['false_failovers']}   missed failovers {s['missed_failovers']}")
    verdict = report["verdict"]
    out(f"  expected            {verdict['expected']}")
    out(f"  got                 {verdict['got']}   ({'as expected' if verdict['passed'] else 'NOT as expected'})")
    for problem in verdict["problems"]:
        out(f"  problem             {problem}")
    for error in s["errors"]:
        out(f"  error               {error}")
