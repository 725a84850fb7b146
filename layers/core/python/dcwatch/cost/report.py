"""What `dcwatch cost` prints: the bill, the per-result design beside it, and Route 53's price."""

from __future__ import annotations

from dataclasses import dataclass, replace

from dcwatch.cost.assumptions import ASSUMED, Assumptions
from dcwatch.cost.bill import CostTable, monthly_cost
from dcwatch.cost.rounds import RoundCounts, per_result_counts, round_counts
from dcwatch.cost.route53 import route53_cost
from dcwatch.cost.workload import Workload, rounds_per_month


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
        "prices: us-east-1 list prices without free tiers; sources in dcwatch/cost/prices.py (PRICES)",
        "",
        *format_table(r.new),
        "",
        "the same deployment in the per-result design (each result its own event, evaluator call and write):",
        *compare(r.new, r.old),
        "",
        *format_table(r.route53),
    ]
    return "\n".join(out) + "\n"
