"""The probe engine and blackbox_exporter, side by side on the same loopback targets.

Rounds alternate (ours, then blackbox_exporter) so that neither competes with the other for the
two cores; the target server runs in its own process for the whole run. Every round is verified:
exactly the slow targets fail, and each of them only after its timeout, or the figures are refused.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.blackbox import DEFAULT_BINARY, Exporter, probe_all
from dcwatch.adapters.probers import probe_round
from dcwatch.config import HttpCheck
from dcwatch.detection.checks import PlannedCheck

OURS = "dcwatch"
BLACKBOX = "blackbox_exporter"


@dataclass(frozen=True)
class Settings:
    targets: int = 1000
    concurrency: int = 200
    latency_ms: float = 20.0
    timeout_s: float = 2.0
    rounds: int = 3
    slow_fraction: float = 0.05
    deadline_s: float = 10.0
    exporter: Path = DEFAULT_BINARY


@dataclass
class Round:
    side: str
    seconds: float
    cpu_s: float
    latencies_ms: list[float]
    failed: set[int]
    reasons: set[str] = field(default_factory=set)
    exporter_cpu_s: float = 0.0


@dataclass
class Targets:
    urls: list[str]
    slow: set[int]


@contextmanager
def target_server(settings: Settings) -> Iterator[Targets]:
    """The targets in their own process; it stops when we leave, on error and on Ctrl-C too."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.targets",
            f"--targets={settings.targets}",
            f"--latency-ms={settings.latency_ms}",
            f"--slow-fraction={settings.slow_fraction}",
            f"--slow-s={settings.timeout_s + 2}",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the target server exited with {process.wait()} before listening")
        started = json.loads(line)
        yield Targets(
            [f"http://127.0.0.1:{port}/t/{i}" for i, port in enumerate(started["ports"])], set(started["slow"])
        )
    finally:
        if process.stdin:
            process.stdin.close()  # the server stops when its stdin closes
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def engine_checks(urls: list[str], timeout_s: float) -> list[PlannedCheck]:
    """What the probe function plans for a site of HTTP checks: status 200 within the timeout."""
    checks = []
    for i, url in enumerate(urls):
        spec = HttpCheck(name=f"t{i}", url=url, timeout_s=timeout_s)
        checks.append(PlannedCheck("bench", spec.name, None, True, timeout_s, spec))
    return checks


def no_credentials(secret: str) -> None:
    raise LookupError(f"the benchmark has no secret {secret!r}")


def engine_round(checks: list[PlannedCheck], settings: Settings, number: int) -> Round:
    cpu, started = time.process_time(), time.perf_counter()
    results = probe_round(
        checks,
        no_credentials,  # type: ignore[arg-type]
        concurrency=settings.concurrency,
        vantage="bench",
        round_id=f"bench-{number}",
        deadline_s=settings.deadline_s,
    )
    seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    failed = {i for i, result in enumerate(results) if not result.ok}
    return Round(OURS, seconds, cpu_s, [r.latency_ms for r in results], failed, {r.reason for r in results if not r.ok})


def blackbox_round(exporter: Exporter, urls: list[str], settings: Settings) -> Round:
    """The exporter's CPU and its driver's both count: Prometheus would spend the driver's part."""
    cpu, exporter_cpu, started = time.process_time(), exporter.cpu_s(), time.perf_counter()
    answers = asyncio.run(probe_all(exporter.url, urls, settings.concurrency, settings.timeout_s))
    seconds = time.perf_counter() - started
    exporter_cpu = exporter.cpu_s() - exporter_cpu
    failed = {i for i, (ok, _) in enumerate(answers) if not ok}
    latencies = [latency for _, latency in answers]
    driver_cpu = time.process_time() - cpu
    return Round(BLACKBOX, seconds, driver_cpu + exporter_cpu, latencies, failed, {"probe_success 0"}, exporter_cpu)


