"""What a deployment costs in AWS per month, and what the same checks would cost as Route 53 health checks.

Pure: a `Workload` (from a config, or synthetic: N checks at an interval from V vantage points) and the
per-round counts of the event path (`RoundCounts`) go in, priced lines come out. Every price is a
us-east-1 list price without free tiers, in `PRICES` with its source; every figure that is not read from
the config is an assumption in `Assumptions` or `RoundCounts`, and each line says which it rests on.
docs/cost.md writes the formula out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from dcwatch.config import Config, HttpCheck, TcpCheck, TlsCheck
from dcwatch.events import ROUND_CHUNK
from dcwatch.topology import VANTAGE_PUBLIC, VANTAGE_VPC, aws_calls, in_vpc_functions, vantage_of_region
from dcwatch.wiring import FAILOVER_ASL, RULES, function, step

MONTH_S = 730 * 3600  # AWS prices a month as 730 hours
KB, GB = 1024, 1024**3
EVENT_CHUNK_BYTES = 64 * KB  # EventBridge PutEvents entries and SQS payloads are billed per 64 KB chunk
SQS_BATCH = 10  # the FIFO event source mapping's largest batch
SQS_LONG_POLL_S = 20  # the mapping's ReceiveMessage wait
READ_UNIT_BYTES = 4 * KB
WRITE_UNIT_BYTES = KB


@dataclass(frozen=True)
class Price:
    usd: float
    per: float  # units the price is for: 1e6 for "per million"
    unit: str
    source: str

    def describe(self) -> str:
        per = {1.0: "", 1e3: " per 1,000", 1e4: " per 10,000", 1e5: " per 100,000", 1e6: " per million"}[self.per]
        usd = f"{self.usd:.10f}".rstrip("0").rstrip(".")
        return f"${usd}{per} {self.unit}"

    def cost(self, quantity: float) -> float:
        return quantity * self.usd / self.per


# us-east-1 list prices, without free tiers. A source "x: ..." is aws.amazon.com/x/pricing; "read" = seen in
# copies of that page or of pricing guides quoting it on 2026-12-07; "known" = the long-standing list price, not
# found there (Route 53's health checks among them): check those before quoting a contract.


@dataclass(frozen=True)
class Prices:
    lambda_request: Price = Price(0.20, 1e6, "requests", "lambda: read 2026-12-07")
    lambda_gb_s_arm: Price = Price(0.0000133334, 1, "GB-s (arm64)", "lambda: read 2026-12-07")
    custom_event: Price = Price(1.00, 1e6, "events (64 KB chunks)", "eventbridge: read 2026-12-07")
    archive_processed: Price = Price(0.10, 1, "GB archived", "eventbridge: read 2026-12-07")
    archive_stored: Price = Price(0.023, 1, "GB-month", "eventbridge: read 2026-12-07")
    scheduler: Price = Price(1.00, 1e6, "invocations", "eventbridge scheduler: read 2026-12-07")
    sqs_fifo: Price = Price(0.50, 1e6, "requests (64 KB chunks)", "sqs: read 2026-12-07")
    # On-demand throughput was halved on 2024-11-01 (from $1.25 and $0.25 per million).
    dynamodb_write: Price = Price(
        0.625, 1e6, "write request units", "dynamodb: read 2026-12-07, after the Nov 2024 cut"
    )
    dynamodb_read: Price = Price(0.125, 1e6, "read request units", "dynamodb: read 2026-12-07, after the Nov 2024 cut")
    state_transition: Price = Price(0.025, 1e3, "state transitions", "step-functions: read 2026-12-07")
    custom_metric: Price = Price(0.30, 1, "metrics per month (first 10,000)", "cloudwatch: read 2026-12-07")
    alarm: Price = Price(0.10, 1, "standard alarms per month", "cloudwatch: known")
    dashboard: Price = Price(3.00, 1, "dashboards per month", "cloudwatch: read 2026-12-07")
    log_ingestion: Price = Price(0.50, 1, "GB ingested", "cloudwatch: read 2026-12-07")
    xray_trace: Price = Price(5.00, 1e6, "traces recorded", "xray: known")
    sns_email: Price = Price(2.00, 1e5, "email notifications", "sns: known")
    kms_key: Price = Price(1.00, 1, "customer managed keys per month", "kms: known")
    secret: Price = Price(0.40, 1, "secrets per month", "secrets-manager: known")
    secret_calls: Price = Price(0.05, 1e4, "API calls", "secrets-manager: known")
    nat_hour: Price = Price(0.045, 1, "NAT gateway hours", "vpc: read 2026-12-07")
    nat_gb: Price = Price(0.045, 1, "GB through the NAT gateway", "vpc: read 2026-12-07")
    endpoint_hour: Price = Price(0.01, 1, "interface endpoint hours per AZ", "privatelink: read 2026-12-07")
    transfer_out_gb: Price = Price(0.09, 1, "GB out to the internet", "ec2 data transfer: read 2026-12-07")
    # Route 53 health checks, per health check and month (non-AWS endpoint: the sites are not in AWS).
    r53_check_aws: Price = Price(0.50, 1, "health checks of AWS endpoints", "route53: known")
    r53_check_other: Price = Price(0.75, 1, "health checks of non-AWS endpoints", "route53: known")
    r53_option_aws: Price = Price(1.00, 1, "optional features, AWS endpoint", "route53: known")
    r53_option_other: Price = Price(2.00, 1, "optional features, non-AWS endpoint", "route53: known")


PRICES = Prices()


@dataclass(frozen=True)
class Assumptions:
    """What the config does not say; each is printed beside the line it moves."""

    results_per_event: int = ROUND_CHUNK  # the round contract's chunk: up to this many results per event
    result_bytes: int = 300  # one result inside a round event
    event_envelope_bytes: int = 600
    strongly_consistent: bool = True  # the evaluator's Query reads consistently (what the last batch wrote)
    evaluator_base_ms: float = 150.0  # one round invocation of the evaluator, plus per result below
    evaluator_result_ms: float = 0.2
    per_result_evaluator_ms: float = 40.0  # the old design: one invocation per result
    probe_round_base_s: float = 1.0  # a round waits for its slowest check (timeouts are 1-5 s)
    probe_round_check_s: float = 0.002  # and costs CPU per check at 512 MB
    esm_pollers: int = 5  # Lambda's idle long-polling connections on the queue (fewer when quiet: up to 5)
    agent_report_ms: float = 100.0
    agent_report_bytes: int = 1600  # events/samples/SiteAgentReport.json
    step_ms: float = 1000.0  # one workflow step Lambda call
    boot_s: float = 120.0  # a priority group's VMs up at the standby (CheckGroup polls until then)
    dns_insync_s: float = 60.0  # Route 53 change to INSYNC
    drills_per_month: float = 1.0
    failovers_per_month: float = 0.0
    alerts_per_month: float = 50.0
    log_bytes_per_invocation: int = 800  # START/END/REPORT lines and one structured line
    probe_round_log_bytes: int = 600
    site_emf_bytes: int = 400  # one EMF record per site and vantage per round, plus per result below
    site_emf_result_bytes: int = 40
    check_emf_bytes: int = 450  # one EMF record per check per round (probe.check_metrics)
    check_bytes_out: int = 1 * KB  # a check's request and TLS handshake, leaving AWS
    check_bytes_nat: int = 6 * KB  # both directions of a check through a NAT gateway
    nat_gateways: int = 1
    secret_cache_s: float = 300.0  # dcwatch.adapters.secrets.MAX_AGE_S


ASSUMED = Assumptions()


@dataclass(frozen=True)
class VantageLoad:
    name: str
    in_vpc: bool
    checks_by_site: tuple[tuple[str, int], ...]
    public_checks: int  # of its checks, those reached over the internet (through the NAT inside the VPC)
    vcenter_sites: int = 0  # sites whose vCenter it logs in to (reads their secret)

    @property
    def checks(self) -> int:
        return sum(n for _, n in self.checks_by_site)


@dataclass(frozen=True)
class Route53Equivalent:
    """One check as a Route 53 health check, or why there is none."""

    check: str
    type: str | None  # HTTP, HTTPS, HTTP_STR_MATCH, HTTPS_STR_MATCH, TCP; None: Route 53 cannot check it
    note: str = ""

    @property
    def options(self) -> tuple[str, ...]:
        t = self.type or ""
        return tuple(o for o, on in (("HTTPS", t.startswith("HTTPS")), ("string matching", "STR_MATCH" in t)) if on)


@dataclass(frozen=True)
class Executions:
    """Step Functions transitions and step Lambda calls of one failover and one drill."""

    failover_transitions: int
    failover_steps: int
    drill_transitions: int
    drill_steps: int
    basis: str


@dataclass(frozen=True)
class Workload:
    name: str
    interval_s: int
    vantages: tuple[VantageLoad, ...]
    route53: tuple[Route53Equivalent, ...]
    check_metrics: bool
    sites: tuple[str, ...]
    secrets: int
    vpc_apis: tuple[str, ...]  # AWS APIs the functions inside the VPC call
    subnets: int
    alarms: int
    agents: int
    agent_renew_s: float
    executions: Executions
    source: str

    @property
    def checks(self) -> int:
        return sum(v.checks for v in self.vantages)

    @property
    def in_vpc(self) -> bool:
        return any(v.in_vpc for v in self.vantages) or bool(self.vpc_apis)


def schedule_period_s(interval_s: int) -> int:
    """The probe schedule's rate (infra `probe_rate_minutes`): once a minute at most, rounds inside."""
    return max(1, interval_s // 60) * 60


def rounds_per_month(interval_s: int) -> float:
    period = schedule_period_s(interval_s)
    return MONTH_S / (interval_s if interval_s < period else period)


def probe_invocation_s(interval_s: int, checks: int, a: Assumptions = ASSUMED) -> float:
    """A probe call sleeps between its rounds: billed from its start to its last round's end (mean over the
    start's offset within an interval: period - interval/2), plus the round itself."""
    period = schedule_period_s(interval_s)
    round_s = a.probe_round_base_s + a.probe_round_check_s * checks
    return round_s + (period - interval_s / 2 if interval_s < period else 0.0)


@dataclass(frozen=True)
class RoundCounts:
    """One probe round on the event path, summed over the vantage points: the one place the evaluation's
    shape enters the model. `round_counts` derives it from the round contract; the bench may replace it with
    what it measured (`from_json`)."""

    results: int
    putevents_entries: int
    event_chunks: int  # 64 KB chunks of those entries: billed by EventBridge, and by SQS on each send
    event_bytes: int
    evaluator_invocations: int
    evaluator_ms: float  # all invocations of the round together
    sqs_receive_chunks: int  # ReceiveMessage requests that carry data, in 64 KB chunks
    sqs_deletes: int  # DeleteMessageBatch requests
    dynamodb_reads: int  # requests: a warm evaluator's GetItem of a site's generation (the per-result design: none)
    dynamodb_read_units: float
    dynamodb_writes: int
    dynamodb_write_units: int
    queue: bool  # SQS FIFO between the bus and the evaluator
    basis: str

    @classmethod
    def from_json(cls, text: str, source: str) -> RoundCounts:
        """Measured figures (the keys are the field names); `basis` says where they were measured."""
        data: dict[str, Any] = json.loads(text)
        data.setdefault("queue", True)
        return cls(**{**data, "basis": f"measured ({source})"})


def _chunks(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


def round_counts(workload: Workload, a: Assumptions = ASSUMED) -> RoundCounts:
    """The round design of issue 13: per vantage point and site one event per chunk of results; the
    evaluator at most once per vantage point and round (one FIFO batch). Warm (Lambda keeps the environment
    between rounds 10 s to minutes apart), it reads per site the generation of its check states, one item,
    not the states themselves (`evaluator.RoundCache`); in steady state it writes the chunk's mark and claims
    a new generation, nothing else changed. A cold start's one read of every state is not counted."""
    entries = chunks = size = invocations = receives = reads = 0
    read_units, ms = 0.0, 0.0
    for v in workload.vantages:
        mine = 0
        for _, n in v.checks_by_site:
            if n == 0:
                continue
            for k in range(math.ceil(n / a.results_per_event)):
                in_chunk = min(a.results_per_event, n - k * a.results_per_event)
                entry = a.event_envelope_bytes + in_chunk * a.result_bytes
                entries, mine, size = entries + 1, mine + _chunks(entry, EVENT_CHUNK_BYTES), size + entry
            reads += 1  # the site's generation item (under 4 KB)
            read_units += 1.0 if a.strongly_consistent else 0.5
        calls = math.ceil(sum(math.ceil(n / a.results_per_event) for _, n in v.checks_by_site) / SQS_BATCH)
        chunks, invocations, receives = chunks + mine, invocations + calls, receives + max(calls, mine)
        ms += calls * a.evaluator_base_ms + a.evaluator_result_ms * v.checks
    return RoundCounts(
        results=workload.checks,
        putevents_entries=entries,
        event_chunks=chunks,
        event_bytes=size,
        evaluator_invocations=invocations,
        evaluator_ms=ms,
        sqs_receive_chunks=receives,
        sqs_deletes=invocations,
        dynamodb_reads=reads,
        dynamodb_read_units=read_units,
        dynamodb_writes=entries + reads,  # the chunks' marks, and each site's generation claimed
        dynamodb_write_units=entries + reads,
        queue=True,
        basis="assumed: issue 13's round design, a warm evaluator",
    )


def per_result_counts(workload: Workload, a: Assumptions = ASSUMED) -> RoundCounts:
    """The design before issue 13: each result its own event, its own evaluator invocation (EventBridge
    invokes it asynchronously) and one conditional write (`record_pass`) in steady state."""
    n = workload.checks
    entry = a.event_envelope_bytes + a.result_bytes
    return RoundCounts(
        results=n,
        putevents_entries=n,
        event_chunks=n * _chunks(entry, EVENT_CHUNK_BYTES),
        event_bytes=n * entry,
        evaluator_invocations=n,
        evaluator_ms=n * a.per_result_evaluator_ms,
        sqs_receive_chunks=0,
        sqs_deletes=0,
        dynamodb_reads=0,
        dynamodb_read_units=0.0,
        dynamodb_writes=n,
        dynamodb_write_units=n,
        queue=False,
        basis="the per-result design (code before issue 13): 1 event, 1 invocation, 1 write per result",
    )


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


def monthly_cost(
    workload: Workload, counts: RoundCounts, a: Assumptions = ASSUMED, prices: Prices = PRICES
) -> CostTable:
    """Every line of the monthly bill: `counts` per round times the rounds in a month, plus what runs
    regardless of the checks (the sleeping probe, alarms, metrics, the NAT gateway)."""
    p, w = prices, workload
    rounds = rounds_per_month(w.interval_s)
    period = schedule_period_s(w.interval_s)
    probe_calls = len(w.vantages) * MONTH_S / period
    probe_gb = function("Probe").memory_mb / 1024
    evaluate_gb = function("Evaluate").memory_mb / 1024
    step_gb = function(step("StartGroup").function).memory_mb / 1024
    path = counts.basis
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
    agent_events = w.agents * MONTH_S / w.agent_renew_s if w.agents else 0.0
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
    per_failover = (
        p.state_transition.cost(ex.failover_transitions)
        + p.lambda_request.cost(ex.failover_steps)
        + p.lambda_gb_s_arm.cost(ex.failover_steps * a.step_ms / 1000 * step_gb)
    )
    notes.append(f"one failover costs {per_failover:.4f} USD in Step Functions and Lambda ({ex.basis})")
    return CostTable(f"dcwatch {w.name}: monthly AWS cost ({counts.basis})", tuple(lines), tuple(notes))


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


def route53_cost(w: Workload, prices: Prices = PRICES) -> CostTable:
    """The same checks as Route 53 health checks of non-AWS endpoints: fast (10 s) when dcwatch checks more
    often than every 30 s, latency measurement when dcwatch keeps per-check latency metrics."""
    p = prices
    possible = [r for r in w.route53 if r.type]
    fast = w.interval_s < 30
    lines = [
        Line(
            "Route 53",
            f"health checks ({len(possible)} of {len(w.route53)} checks)",
            len(possible),
            p.r53_check_other,
            "config",
        )
    ]
    features: dict[str, int] = {}
    for r in possible:
        for option in (*r.options, *(("fast interval",) if fast else ()), *(("latency",) if w.check_metrics else ())):
            features[option] = features.get(option, 0) + 1
    for option, count in features.items():
        lines.append(Line("Route 53", f"optional feature: {option}", count, p.r53_option_other, "config"))
    cannot = [r for r in w.route53 if not r.type]
    notes = [f"Route 53 checks every 10 s at the fastest; dcwatch every {w.interval_s} s"] if w.interval_s < 10 else []
    if cannot:
        reasons = sorted({r.note for r in cannot})
        notes.append(f"{len(cannot)} checks have no Route 53 equivalent: {'; '.join(reasons)}")
    notes.append(
        "Route 53 checks each endpoint from its own checkers (one health check covers every region); "
        "the decision, the failover workflow and the alerts would still run (Step Functions lines above)"
    )
    return CostTable(
        f"the same checks as Route 53 health checks (non-AWS endpoints{', 10 s' if fast else ''})",
        tuple(lines),
        tuple(notes),
    )


# --- the failover workflow's transitions, walked through the ASL ---------------------------------------


class PathError(ValueError):
    """The typical path no longer fits the workflow's ASL: its states or choices changed."""


def walk(asl: Mapping[str, Any], choices: Mapping[str, Sequence[str]], caught: Iterable[str] = ()) -> list[str]:
    """The states one execution enters, from StartAt to an end: `choices` gives each Choice state's picks in
    order (each must be one of its targets), `caught` the Task states that fail into their Catch."""
    states, failing = asl["States"], set(caught)
    picks = {name: list(order) for name, order in choices.items()}
    name, path = asl["StartAt"], []
    for _ in range(10_000):
        state = states[name]
        path.append(name)
        if state["Type"] in ("Succeed", "Fail") or state.get("End"):
            return path
        if name in failing:
            name = state["Catch"][0]["Next"]
        elif state["Type"] == "Choice":
            targets = {c["Next"] for c in state["Choices"]} | {state.get("Default")}
            if not picks.get(name):
                raise PathError(f"{FAILOVER_ASL.name}: the path has no pick left for the choice {name}")
            name = picks[name].pop(0)
            if name not in targets:
                raise PathError(f"{FAILOVER_ASL.name}: {path[-1]} cannot go on to {name}; it goes to {sorted(targets)}")
        else:
            name = state["Next"]
    raise PathError(f"{FAILOVER_ASL.name}: the path runs past 10,000 states")


def typical_path(mode: str, groups: int, polls: int, dns_polls: int, *, approval: bool, fence: str) -> dict[str, Any]:
    """Picks for a run that succeeds: each group up after `polls` CheckGroups, DNS INSYNC after `dns_polls` CheckDns
    (each waits inside the step, up to `workflow.step_wait_s`).
    `fence` (a disaster): `lease` (proven after one wait), `storage` (proven at once) or `approval`."""
    group_done = []
    for g in range(groups):
        group_done += ["WaitForGroup"] * (polls - 1) + ["VerifyServices" if g == groups - 1 else "StartGroup"]
    choices: dict[str, list[str]] = {
        "IsDryRun": ["NeedsApproval"],
        "NeedsApproval": ["RequestApproval" if approval else "ChooseMode"],
        "IsApproved": ["Approved"],
        "ChooseMode": ["PrepareDrill" if mode == "drill" else "Fence"],
        "GroupDone": group_done,
        "DnsInSync": ["WaitForDns"] * (dns_polls - 1) + ["IsDrill"],
        "IsDrill": ["CleanUpDrill" if mode == "drill" else "RecordAudit"],
        "FenceProven": {"lease": ["WaitForFenceProof", "StartGroup"], "storage": ["StartGroup"]}.get(
            fence, ["RequestApprovalForFencing"]
        ),
        "IsFencingApproved": ["ApprovedWithoutFenceProof"],
    }
    return {"choices": choices, "caught": ["Fence"] if mode != "drill" else []}


def executions(config: Config | None, a: Assumptions = ASSUMED, *, groups: int = 3, wait_s: int = 20) -> Executions:
    """Transitions of a disaster failover (the failed site dead: Fence cannot reach it) and of a drill, walked
    through the ASL along the typical path; with a config, its groups, poll interval, fencing and approvals."""
    asl = json.loads(FAILOVER_ASL.read_text(encoding="utf-8"))
    fence, approvals, drill_groups = "approval", set(), groups
    if config is not None:
        standby = config.other_site(config.active_site)
        vms = [vm for s in config.services for vm in s.sites[standby].vms]
        groups, wait_s = len({vm.group for vm in vms}), config.workflow.step_wait_s
        drilled = {d.name for d in config.drill.services} if config.drill else set()
        drill_groups = len({vm.group for s in config.services if s.name in drilled for vm in s.sites[standby].vms})
        approvals = set(config.workflow.approval.modes)
        if config.fencing and config.fencing.agents:
            fence = "lease"
        elif any(s.storage and s.storage.fenced_when for s in config.sites):
            fence = "storage"
    # A CheckGroup or CheckDns waits inside the step for up to `wait_s`; the Wait loop spans only longer waits.
    polls, dns_polls = math.ceil(a.boot_s / wait_s), math.ceil(a.dns_insync_s / wait_s)
    paths = {}
    for mode, n in (("disaster", groups), ("drill", drill_groups)):
        spec = typical_path(mode, max(1, n), polls, dns_polls, approval=mode in approvals, fence=fence)
        paths[mode] = walk(asl, spec["choices"], spec["caught"])
    tasks = {name for name, s in asl["States"].items() if s["Type"] == "Task"}
    basis = (
        f"walked through {FAILOVER_ASL.name}: {groups} groups, {polls} CheckGroups each ({a.boot_s:g} s boots, "
        f"step_wait_s {wait_s}), {dns_polls} CheckDns; fence proof by {fence}"
    )
    return Executions(
        failover_transitions=len(paths["disaster"]),
        failover_steps=sum(1 for s in paths["disaster"] if s in tasks),
        drill_transitions=len(paths["drill"]),
        drill_steps=sum(1 for s in paths["drill"] if s in tasks),
        basis=basis,
    )


# --- workloads ----------------------------------------------------------------------------------------------


def route53_equivalent(check: str, spec: Any, reach: str) -> Route53Equivalent:
    if reach == "private":
        return Route53Equivalent(check, None, "private endpoints (Route 53's checkers reach only public ones)")
    if isinstance(spec, HttpCheck):
        https = spec.url.startswith("https")
        match = spec.body_contains is not None or spec.body_regex is not None or bool(spec.conditions)
        return Route53Equivalent(check, ("HTTPS" if https else "HTTP") + ("_STR_MATCH" if match else ""))
    if isinstance(spec, TlsCheck):
        return Route53Equivalent(check, "HTTPS", "certificate expiry is not checked")
    if isinstance(spec, TcpCheck):
        return Route53Equivalent(check, "TCP")
    if spec is None:
        return Route53Equivalent(check, None, "vCenter parts (hosts, datastores, alarms need its API)")
    return Route53Equivalent(check, "TCP", "a DNS answer is not checked")


def workload_from_config(config: Config, source: str, a: Assumptions = ASSUMED) -> Workload:
    """What the config deploys: its vantage points and the checks each runs (`dcwatch.topology`)."""
    model = config.topology
    specs: dict[tuple[str, str], Any] = {}
    for site in config.sites:
        specs.update({(site.name, c.name): c for c in site.checks})
        for service in config.services:
            specs.update({(site.name, c.name): c for c in service.sites[site.name].checks})
    vantages = []
    for v in model.vantage_points:
        by_site = tuple((s.name, sum(1 for site, _ in v.checks if site == s.name)) for s in config.sites)
        public = sum(1 for key in v.checks if model.endpoint(*key).reach == "public")
        vcenters = len({site for site, check in v.checks if check.startswith("vcenter")})
        vantages.append(VantageLoad(v.name, v.placement.in_vpc, by_site, public, vcenters))
    route53 = tuple(route53_equivalent(f"{e.check}@{e.site}", specs.get(e.key), e.reach) for e in model.endpoints)
    secrets = {s.vcenter.credentials_secret for s in config.sites}
    if config.fencing and config.fencing.secret_id:
        secrets.add(config.fencing.secret_id)
    vpc = in_vpc_functions(model)
    apis = tuple(sorted({api for key in vpc for api in aws_calls(config, key)}))
    agents = len(config.fencing.agents) if config.fencing else 0
    return Workload(
        name=config.name,
        interval_s=config.probe.interval_s,
        vantages=tuple(vantages),
        route53=route53,
        check_metrics=config.probe.check_metrics,
        sites=tuple(s.name for s in config.sites),
        secrets=len(secrets),
        vpc_apis=apis if vpc else (),
        subnets=len(config.network.subnet_ids) if config.network else 0,
        alarms=alarm_count([v.name for v in model.vantage_points], [v.placement.region for v in model.vantage_points]),
        agents=agents,
        agent_renew_s=config.fencing.renew_s if config.fencing else 0.0,
        executions=executions(config, a),
        source=source,
    )


def alarm_count(vantages: Sequence[str], regions: Sequence[str | None]) -> int:
    """Mirrors `infra/dcwatch_infra/monitoring.py`: per vantage point the watchdog, per probe in the home stack
    its errors and its lost results; the evaluator's errors, failed and timed-out failovers, ExecutionEnded,
    the two failed notifications (Notify, NotifyFailure);
    each rule's dead-letter queue (a queued rule's, or its async target's)."""
    home = sum(1 for region in regions if region is None)
    return len(vantages) + 2 * home + 6 + len(RULES)


def synthetic_workload(
    checks: int, interval_s: int, vantages: int, a: Assumptions = ASSUMED, *, check_metrics: bool = True
) -> Workload:
    """`checks` public HTTPS checks with a body match, half at each of two sites, every one run from each of
    `vantages` vantage points (aws-public, then aws-vpc, then aws-<second region>) as the issue's generated
    configs do; a VPC means a NAT gateway and the workflow's site steps inside it."""
    if not 1 <= vantages <= 3:
        raise ValueError(f"--vantages {vantages}: a deployment has 1 to 3 vantage points (public, VPC, second region)")
    if checks < 2:
        raise ValueError(f"--checks {checks}: at least one check per site")
    names = [VANTAGE_PUBLIC, VANTAGE_VPC, vantage_of_region("us-west-2")][:vantages]
    sites = ("dc-a", "dc-b")
    by_site = ((sites[0], checks - checks // 2), (sites[1], checks // 2))
    loads = tuple(VantageLoad(name, name == VANTAGE_VPC, by_site, checks) for name in names)
    route53 = tuple(Route53Equivalent(f"check-{i}", "HTTPS_STR_MATCH") for i in range(checks))
    vpc = vantages >= 2
    return Workload(
        name=f"{checks} checks every {interval_s} s from {vantages} vantage points",
        interval_s=interval_s,
        vantages=loads,
        route53=route53,
        check_metrics=check_metrics,
        sites=sites,
        secrets=2,  # the sites' vCenter credentials, which the workflow's steps read
        vpc_apis=("events", "secretsmanager", "xray") if vpc else (),
        subnets=2 if vpc else 0,
        alarms=alarm_count(names, [None, None, "us-west-2"][:vantages]),
        agents=0,
        agent_renew_s=0.0,
        executions=executions(None, a),
        source="synthetic",
    )


# --- the printed table ---------------------------------------------------------------------------------------


def format_table(table: CostTable) -> list[str]:
    lines = [table.title, f"  {'service':<15} {'what':<72} {'per month':>13}  {'list price':<42} {'USD':>8}  basis"]
    for line in table.lines:
        lines.append(
            f"  {line.service:<15} {line.item[:72]:<72} {line.quantity:>13,.0f}  {line.price.describe()[:42]:<42} "
            f"{line.usd:>8.2f}  {line.tag}"
        )
    lines.append(f"  {'total':<15} {'':<72} {'':>13}  {'':<42} {table.total:>8.2f}")
    lines += [f"  note: {note}" for note in table.notes]
    return lines


def compare(new: CostTable, old: CostTable) -> list[str]:
    """Service totals of the two designs side by side."""
    a, b = new.by_service(), old.by_service()
    lines = [f"  {'service':<16} {'round design':>14} {'per result':>12}"]
    for service in dict.fromkeys([*a, *b]):
        lines.append(f"  {service:<16} {a.get(service, 0.0):>14.2f} {b.get(service, 0.0):>12.2f}")
    lines.append(f"  {'total':<16} {new.total:>14.2f} {old.total:>12.2f}")
    return lines


@dataclass(frozen=True)
class Report:
    workload: Workload
    counts: RoundCounts
    new: CostTable
    old: CostTable
    route53: CostTable


def report(workload: Workload, counts: RoundCounts | None = None, a: Assumptions = ASSUMED) -> Report:
    counts = counts or round_counts(workload, a)
    old = per_result_counts(workload, a)
    return Report(
        workload,
        counts,
        monthly_cost(workload, counts, a),
        replace(monthly_cost(workload, old, a), title=f"dcwatch {workload.name}: the per-result design"),
        route53_cost(workload),
    )


def describe(r: Report) -> str:
    w, c = r.workload, r.counts
    out = [
        f"{w.name} ({w.source}): {w.checks} results per round from {len(w.vantages)} vantage points "
        f"({', '.join(v.name for v in w.vantages)}), every {w.interval_s} s = {rounds_per_month(w.interval_s):,.0f} "
        "rounds a month",
        f"per round ({c.basis}): {c.putevents_entries} PutEvents entries, {c.evaluator_invocations} evaluator calls, "
        f"{c.dynamodb_reads} reads ({c.dynamodb_read_units:g} RRU), {c.dynamodb_writes} writes",
        "prices: us-east-1 list prices without free tiers; sources in dcwatch/cost.py (PRICES)",
        "",
        *format_table(r.new),
        "",
        "the same deployment in the per-result design (each result its own event, evaluator call and write):",
        *compare(r.new, r.old),
        "",
        *format_table(r.route53),
    ]
    return "\n".join(out) + "\n"
