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
from dcwatch.local.demo import DEMO_CONFIG, Timeline, console_writer, handler_logs_to, play
from dcwatch.local.pipeline import LocalPipeline
from dcwatch.local.scenario import ScenarioSpec, check_against, config_path, load_scenario, scenario_files


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
            with LocalPipeline(path) as pipeline:
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


def table(reports: list[dict[str, Any]]) -> list[str]:
    """scenario | expected | got | detection (physical floor) | false | missed | result."""
    rows = [("scenario", "expected", "got", "detection", "false", "missed", "result")]
    for report in reports:
        v = report["verdict"]
        detection = (
            "-" if v["detection_s"] is None else f"{v['detection_s']:.2f} s (floor {v['detection_floor_s']:g} s)"
        )
        rows.append(
            (
                v["scenario"],
                v["expected"],
                v["got"],
                detection,
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
