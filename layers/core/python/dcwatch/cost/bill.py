"""The monthly bill: priced lines for every AWS service a deployment uses, from its workload and its round
counts."""

from __future__ import annotations

from dataclasses import dataclass

from dcwatch.cost.assumptions import ASSUMED, Assumptions
from dcwatch.cost.prices import GB, MONTH_S, PRICES, SQS_LONG_POLL_S, Price, Prices
from dcwatch.cost.rounds import RoundCounts
from dcwatch.cost.workload import Workload, probe_invocation_s, rounds_per_month, schedule_period_s
from dcwatch.wiring import function, step


@dataclass(frozen=True)
class Line:
    service: str
    item: str
    quantity: float
    price: Price
    basis: str

    @property
    def usd(self) -> float:
        return self.price.cost(self.quantity)

    @property
    def tag(self) -> str:
        """What the quantity rests on, in a word: the config, an assumption, a measurement, the ASL walk."""
        for start, tag in (("measured", "measured"), ("walked", "ASL walk"), ("the per-result", "per-result")):
            if self.basis.startswith(start):
                return tag
        return "config" if self.basis == "config" else "assumed"


@dataclass(frozen=True)
class CostTable:
    title: str
    lines: tuple[Line, ...]
    notes: tuple[str, ...] = ()

    @property
    def total(self) -> float:
        return sum(line.usd for line in self.lines)

    def by_service(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for line in self.lines:
            totals[line.service] = totals.get(line.service, 0.0) + line.usd
        return totals


def _xray_traces(invocations_per_s: float) -> float:
    """X-Ray's default rule records the first request each second and 5 % of the rest."""
    return (min(invocations_per_s, 1.0) + 0.05 * max(0.0, invocations_per_s - 1.0)) * MONTH_S


@dataclass(frozen=True)
class _Month:
    """A month of one workload at its round counts: what each part of the bill counts from."""

    w: Workload
    counts: RoundCounts
    a: Assumptions
    p: Prices

    @property
    def rounds(self) -> float:
        return rounds_per_month(self.w.interval_s)

    @property
    def period(self) -> int:
        return schedule_period_s(self.w.interval_s)

    @property
    def probe_calls(self) -> float:
        return len(self.w.vantages) * MONTH_S / self.period

    @property
    def agent_events(self) -> float:
        return self.w.agents * MONTH_S / self.w.agent_renew_s if self.w.agents else 0.0

    @property
    def evaluate_gb(self) -> float:
        return function("Evaluate").memory_mb / 1024

    @property
    def step_gb(self) -> float:
        return function(step("StartGroup").function).memory_mb / 1024


def monthly_cost(
    workload: Workload, counts: RoundCounts, a: Assumptions = ASSUMED, prices: Prices = PRICES
) -> CostTable:
    """Every line of the monthly bill: `counts` per round times the rounds in a month, plus what runs
    regardless of the checks (the sleeping probe, alarms, metrics, the NAT gateway)."""
    m = _Month(workload, counts, a, prices)
    network, notes = _network(m)
    lines = [*_probe_and_evaluator(m), *_events_and_state(m), *_workflow(m), *_operations(m), *network]
    return CostTable(
        f"dcwatch {workload.name}: monthly AWS cost ({counts.basis})", tuple(lines), (*notes, _failover_note(m))
    )


def _probe_and_evaluator(m: _Month) -> list[Line]:
    """The probe's calls, asleep between their rounds, its schedule, and the evaluator's calls."""
    p, w, a, counts, rounds, period, probe_calls = m.p, m.w, m.a, m.counts, m.rounds, m.period, m.probe_calls
    probe_gb, evaluate_gb, path = function("Probe").memory_mb / 1024, m.evaluate_gb, counts.basis
    probe_s = sum(probe_invocation_s(w.interval_s, v.checks, a) for v in w.vantages) / max(1, len(w.vantages))
    lines = [
        Line(
            "Lambda",
            f"probe calls ({len(w.vantages)} vantage points, one per {period} s)",
            probe_calls,
            p.lambda_request,
            "config",
        ),
        Line(
            "Lambda",
            f"probe duration ({probe_s:.1f} s a call at {function('Probe').memory_mb} MB, asleep between rounds)",
            probe_calls * probe_s * probe_gb,
            p.lambda_gb_s_arm,
            "config + assumed round time",
        ),
        Line("EventBridge", "schedules: probe calls", probe_calls, p.scheduler, "config"),
        Line(
            "Lambda",
            f"evaluator calls ({counts.evaluator_invocations} per round)",
            counts.evaluator_invocations * rounds,
            p.lambda_request,
            path,
        ),
        Line(
            "Lambda",
            f"evaluator duration ({counts.evaluator_ms:.0f} ms per round at {function('Evaluate').memory_mb} MB)",
            counts.evaluator_ms / 1000 * rounds * evaluate_gb,
            p.lambda_gb_s_arm,
            path,
        ),
    ]
    return lines


def _events_and_state(m: _Month) -> list[Line]:
    """The round's events, their archive and queue, the evaluator's reads and writes, the site agents' reports."""
    p, w, a, counts, rounds, evaluate_gb, path = m.p, m.w, m.a, m.counts, m.rounds, m.evaluate_gb, m.counts.basis
    agent_events, lines = m.agent_events, list[Line]()
    lines.append(
        Line(
            "EventBridge",
            f"custom events: {counts.putevents_entries} entries a round "
            f"({counts.event_chunks} 64 KB chunks)" + (" + agent reports" if w.agents else ""),
            counts.event_chunks * rounds + agent_events,
            p.custom_event,
            path,
        )
    )
    archived_gb = (counts.event_bytes * rounds + agent_events * a.agent_report_bytes) / GB
    lines += [
        Line("EventBridge", "archive: every event processed into it", archived_gb, p.archive_processed, path),
        Line("EventBridge", "archive: 90 days kept (3 months of events)", 3 * archived_gb, p.archive_stored, path),
    ]
    if counts.queue:
        idle = a.esm_pollers * MONTH_S / SQS_LONG_POLL_S
        lines += [
            Line(
                "SQS FIFO",
                "sends: one per event chunk (the rule's target)",
                counts.event_chunks * rounds,
                p.sqs_fifo,
                path,
            ),
            Line(
                "SQS FIFO",
                f"receives: {counts.sqs_receive_chunks} with data per round + idle long polls "
                f"({a.esm_pollers} pollers x {SQS_LONG_POLL_S} s)",
                counts.sqs_receive_chunks * rounds + idle,
                p.sqs_fifo,
                f"{path}; pollers assumed",
            ),
            Line("SQS FIFO", "deletes: one batch per evaluator call", counts.sqs_deletes * rounds, p.sqs_fifo, path),
        ]
    consistency = "strongly" if a.strongly_consistent else "eventually"
    lines += [
        Line(
            "DynamoDB",
            f"reads: {counts.dynamodb_reads} per round, {consistency} consistent ({counts.dynamodb_read_units:g} RRU)",
            counts.dynamodb_read_units * rounds,
            p.dynamodb_read,
            path,
        ),
        Line(
            "DynamoDB",
            f"writes: {counts.dynamodb_writes} per round" + (", agents: lease + report" if w.agents else ""),
            counts.dynamodb_write_units * rounds + 2 * agent_events,
            p.dynamodb_write,
            path,
        ),
    ]
    if w.agents:
        lines += [
            Line(
                "Lambda",
                f"site agents' reports ({w.agents} agents every {w.agent_renew_s:g} s)",
                agent_events,
                p.lambda_request,
                "config",
            ),
            Line(
                "Lambda",
                "site agents' reports: duration",
                agent_events * a.agent_report_ms / 1000 * evaluate_gb,
                p.lambda_gb_s_arm,
                "assumed duration",
            ),
        ]
    return lines


def _workflow(m: _Month) -> list[Line]:
    """Drills and failovers: the workflow's transitions and its steps' Lambda calls."""
    p, w, a, step_gb, lines = m.p, m.w, m.a, m.step_gb, list[Line]()
    ex = w.executions
    lines += [
        Line(
            "Step Functions",
            f"drill: {ex.drill_transitions} transitions each, {a.drills_per_month:g} a month",
            ex.drill_transitions * a.drills_per_month,
            p.state_transition,
            ex.basis,
        ),
        Line(
            "Step Functions",
            f"failover: {ex.failover_transitions} transitions each, {a.failovers_per_month:g} a month",
            ex.failover_transitions * a.failovers_per_month,
            p.state_transition,
            ex.basis,
        ),
        Line(
            "Lambda",
            f"workflow steps: {ex.failover_steps} calls per failover, {ex.drill_steps} per drill",
            ex.failover_steps * a.failovers_per_month + ex.drill_steps * a.drills_per_month,
            p.lambda_request,
            ex.basis,
        ),
        Line(
            "Lambda",
            f"workflow steps: duration ({a.step_ms:.0f} ms each)",
            (ex.failover_steps * a.failovers_per_month + ex.drill_steps * a.drills_per_month)
            * a.step_ms
            / 1000
            * step_gb,
            p.lambda_gb_s_arm,
            "assumed duration",
        ),
    ]
    return lines


def _operations(m: _Month) -> list[Line]:
    """What runs regardless of failures: metrics, alarms, logs, traces, alerts, secrets, the probes' traffic."""
    p, w, a, counts, rounds, probe_calls, agent_events = (
        m.p,
        m.w,
        m.a,
        m.counts,
        m.rounds,
        m.probe_calls,
        m.agent_events,
    )
    path, lines = counts.basis, list[Line]()
    metrics = custom_metrics(w)
    lines += [
        Line("CloudWatch", f"custom metrics: {metrics_description(w)}", metrics, p.custom_metric, "config"),
        Line("CloudWatch", "alarms (infra/dcwatch_infra/monitoring.py)", w.alarms, p.alarm, "config"),
        Line("CloudWatch", "dashboard", 1, p.dashboard, "config"),
        Line(
            "CloudWatch",
            "logs: Lambda lines, probe rounds, EMF metric records",
            log_gb(w, counts, a),
            p.log_ingestion,
            "assumed bytes per record",
        ),
    ]
    invocations = probe_calls + counts.evaluator_invocations * rounds + agent_events
    lines.append(
        Line(
            "X-Ray",
            "traces (default sampling: 1 a second + 5 % of the rest)",
            _xray_traces(invocations / MONTH_S),
            p.xray_trace,
            path,
        )
    )
    lines += [
        Line("SNS", f"alert emails ({a.alerts_per_month:g} a month)", a.alerts_per_month, p.sns_email, "assumed"),
        Line("KMS", "the alerts topic's key", 1, p.kms_key, "config"),
        Line("Secrets Manager", "secrets (vCenter credentials, heartbeat key)", w.secrets, p.secret, "config"),
        Line(
            "Secrets Manager",
            f"reads (a warm probe reads each again after {a.secret_cache_s:g} s)",
            sum(v.vcenter_sites for v in w.vantages) * MONTH_S / a.secret_cache_s,
            p.secret_calls,
            "config",
        ),
    ]
    out_checks = sum(v.checks for v in w.vantages if not v.in_vpc) + sum(
        v.public_checks for v in w.vantages if v.in_vpc
    )
    lines.append(
        Line(
            "Data transfer",
            "probe requests to the sites' public endpoints",
            out_checks * rounds * a.check_bytes_out / GB,
            p.transfer_out_gb,
            "assumed bytes per check",
        )
    )
    return lines


def _network(m: _Month) -> tuple[list[Line], list[str]]:
    """A VPC's NAT gateway and its data, and what interface endpoints would cost instead."""
    p, w, a, counts, rounds, lines = m.p, m.w, m.a, m.counts, m.rounds, list[Line]()
    notes: list[str] = []
    if w.in_vpc:
        nat_checks = sum(v.public_checks for v in w.vantages if v.in_vpc)
        # The VPC probe's share of the round's events leaves through the NAT (no events endpoint assumed).
        vpc_share = sum(v.checks for v in w.vantages if v.in_vpc) / max(1, w.checks)
        vpc_events = counts.event_bytes * vpc_share
        lines += [
            Line(
                "VPC",
                f"NAT gateway ({a.nat_gateways}; the stack creates none, the VPC needs one)",
                a.nat_gateways * 730,
                p.nat_hour,
                "assumed",
            ),
            Line(
                "VPC",
                "NAT data: the VPC probe's public checks and its events",
                (nat_checks * a.check_bytes_nat + vpc_events) * rounds / GB,
                p.nat_gb,
                "assumed bytes per check",
            ),
        ]
        interface = [api for api in w.vpc_apis if api not in ("dynamodb", "route53")]
        endpoints = len(interface)
        notes.append(
            f"VPC: instead of NAT for the AWS APIs, {endpoints} interface endpoints ({', '.join(interface)}) in "
            f"{w.subnets} AZs would cost {p.endpoint_hour.cost(endpoints * w.subnets * 730):.2f} USD a month; a NAT "
            "gateway is still needed while the VPC probe checks public endpoints. If the VPC already has a NAT "
            "gateway, only its data is dcwatch's."
        )
    return lines, notes


def _failover_note(m: _Month) -> str:
    p, a, ex, step_gb = m.p, m.a, m.w.executions, m.step_gb
    per_failover = (
        p.state_transition.cost(ex.failover_transitions)
        + p.lambda_request.cost(ex.failover_steps)
        + p.lambda_gb_s_arm.cost(ex.failover_steps * a.step_ms / 1000 * step_gb)
    )
    return f"one failover costs {per_failover:.4f} USD in Step Functions and Lambda ({ex.basis})"


def custom_metrics(w: Workload) -> int:
    """Metric series `dcwatch.observability` keeps alive: success and latency per site and vantage point, per
    check (probe.check_metrics), results received per vantage point. Lost results and detection times exist
    only in the hours they happen."""
    pairs = sum(1 for v in w.vantages for _, n in v.checks_by_site if n)
    # Per-check metrics carry site and check, no vantage point: one series per endpoint (one per Route 53 row).
    return 2 * pairs + (2 * len(w.route53) if w.check_metrics else 0) + len(w.vantages)


def metrics_description(w: Workload) -> str:
    return "2 per site and vantage, " + ("2 per check, " if w.check_metrics else "") + "1 per vantage"


def log_gb(w: Workload, counts: RoundCounts, a: Assumptions = ASSUMED) -> float:
    rounds = rounds_per_month(w.interval_s)
    probe_calls = len(w.vantages) * MONTH_S / schedule_period_s(w.interval_s)
    per_round = counts.evaluator_invocations * a.log_bytes_per_invocation
    for v in w.vantages:
        sites = sum(1 for _, n in v.checks_by_site if n)
        per_round += a.probe_round_log_bytes + sites * a.site_emf_bytes + v.checks * a.site_emf_result_bytes
        per_round += v.checks * a.check_emf_bytes if w.check_metrics else 0
    return (per_round * rounds + probe_calls * a.log_bytes_per_invocation) / GB
