"""Positive checks: which checks a round runs, and running them concurrently.

The engine is transport-free: it takes a `CheckRunner` (the adapters in `dcwatch.adapters` talk
HTTP and vSphere) and turns outcomes into `ProbeResult`s, so a hanging target costs only its own
timeout and every result says where, what and why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from dcwatch.config import Config, HttpCheck, VCenter
from dcwatch.events import ProbeResult

VCENTER_CHECK = "vcenter"
VCENTER_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class PlannedCheck:
    site: str
    name: str
    service: str | None
    critical: bool
    timeout_s: float
    spec: HttpCheck | VCenter

    @property
    def kind(self) -> str:
        return "vcenter" if isinstance(self.spec, VCenter) else "http"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    reason: str = ""


CheckRunner = Callable[[PlannedCheck], Outcome]


def vcenter_check(config: Config, site: str) -> PlannedCheck:
    return PlannedCheck(site, VCENTER_CHECK, None, True, VCENTER_TIMEOUT_S, config.site(site).vcenter)


def service_checks(config: Config, site: str, services: Iterable[str] | None = None) -> list[PlannedCheck]:
    wanted = set(services) if services is not None else None
    return [
        PlannedCheck(site, check.name, service.name, check.critical, check.timeout_s, check)
        for service, at_site in config.services_at(site)
        if wanted is None or service.name in wanted
        for check in at_site.checks
    ]


def plan_round(config: Config) -> list[PlannedCheck]:
    """Every check of both sites: vCenter first, then the services."""
    planned: list[PlannedCheck] = []
    for site in config.sites:
        planned.append(vcenter_check(config, site.name))
        planned.extend(service_checks(config, site.name))
    return planned


def run_round(
    checks: list[PlannedCheck],
    runner: CheckRunner,
    *,
    vantage: str,
    round_id: str,
    max_workers: int = 32,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[ProbeResult]:
    """Run all checks concurrently; a runner that raises is a failed check, never a lost one."""

    def one(check: PlannedCheck) -> ProbeResult:
        observed_at = clock()
        started = time.perf_counter()
        try:
            outcome = runner(check)
        except Exception as exc:  # noqa: BLE001 - a crashing check is a failed check
            outcome = Outcome(False, f"check error: {type(exc).__name__}: {exc}"[:200])
        latency_ms = (time.perf_counter() - started) * 1000
        return ProbeResult(
            site=check.site,
            check=check.name,
            service=check.service,
            kind=check.kind,  # type: ignore[arg-type]
            critical=check.critical,
            ok=outcome.ok,
            reason=outcome.reason,
            latency_ms=round(latency_ms, 2),
            observed_at=observed_at,
            vantage=vantage,
            round_id=round_id,
        )

    if not checks:
        return []
    with ThreadPoolExecutor(max_workers=min(max_workers, len(checks))) as pool:
        return list(pool.map(one, checks))
