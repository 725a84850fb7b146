"""The local runtime's commands: the demo, the scenario matrix, the playground (`up`) and its faults by hand."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from dcwatch.cli.common import UsageError


def _demo(args: argparse.Namespace) -> int:
    from dcwatch.local.demo import DEMO_CONFIG, Scenario, run_demo
    from dcwatch.local.scenario import config_path, load_scenario

    if args.scenario:
        spec = load_scenario(args.scenario)
        path = args.config or config_path(spec, DEMO_CONFIG)
        report = run_demo(path, args.report, Scenario(name=spec.name, steady_s=args.steady, spec=spec))
        return 0 if report["verdict"]["passed"] else 1
    report = run_demo(args.config or DEMO_CONFIG, args.report, Scenario(steady_s=args.steady))
    summary = report["summary"]
    ok = summary["service_restored_at"] is not None and summary["false_failovers"] == 0 and not summary["errors"]
    return 0 if ok else 1


def _scenarios(args: argparse.Namespace) -> int:
    from dcwatch.local.matrix import load_matrix, run_matrix, table, write_report

    reports = run_matrix(load_matrix(args.files or None, args.only), verbose=args.verbose, config=args.config)
    print()
    print("\n".join(table(reports)))
    if args.report:
        write_report(reports, args.report)
        print(f"report written to {args.report}")
    failed = [r["verdict"]["scenario"] for r in reports if not r["verdict"]["passed"]]
    print(
        f"{len(reports) - len(failed)} of {len(reports)} scenarios as expected"
        + (f"; not: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


FAULT_HELP = """Inject a fault into the `dcwatch up` running for --run-dir, as a scenario step would (the same code
applies it): exit 0 once applied, 2 when no `up` runs or the fault names a site, service or vantage point the
config does not have, 1 when applying it failed. `heal` heals links only; `revive-site` brings a killed site's
power back (its vCenter with its VMs off, its agent), so that a failback can be tried."""


def _fault_step(args: argparse.Namespace) -> dict[str, Any]:
    """The scenario step (`dcwatch.local.scenario.spec.Step`) the command line names."""
    if args.fault in ("kill-site", "revive-site", "vcenter-down"):
        return {args.fault.replace("-", "_"): args.site}
    if args.fault in ("stop-service", "start-service"):
        return {args.fault.replace("-", "_"): {"site": args.site, "service": args.service}}
    if args.fault == "cut-link":
        mode = "blackhole" if args.blackhole else "refuse"
        return {"cut": {"from": args.vantage, "site": args.site, "path": args.path, "mode": mode}}
    heal: dict[str, Any] = {"from": args.vantage} if args.vantage else {}
    return {"heal": {**heal, **({"between": args.between} if args.between else {})}}


def _run_dir(args: argparse.Namespace) -> Path:
    from dcwatch.local.up import RUN_DIR, UP_DIR_ENV

    return Path(args.run_dir or os.environ.get(UP_DIR_ENV) or RUN_DIR)


def _fault(args: argparse.Namespace) -> int:
    from dcwatch.local.fault_channel import FaultFailed, FaultRefused, UpNotRunning, send_fault

    try:
        applied = send_fault(_run_dir(args), _fault_step(args))
    except (UpNotRunning, FaultRefused) as exc:
        raise UsageError(str(exc)) from None
    except FaultFailed as exc:
        print(f"dcwatch: the fault could not be applied: {exc}", file=sys.stderr)
        return 1
    for text in applied:
        print(f"applied: {text}")
    return 0


def _up(args: argparse.Namespace) -> int:
    from dcwatch.local.demo import DEMO_CONFIG
    from dcwatch.local.up import AlreadyUp, run_up

    if args.run_for is not None and args.run_for <= 0:
        raise UsageError("--run-for takes a number of seconds above 0")
    try:
        return run_up(args.config or DEMO_CONFIG, _run_dir(args), args.run_for)
    except AlreadyUp as exc:
        raise UsageError(str(exc)) from None
