"""`python -m bench.evaluation`: what one probe round costs the evaluator, the old design beside the new one.

In moto (`mock_aws`), with the real adapters: a generated config (`bench.scale`) of 10 to 5,000 checks seen
from 3 vantage points, in three phases: steady state (every check as usual: the active site's pass, the
standby's services are off), the outage round (the active site fails everything and the round that tips it
DOWN starts the failover) and a held-back outage (automation off: the DOWN site is judged again each round).

- old: each result its own event and its own evaluator invocation (`evaluator.evaluate`);
- new: one ProbeRound event per vantage point, site and chunk, through the FIFO queue in batches of 10, one
  invocation per batch, the batch's rounds sharing one read of each site (`evaluator.evaluate_round`), as a
  cold environment judges them;
- warm: the same in a warm environment, as Lambda keeps one: its copy of the sites' states is checked against
  each site's generation (one item) and read again only where another writer changed it (`RoundCache`).

Each phase starts from the same state, built by rounds of the new design. Counted per round: the evaluator's
wall time, its invocations, DynamoDB requests, items read and written, and PutEvents entries (botocore hooks
on the clients). Where the old design's round has more results than `--sample` / checks (at least 20), a
sample of that many is judged and the counts scaled to the round (marked `~`): its outage round reads every
check state per result, so judging all 15,000 results at 5,000 checks would take hours in moto. moto answers
a Query from the queried partition only, as DynamoDB does (`dcwatch.local.moto_server`), for both designs.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from moto import mock_aws

from bench.scale import scaled_config
from dcwatch.adapters.dynamodb import DynamoLeases, DynamoStateStore
from dcwatch.adapters.eventbridge import EventBridgePublisher
from dcwatch.adapters.sns import SnsNotifier
from dcwatch.adapters.stepfunctions import StepFunctionsStarter
from dcwatch.config import Config, parse_config
from dcwatch.detection.evaluator import evaluate, evaluate_round
from dcwatch.detection.round_cache import RoundCache
from dcwatch.events import PROBE_RESULT, ProbeResult, ProbeRound, probe_rounds, probe_source
from dcwatch.local.cloud import create_tables
from dcwatch.local.moto_server import make_reads_fast
from dcwatch.model import AutomationSwitch
from dcwatch.wiring import RULES

REGION = "us-east-1"
SIZES = (10, 100, 1000, 5000)
PHASES = ("steady", "outage", "held back")
DESIGNS = ("old", "new", "warm")  # per result; per round, each batch reading afresh; per round, a warm copy
BATCH = next(r.queue for r in RULES if r.queue is not None).batch_size  # type: ignore[union-attr]
_READS = {"Query": "Count", "Scan": "Count"}


@dataclass
class Meter:
    """Every AWS call made through the metered clients, by operation, with the items it read and wrote."""

    requests: Counter[str] = field(default_factory=Counter)
    items_read: int = 0
    items_written: int = 0
    entries: int = 0  # PutEvents entries
    on: bool = False

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-parameter-build.*.*", self._before)
        client.meta.events.register("after-call.*.*", self._after)
        return client

    def _before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        """The call's API parameters, before they are serialized (a retry is not counted again)."""
        if not self.on:
            return
        self.requests[model.name] += 1
        if model.name == "PutEvents":
            self.entries += len(params.get("Entries", []))
        if model.name == "BatchWriteItem":
            self.items_written += sum(len(v) for v in params.get("RequestItems", {}).values())

    def _after(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if not self.on or http_response.status_code != 200:
            return
        if model.name in _READS:
            self.items_read += int(parsed.get(_READS[model.name], 0))
        elif model.name == "GetItem" and parsed.get("Item"):
            self.items_read += 1
        elif model.name in ("PutItem", "UpdateItem", "DeleteItem"):
            self.items_written += 1

    @property
    def dynamodb(self) -> int:
        return sum(n for op, n in self.requests.items() if op not in ("PutEvents", "Publish", "StartExecution"))


@dataclass(frozen=True)
class Figures:
    design: str
    checks: int
    phase: str
    results: int
    wall_s: float
    invocations: float
    requests: float
    read: float
    written: float
    entries: float
    sampled: bool = False


class Bench:
    """One deployment in moto: the tables, bus, topic and state machine, and the evaluator's adapters."""

    def __init__(self, config: Config):
        self.config, self.meter = config, Meter()
        clients = {s: self.meter.attach(boto3.client(s, region_name=REGION)) for s in ("dynamodb", "events", "sns")}
        clients["stepfunctions"] = self.meter.attach(boto3.client("stepfunctions", region_name=REGION))
        tables = create_tables(clients["dynamodb"], "bench")
        clients["events"].create_event_bus(Name="bench-bus")
        topic = clients["sns"].create_topic(Name="bench-alerts")["TopicArn"]
        machine = clients["stepfunctions"].create_state_machine(
            name="bench-failover",
            definition='{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}',
            roleArn="arn:aws:iam::123456789012:role/bench",
        )["stateMachineArn"]
        self.store = DynamoStateStore(tables["State"], tables["Audit"], clients["dynamodb"])
        self.events = EventBridgePublisher("bench-bus", clients["events"])
        self.ports = (
            self.store,
            self.events,
            StepFunctionsStarter(machine, clients["stepfunctions"]),
            SnsNotifier(topic, clients["sns"]),
            DynamoLeases(tables["Locks"], clients["dynamodb"]),
        )
        self.cache = RoundCache(self.store, self.config.topology)  # the warm environment's
        self.round = 0
        self.t0 = datetime.now(UTC) - timedelta(hours=1)
        self.services = {
            (site, c.name): s.name for site in ("dc-a", "dc-b") for s, a in config.services_at(site) for c in a.checks
        }

    def now(self) -> datetime:
        return self.t0 + timedelta(seconds=self.round * self.config.probe.interval_s)

    def results(self, failing: str | None) -> list[ProbeResult]:
        """One round from every vantage point: the standby's services are off; `failing`'s checks all fail."""
        self.round += 1
        at, out = self.now(), []
        for vantage in self.config.topology.vantage_points:
            for site, check in sorted(vantage.checks):
                service = self.services.get((site, check))
                standby_service = site != self.config.active_site and service is not None
                ok = site != failing and not standby_service
                out.append(
                    ProbeResult(
                        site=site,
                        check=check,
                        service=service,
                        kind="vcenter" if service is None else "http",
                        critical=True,
                        ok=ok,
                        reason="" if ok else "connection refused",
                        latency_ms=3.0,
                        observed_at=at,
                        vantage=vantage.name,
                        round_id=f"r{self.round}-{vantage.name}",
                    )
                )
        return out

    def warm(self, results: Sequence[ProbeResult]) -> int:
        """The new design in a warm environment: its copy of the sites' states kept between invocations."""
        return self.new(results, warm=True)

    def new(self, results: Sequence[ProbeResult], warm: bool = False) -> int:
        """The new design: rounds published, judged in batches of the queue's size per vantage point; each batch
        reads the sites afresh, as a cold environment does (`warm`: checked against their generation)."""
        rounds = probe_rounds(results)
        self.events.publish_probe_results(results)
        by_vantage: dict[str, list[ProbeRound]] = {}
        for r in rounds:
            by_vantage.setdefault(r.vantage, []).append(r)
        invocations = 0
        for vantage_rounds in by_vantage.values():
            for n in range(0, len(vantage_rounds), BATCH):
                invocations += 1
                cache = self.cache.begin() if warm else RoundCache(self.store, self.config.topology)
                for r in vantage_rounds[n : n + BATCH]:
                    evaluate_round(r, self.config, *self.ports, clock=self.now, cache=cache)
        return invocations

    def old(self, results: Sequence[ProbeResult]) -> int:
        """Today's design: one event and one invocation per result."""
        entries = [
            self.events._entry(probe_source(r.vantage), PROBE_RESULT, r.model_dump_json(by_alias=True)) for r in results
        ]
        self.events.put(entries)
        for result in results:
            evaluate(result, self.config, *self.ports, clock=self.now)
        return len(results)


def measure(design: str, checks: int, phase: str, sample: int) -> Figures:
    config = parse_config(scaled_config(checks))
    make_reads_fast()  # a Query reads its partition, its answer is plain JSON (dcwatch.local.moto_server)
    with mock_aws():
        bench = Bench(config)
        active = config.active_site
        setup = bench.warm if design == "warm" else bench.new
        for _ in range(2):
            setup(bench.results(None))
        if phase == "held back":
            bench.store.set_automation(AutomationSwitch(False, "held back", "bench", bench.now()))
        before = config.thresholds.failures_to_down - 1 + (1 if phase == "held back" else 0)
        for _ in range(before if phase != "steady" else 0):
            setup(bench.results(active))
        results = bench.results(active if phase != "steady" else None)
        whole = design != "old" or len(results) <= sample
        judged = results if whole else results[:: math.ceil(len(results) / sample)]
        run: Callable[[Sequence[ProbeResult]], int] = {"old": bench.old, "new": bench.new, "warm": bench.warm}[design]
        bench.meter.on = True
        started = time.perf_counter()
        invocations = run(judged)
        wall = time.perf_counter() - started
        bench.meter.on = False
        m, scale = bench.meter, len(results) / len(judged)
        return Figures(
            design,
            checks,
            phase,
            len(results),
            wall * scale,
            invocations * scale,
            m.dynamodb * scale,
            m.items_read * scale,
            m.items_written * scale,
            m.entries * scale,
            sampled=scale > 1,
        )


def _n(value: float, sampled: bool) -> str:
    text = f"{value:,.0f}" if value >= 10 else f"{value:.3g}"
    return ("~" if sampled else "") + text


def table(figures: list[Figures]) -> str:
    head = (
        f"{'phase':<10} {'checks':>6} {'design':<4} {'results':>7} {'wall s':>8} {'invoc.':>8} {'DDB req':>9} "
        f"{'items read':>11} {'written':>8} {'PutEvents':>9}"
    )
    lines = [head, "-" * len(head)]
    for f in figures:
        s = f.sampled
        lines.append(
            f"{f.phase:<10} {f.checks:>6} {f.design:<4} {f.results:>7} {_n(f.wall_s, s):>8} {_n(f.invocations, s):>8} "
            f"{_n(f.requests, s):>9} {_n(f.read, s):>11} {_n(f.written, s):>8} {_n(f.entries, s):>9}"
        )
    return "\n".join(lines)


def growth(figures: list[Figures]) -> str:
    """Growth factor of each figure between successive sizes, per phase and design (linear = the size ratio)."""
    lines = ["growth between sizes (linear in checks = the checks ratio):"]
    for phase in PHASES:
        for design in DESIGNS:
            rows = sorted((f for f in figures if f.phase == phase and f.design == design), key=lambda f: f.checks)
            for a, b in zip(rows, rows[1:], strict=False):
                ratio = lambda x, y: f"{y / x:.1f}x" if x else "-"  # noqa: E731
                lines.append(
                    f"  {phase:<10} {design:<4} {a.checks:>5} -> {b.checks:<5} checks x{b.checks / a.checks:.0f}: "
                    f"wall {ratio(a.wall_s, b.wall_s)}, requests {ratio(a.requests, b.requests)}, "
                    f"read {ratio(a.read, b.read)}, written {ratio(a.written, b.written)}, "
                    f"invocations {ratio(a.invocations, b.invocations)}"
                )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[Figures]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument(
        "--sample", type=int, default=30_000, help="old design: results judged per round at most this / checks (>= 20)"
    )
    args = parser.parse_args(argv)
    figures = [
        measure(design, checks, phase, max(20, args.sample // checks))
        for phase in PHASES
        for checks in args.sizes
        for design in DESIGNS
    ]
    print(__doc__.splitlines()[0].split(": ", 1)[1])
    print(table(figures))
    print(growth(figures))
    return figures


if __name__ == "__main__":
    main()
