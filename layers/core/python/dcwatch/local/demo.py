"""`dcwatch demo`: the whole pipeline on one machine, a scripted outage, a timeline and a report.

Default scenario "site-outage": both sites run (vcsim + demo services, built from the config), probes
run on the schedule from every vantage point, then the active site's vCenter and services stop.
Detection, the failover workflow, DNS and the services at the standby are observed from outside, as a
customer would. `--scenario FILE` plays a scenario file (`dcwatch.local.scenario`) instead; `play`
(`dcwatch.local.runner`) is the one loop both the demo and the scenario matrix run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcwatch.config import load_config
from dcwatch.local.links import describe as describe_topology
from dcwatch.local.pipeline import LocalPipeline
from dcwatch.local.report import print_summary
from dcwatch.local.runner import play
from dcwatch.local.scenario.spec import Expect, ScenarioSpec, Step, check_against
from dcwatch.local.timeline import Timeline, console_writer, handler_logs_to
from dcwatch.observability import logger
from dcwatch.reports import recovery_record, render_report

DEMO_CONFIG = Path(__file__).with_name("demo.yaml")


SITE_OUTAGE = ScenarioSpec(
    name="site-outage",
    description="the active site goes dark: its vCenter and every service stop",
    proves="a dead active site is detected, failed over once, and served from the standby",
    steps=[Step(at=0, kill_site="active")],
    expect=Expect(failover=True, down=["active"]),
    max_s=90,
)


@dataclass(frozen=True)
class Scenario:
    """How the demo paces a scenario: `spec` is the timeline of faults (the site outage unless given)."""

    name: str = "site-outage"
    steady_s: float = 5.0
    deadline_s: float = 90.0
    settle_s: float = 5.0
    spec: ScenarioSpec | None = None

    @property
    def played(self) -> ScenarioSpec:
        return self.spec or SITE_OUTAGE.model_copy(update={"max_s": self.deadline_s})


def run_demo(
    config_path: str | Path = DEMO_CONFIG,
    report_path: str | Path | None = None,
    scenario: Scenario = Scenario(),
    out: Callable[[str], None] | None = None,
    log_path: str | Path = "dcwatch-demo.log",
) -> dict[str, Any]:
    """Run the scenario; handler logs and metrics (JSON) go to `log_path`, the timeline to `out`."""
    out = out or console_writer(sys.stdout)
    with open(log_path, "w", encoding="utf-8") as log, redirect_stdout(log), handler_logs_to(log):
        report = _run(str(Path(config_path).resolve()), scenario, out, Path(log_path).resolve().parent)
    print_summary(report, out)
    out(f"handler logs and metrics (JSON lines): {log_path}")
    if report_path:
        Path(report_path).write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        out(f"report written to {report_path}")
        if report["recoveries"]:
            html = Path(report_path).with_suffix(".html")
            target = load_config(config_path).workflow.rto_target_s
            html.write_text(render_report(report["recoveries"][-1], target), encoding="utf-8")
            out(f"HTML report of {report['recoveries'][-1]['incidentId']} written to {html}")
    return report


def _run(config_path: str, scenario: Scenario, out: Callable[[str], None], log_dir: Path) -> dict[str, Any]:
    timeline = Timeline(out)
    config = load_config(config_path)
    check_against(scenario.played, config)
    active, standby = config.active_site, config.other_site(config.active_site)
    out(f"dcwatch demo: {len(config.services)} services, {active} active, {standby} standby ({config_path})")
    for line in describe_topology(config.topology):
        out(line)
    out(f"scenario {scenario.played.name}: {scenario.played.description}")

    def built(site: str, vms: int) -> None:
        state = "on" if site == config.active_site else "off"
        timeline.add("site_built", f"{site}: vCenter {config.site(site).vcenter.url}, {vms} VMs {state}", site=site)

    with LocalPipeline(config_path, on_site_built=built, log_dir=log_dir) as pipeline:
        timeline.add("aws_ready", f"moto at {pipeline.cloud.endpoint}: bus, rules, table, topic, zone, state machine")
        report = play(pipeline, scenario.played, timeline, steady_s=scenario.steady_s, settle_s=scenario.settle_s)
        report["recoveries"] = _recoveries(pipeline, [e["name"] for e in report["summary"]["executions"]])
        return report


def _recoveries(pipeline: LocalPipeline, executions: list[str]) -> list[dict[str, Any]]:
    """The recovery record of each execution, as `dcwatch report` reads it (an evaluator's execution is named
    after its incident); an unreadable audit leaves the HTML report out, never the run."""
    records = []
    for name in executions:
        try:
            record = recovery_record(pipeline.store.audit(name))
        except Exception as exc:  # noqa: BLE001 - a report left out, not the outcome
            logger.warning("audit not read", execution=name, error=str(exc))
            continue
        records += [record] if record is not None else []
    return records
