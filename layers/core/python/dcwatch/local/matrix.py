"""`dcwatch scenarios`: the scenario matrix on one local runtime, judged, and printed as a table.

Scenarios that share a config share one pipeline (one moto server, one vcsim per site), reset
between them; each runs only until its outcome is decided, bounded by its `max_s`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from dcwatch.config import load_config
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.local.pipeline import LocalPipeline
from dcwatch.local.runner import play
from dcwatch.local.scenario.spec import ScenarioSpec, check_against, config_path, load_scenario, scenario_files
from dcwatch.local.timeline import Timeline, console_writer, handler_logs_to


def load_matrix(files: Iterable[str | Path] | None = None, only: Iterable[str] = ()) -> list[ScenarioSpec]:
    specs = [load_scenario(f) for f in (files if files is not None else scenario_files())]
    wanted = set(only)
    unknown = wanted - {s.name for s in specs}
    if unknown:
        raise KeyError(f"no scenario named {sorted(unknown)}; known: {sorted(s.name for s in specs)}")
    return [s for s in specs if not wanted or s.name in wanted]


def run_matrix(
    specs: list[ScenarioSpec],
    out: Callable[[str], None] | None = None,
    log_path: str | Path = "dcwatch-scenarios.log",
    verbose: bool = False,
    config: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Play every scenario (under `config` when given, else each one's own); one report each, in order."""
    console = sys.stdout
    out = out or console_writer(console)
    by_config: dict[Path, list[ScenarioSpec]] = {}
    for spec in specs:
        by_config.setdefault(Path(config) if config else config_path(spec, DEMO_CONFIG), []).append(spec)
    reports: list[dict[str, Any]] = []
    with open(log_path, "w", encoding="utf-8") as log, redirect_stdout(log), handler_logs_to(log):
        for path, group in by_config.items():
            loaded = load_config(path)
            for spec in group:
                check_against(spec, loaded)
            with LocalPipeline(path, log_dir=Path(log_path).resolve().parent) as pipeline:
                for n, spec in enumerate(group):
                    if n:
                        pipeline.reset()
                    out(f"scenario {spec.name}: {spec.description}")
                    timeline = Timeline(out if verbose else lambda line: None)
                    report = play(pipeline, spec, timeline)
                    verdict = report["verdict"]
                    out(f"  {'as expected' if verdict['passed'] else 'NOT as expected'}: {verdict['got']}")
                    for problem in verdict["problems"]:
                        out(f"  problem: {problem}")
                    reports.append(report)
    return reports


def detection_cell(verdict: dict[str, Any], summary: dict[str, Any]) -> str:
    """`4.89 s (floor 4 s)`: the DOWN decision after the fault, next to its physical floor; where AWS had to wait
    out the failed site's lease, also when the probes alone had it DOWN and what the lease cost beyond that:
    `10.35 s (floor 4 s; probes 3.9 s, lease +3.6 s)`."""
    if verdict["detection_s"] is None:
        return "-"
    cell = f"{verdict['detection_s']:.2f} s (floor {verdict['detection_floor_s']:g} s"
    cost, probes = summary.get("lease_cost_s"), summary.get("probe_detection_s")
    if cost is None:
        return cell + ")"
    return cell + (f"; probes {probes:.1f} s" if probes is not None else "") + f", lease +{cost:.1f} s)"


def table(reports: list[dict[str, Any]]) -> list[str]:
    """One row per scenario: expected, got, detection (floor; lease cost), both serving (s), false, missed, result."""
    rows = [("scenario", "expected", "got", "detection", "both serving (s)", "false", "missed", "result")]
    for report in reports:
        v = report["verdict"]
        rows.append(
            (
                v["scenario"],
                v["expected"],
                v["got"],
                detection_cell(v, report.get("summary", {})),
                f"{v.get('both_serving_s', 0.0):.2f}",
                str(v["false_failovers"]),
                str(v["missed_failovers"]),
                "pass" if v["passed"] else "FAIL",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return lines


def write_report(reports: list[dict[str, Any]], path: str | Path) -> None:
    rows = [r["verdict"] for r in reports]
    Path(path).write_text(json.dumps({"scenarios": rows, "runs": reports}, indent=2, default=str) + "\n", "utf-8")
