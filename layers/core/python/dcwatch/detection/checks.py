"""Positive checks: which checks a round runs, and running them concurrently within deadlines.

The engine is transport-free: it takes an async `CheckRunner` (the adapters in
`dcwatch.adapters.probers` talk HTTP, TLS, TCP, DNS and vSphere) and turns outcomes into
`ProbeResult`s. Concurrency is bounded; a slow or hanging target costs only its own timeout; a
round has a deadline, and a check still running then is reported failed with reason `timeout`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from dcwatch.config import VCENTER_PREFIX, Config, DnsCheck, HttpCheck, TcpCheck, TlsCheck, VCenter
from dcwatch.events import ProbeResult
from dcwatch.topology import vcenter_check_name, vcenter_parts

CheckSpec = HttpCheck | TlsCheck | TcpCheck | DnsCheck | VCenter
VCENTER_CHECK = VCENTER_PREFIX
DEFAULT_CONCURRENCY = 200


@dataclass(frozen=True)
class PlannedCheck:
    site: str
    name: str
    service: str | None
    critical: bool
    timeout_s: float
    spec: CheckSpec
    part: str = ""

    @property
    def kind(self) -> str:
        return "vcenter" if isinstance(self.spec, VCenter) else self.spec.kind


@dataclass(frozen=True)
class Outcome:
    ok: bool
    reason: str = ""
    warning: bool = False


CheckRunner = Callable[[PlannedCheck], Awaitable[Outcome]]


def vcenter_checks(config: Config, site: str) -> list[PlannedCheck]:
    """The parts of the site's vCenter check that its config asks for; all judged from one read per round.

    Login, hosts, critical VMs and datastores are critical; triggered alarms only ever warn.
    """
    vcenter = config.site(site).vcenter
    return [
        PlannedCheck(site, vcenter_check_name(part), None, part != "alarms", vcenter.timeout_s, vcenter, part)
        for part in vcenter_parts(vcenter)
    ]


def vcenter_check(config: Config, site: str) -> PlannedCheck:
    return vcenter_checks(config, site)[0]


def site_checks(config: Config, site: str) -> list[PlannedCheck]:
    return [PlannedCheck(site, c.name, None, c.critical, c.timeout_s, c) for c in config.site(site).checks]


def service_checks(config: Config, site: str, services: Iterable[str] | None = None) -> list[PlannedCheck]:
    wanted = set(services) if services is not None else None
    return [
        PlannedCheck(site, check.name, service.name, check.critical, check.timeout_s, check)
        for service, at_site in config.services_at(site)
        if wanted is None or service.name in wanted
        for check in at_site.checks
    ]


def drill_checks(config: Config, site: str, services: Iterable[str] | None = None) -> list[PlannedCheck]:
    """The checks of a drill's clones (`drill.services[].checks`), as run from `site`'s side of the drill network."""
    wanted = set(services) if services is not None else None
    drilled = config.drill.services if config.drill else []
    return [
        PlannedCheck(site, check.name, d.name, check.critical, check.timeout_s, check)
        for d in drilled
        if wanted is None or d.name in wanted
        for check in d.checks
    ]


def plan_round(config: Config, vantage: str | None = None) -> list[PlannedCheck]:
    """Every check of both sites that `vantage` reaches (all of them when None): vCenter first, then site
    infrastructure, then the services."""
    planned: list[PlannedCheck] = []
    for site in config.sites:
        planned += vcenter_checks(config, site.name) + site_checks(config, site.name)
        planned += service_checks(config, site.name)
    if vantage is None:
        return planned
    runs = config.topology.vantage(vantage).runs
    return [check for check in planned if runs(check.site, check.name)]


def round_times(start: float, period_s: float, interval_s: float) -> list[float]:
    """When the rounds of one scheduled invocation run: on interval boundaries, within the period.

    Schedules fire at most once a minute; checking every 10 s means six aligned rounds per call.
    """
    if interval_s >= period_s:
        return [start]
    first = -(-start // interval_s) * interval_s
    times = []
    at = first
    while at < start + period_s:
        times.append(at)
        at += interval_s
    return times


async def run_round_async(
    checks: list[PlannedCheck],
    runner: CheckRunner,
    *,
    vantage: str,
    round_id: str,
    concurrency: int = DEFAULT_CONCURRENCY,
    deadline_s: float | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[ProbeResult]:
    """Run all checks, at most `concurrency` at once; every check yields exactly one result."""
    import asyncio  # here, not above: the workflow steps that only plan checks never load it (bench.imports)

    limit = asyncio.Semaphore(concurrency)
    round_started = time.perf_counter()
    observed: dict[int, datetime] = {}
    latency: dict[int, float] = {}

    async def one(index: int, check: PlannedCheck) -> Outcome:
        async with limit:
            observed[index] = clock()
            started = time.perf_counter()
            try:
                async with asyncio.timeout(check.timeout_s):  # no extra task per check, unlike wait_for
                    return await runner(check)
            except TimeoutError:
                return Outcome(False, f"timeout after {check.timeout_s:g} s")
            except Exception as exc:  # noqa: BLE001 - a crashing check is a failed check, never a lost one
                return Outcome(False, f"check error: {type(exc).__name__}: {exc}"[:200])
            finally:
                latency[index] = (time.perf_counter() - started) * 1000

    tasks = [asyncio.create_task(one(i, c)) for i, c in enumerate(checks)]
    done, pending = await asyncio.wait(tasks, timeout=deadline_s) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    late = f"timeout: round deadline of {deadline_s:g} s passed" if deadline_s is not None else "timeout"
    results = []
    for index, (task, check) in enumerate(zip(tasks, checks, strict=True)):
        outcome = task.result() if task in done else Outcome(False, late)
        results.append(
            ProbeResult(
                site=check.site,
                check=check.name,
                service=check.service,
                kind=check.kind,  # type: ignore[arg-type]
                critical=check.critical and not outcome.warning,
                ok=outcome.ok,
                reason=outcome.reason,
                latency_ms=round(latency.get(index, (time.perf_counter() - round_started) * 1000), 2),
                observed_at=observed.get(index) or clock(),
                vantage=vantage,
                round_id=round_id,
            )
        )
    return results


def run_round(checks: list[PlannedCheck], runner: CheckRunner, **options: object) -> list[ProbeResult]:
    """`run_round_async` for synchronous callers (handlers, workflow steps)."""
    import asyncio

    return asyncio.run(run_round_async(checks, runner, **options))  # type: ignore[arg-type]
