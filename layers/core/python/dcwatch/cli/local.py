"""The local runtime's commands: the demo and the scenario matrix."""

from __future__ import annotations

import argparse


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