def problems(rounds: list[Round], targets: Targets, timeout_s: float) -> list[str]:
    """Why the figures would be dishonest: other targets failed, or the slow ones did not cost their timeout."""
    found = []
    for number, one in enumerate(rounds):
        name = f"round {number // 2 + 1} of {one.side}"
        if one.failed != targets.slow:
            unexpected, missed = sorted(one.failed - targets.slow), sorted(targets.slow - one.failed)
            found.append(f"{name}: unexpected failures {unexpected[:10]}, slow targets that passed {missed[:10]}")
        early = [i for i in targets.slow if one.latencies_ms[i] < timeout_s * 1000 * 0.95]
        if early:
            found.append(f"{name}: slow targets {early[:10]} failed before the {timeout_s:g} s timeout")
        if one.side == OURS and any(not reason.startswith("timeout after") for reason in one.reasons):
            found.append(f"{name}: failure reasons {sorted(one.reasons)[:5]}")
    return found


def run(settings: Settings) -> list[Round]:
    """Alternating rounds of both sides against one target server; every process stopped at the end."""
    rounds: list[Round] = []
    with target_server(settings) as targets, tempfile.TemporaryDirectory(prefix="dcwatch-bench-") as workdir:
        checks = engine_checks(targets.urls, settings.timeout_s)
        exporter = Exporter(settings.exporter, Path(workdir), settings.timeout_s).start()
        try:
            for number in range(1, settings.rounds + 1):
                rounds.append(engine_round(checks, settings, number))
                rounds.append(blackbox_round(exporter, targets.urls, settings))
        finally:
            exporter.stop()
        bad = problems(rounds, targets, settings.timeout_s)
    if bad:
        raise SystemExit("the benchmark's results are not honest figures:\n  " + "\n  ".join(bad))
    return rounds


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


@dataclass(frozen=True)
class Summary:
    side: str
    checks_per_s: float
    round_s: list[float]
    p50_ms: float
    p95_ms: float
    failures: list[int]
    cpu_ms_per_check: float
    exporter_cpu_ms_per_check: float


def summarise(rounds: list[Round], side: str) -> Summary:
    mine = [r for r in rounds if r.side == side]
    checks = sum(len(r.latencies_ms) for r in mine)
    latencies = [latency for r in mine for latency in r.latencies_ms]
    return Summary(
        side,
        checks / sum(r.seconds for r in mine),
        [r.seconds for r in mine],
        percentile(latencies, 50),
        percentile(latencies, 95),
        [len(r.failed) for r in mine],
        sum(r.cpu_s for r in mine) / checks * 1000,
        sum(r.exporter_cpu_s for r in mine) / checks * 1000,
    )


def report(settings: Settings, rounds: list[Round]) -> str:
    ours, theirs = summarise(rounds, OURS), summarise(rounds, BLACKBOX)
    lines = [
        f"{settings.targets} HTTP targets on loopback ({settings.latency_ms:g} ms latency, "
        f"{settings.slow_fraction:.0%} slow beyond the {settings.timeout_s:g} s timeout), "
        f"concurrency {settings.concurrency}, {settings.rounds} rounds each",
        f"{'':18} {'checks/s':>9} {'round s (each)':>22} {'p50 ms':>8} {'p95 ms':>8} {'CPU ms/check':>13}  failures",
    ]
    for s in (ours, theirs):
        each = " ".join(f"{x:.2f}" for x in s.round_s)
        lines.append(
            f"{s.side:18} {s.checks_per_s:9.0f} {each:>22} {s.p50_ms:8.1f} {s.p95_ms:8.1f} "
            f"{s.cpu_ms_per_check:13.2f}  {s.failures} (= the slow targets, verified)"
        )
    lines += [
        f"ratio dcwatch / blackbox_exporter: {ours.checks_per_s / theirs.checks_per_s:.2f}x checks/s, "
        f"{theirs.cpu_ms_per_check / ours.cpu_ms_per_check:.2f}x checks per CPU second; "
        f"slowest dcwatch round {max(ours.round_s):.2f} s",
        f"CPU of blackbox_exporter alone: {theirs.exporter_cpu_ms_per_check:.2f} ms/check "
        "(the rest is its Python driver, which plays Prometheus)",
    ]
    return "\n".join(lines)
