"""What a deployment costs in AWS per month, and what the same checks would cost as Route 53 health checks.

Pure: a `Workload` (`deployment`: from a config, or synthetic: N checks at an interval from V vantage points)
and the per-round counts of the event path (`rounds.RoundCounts`) go in, priced lines come out (`bill`). Every
price is a us-east-1 list price without free tiers, in `prices.PRICES` with its source; every figure that is not
read from the config is an assumption in `assumptions.Assumptions` or `RoundCounts`, and each line says which it
rests on. docs/cost.md writes the formula out.
"""

from dcwatch.cost.bill import CostTable, Line, monthly_cost
from dcwatch.cost.deployment import synthetic_workload, workload_from_config
from dcwatch.cost.report import describe, report
from dcwatch.cost.rounds import RoundCounts, per_result_counts, round_counts
from dcwatch.cost.route53 import route53_cost
from dcwatch.cost.transitions import PathError, typical_path, walk
from dcwatch.cost.workload import Workload, schedule_period_s

__all__ = [
    "CostTable",
    "Line",
    "PathError",
    "RoundCounts",
    "Workload",
    "describe",
    "monthly_cost",
    "per_result_counts",
    "report",
    "round_counts",
    "route53_cost",
    "schedule_period_s",
    "synthetic_workload",
    "typical_path",
    "walk",
    "workload_from_config",
]
