"""The same checks as Route 53 health checks: which check maps to which health check type, and their price."""

from __future__ import annotations

from typing import Any

from dcwatch.config import HttpCheck, TcpCheck, TlsCheck
from dcwatch.cost.bill import CostTable, Line
from dcwatch.cost.prices import PRICES, Prices
from dcwatch.cost.workload import Route53Equivalent, Workload


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
