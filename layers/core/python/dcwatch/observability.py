"""Logger, metrics and tracer for every handler (Powertools: JSON logs, EMF metrics, X-Ray).

The metric names and dimensions below are a contract with the stack's alarms and dashboard
(`infra/dcwatch_infra/monitoring.py`): change them together.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit, single_metric

from dcwatch.events import ProbeResult

SERVICE = "dcwatch"
# CDK sets Powertools' namespace variable to `dcwatch/<deployment>`, so pairs of sites in one account stay apart.
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or SERVICE

CHECK_SUCCEEDED = "CheckSucceeded"  # 1 or 0 per result; its average is the share of checks passing
CHECK_LATENCY = "CheckLatency"  # milliseconds per result
PROBE_RESULTS_RECEIVED = "ProbeResultsReceived"  # per vantage, counted by the evaluator: the watchdog's input
PROBE_RESULTS_LOST = "ProbeResultsLost"  # per vantage, counted by the probe: results the bus kept refusing
PROBE_ROUNDS_REFUSED = "ProbeRoundsRefused"  # rounds the evaluator did not believe (`dcwatch.detection.trust`), logged
DETECTION_TIME = "DetectionTime"  # seconds from the site's first failed observation to the DOWN decision
NOTIFY_FAILED = "NotifyFailed"  # per step (Notify, NotifyFailure): an outcome's notification failed every retry

Handler = TypeVar("Handler", bound=Callable[..., Any])


def tracing_on(env: Mapping[str, str] | None = None) -> bool:
    """Powertools' rule: traced in Lambda (LAMBDA_TASK_ROOT) unless POWERTOOLS_TRACE_DISABLED or a local emulator."""
    env = os.environ if env is None else env
    disabled = env.get("POWERTOOLS_TRACE_DISABLED", "false").lower() in ("1", "true", "yes", "on", "y")
    return bool(env.get("LAMBDA_TASK_ROOT")) and not disabled and not env.get("AWS_SAM_LOCAL")


class LazyTracer:
    """Powertools' Tracer, built on the first traced call and only where tracing is on.

    Building a Tracer imports the X-Ray SDK, whose recorder creates two botocore clients at import
    (0.3-0.5 s of a cold start on a fraction of a vCPU), even when the tracer is then disabled.
    """

    def __init__(self, **options: Any):
        self._options = options
        self._tracer: Tracer | None = None

    @property
    def disabled(self) -> bool:
        return not tracing_on()

    def tracer(self) -> Tracer:
        if self._tracer is None:
            self._tracer = Tracer(**self._options)
        return self._tracer

    def capture_lambda_handler(self, handler: Handler) -> Handler:
        traced: list[Callable[..., Any]] = []

        @functools.wraps(handler)
        def run(event: Any, context: Any) -> Any:
            if not tracing_on():
                return handler(event, context)
            if not traced:
                traced.append(self.tracer().capture_lambda_handler(handler))
            return traced[0](event, context)

        return run  # type: ignore[return-value]


logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# Disabled outside Lambda (no LAMBDA_TASK_ROOT), so local runs and tests need no X-Ray daemon. Only the AWS
# SDK is patched: a subsegment per HTTP check or vCenter call would swamp the trace.
tracer = LazyTracer(service=SERVICE, patch_modules=("botocore",))


def _emit(dimensions: Mapping[str, str], values: Iterable[tuple[str, MetricUnit, float]]) -> None:
    """One EMF record (or more past 100 values) with exactly these dimensions besides `service`."""
    record = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    for dimension, text in dimensions.items():
        record.add_dimension(name=dimension, value=text)
    for name, unit, value in values:
        record.add_metric(name=name, unit=unit, value=value)
    record.flush_metrics()


def _check_values(results: Iterable[ProbeResult]) -> list[tuple[str, MetricUnit, float]]:
    values: list[tuple[str, MetricUnit, float]] = []
    for result in results:
        values.append((CHECK_SUCCEEDED, MetricUnit.Count, 1 if result.ok else 0))
        values.append((CHECK_LATENCY, MetricUnit.Milliseconds, result.latency_ms))
    return values


def record_probe_results(results: list[ProbeResult], *, per_check: bool) -> None:
    """Success and latency by site and vantage (per-site health) and, when `per_check`, by site and check."""
    by_site: dict[tuple[str, str], list[ProbeResult]] = {}
    for result in results:
        by_site.setdefault((result.site, result.vantage), []).append(result)
    for (site, vantage), site_results in by_site.items():
        _emit({"site": site, "vantage": vantage}, _check_values(site_results))
    if per_check:
        for result in results:
            _emit({"site": result.site, "check": result.check}, _check_values([result]))


def _one(name: str, unit: MetricUnit, value: float, dimensions: dict[str, str]) -> None:
    """One metric, flushed at once (EMF), with the service dimension every dcwatch metric carries."""
    with single_metric(
        name=name, unit=unit, value=value, namespace=NAMESPACE, default_dimensions={"service": SERVICE, **dimensions}
    ):
        pass


def record_results_received(vantage: str, count: int) -> None:
    """Counted on arrival at the evaluator (a round's results at once), so the watchdog sees the whole path:
    schedule, probe, bus, rule, queue. Refused rounds do not count: a forger cannot hide a silent probe."""
    _one(PROBE_RESULTS_RECEIVED, MetricUnit.Count, count, {"vantage": vantage})


def record_refused() -> None:
    """No dimension: what a refused round claims (its vantage, its site) is no one's to choose a metric by."""
    _one(PROBE_ROUNDS_REFUSED, MetricUnit.Count, 1, {})


def record_results_lost(vantage: str, count: int) -> None:
    """Results the probe could not put on the bus: the evaluator never sees them, so the probe counts them."""
    _one(PROBE_RESULTS_LOST, MetricUnit.Count, count, {"vantage": vantage})


def record_detection(site: str, seconds: float) -> None:
    _one(DETECTION_TIME, MetricUnit.Seconds, seconds, {"site": site})


def record_notify_failed(step: str) -> None:
    """Nobody was told of a recovery's outcome (SNS kept failing): the alarm on this is how they learn."""
    _one(NOTIFY_FAILED, MetricUnit.Count, 1, {"step": step})
