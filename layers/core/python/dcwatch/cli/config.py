"""Commands that read a config and print, touching nothing deployed: validate, schema, topology, cost."""

from __future__ import annotations

import argparse
import json
import sys

from dcwatch.cli.common import UsageError
from dcwatch.config import Config, config_schema, load_config


def _validate(args: argparse.Namespace) -> int:
    given = {path for path in (args.file, args.config) if path}
    if len(given) != 1:
        print("dcwatch config validate: name one config file, as FILE or as --config FILE", file=sys.stderr)
        return 2
    (path,) = given
    config = load_config(path)
    print(f"{path}: valid ({len(config.sites)} sites, {len(config.services)} services, active {config.active_site})")
    for warning in config.warnings.values():
        print(f"{path}: WARNING: {warning}", file=sys.stderr)
    return 0


def _topology(args: argparse.Namespace) -> int:
    """The deployed network as `dcwatch.topology` computes it: what CDK builds and the decision counts."""
    from dcwatch.topology import mermaid, prerequisites

    config = load_config(args.config)
    model = config.topology
    if args.mermaid:
        print(mermaid(model, [s.name for s in config.sites]), end="")
    elif args.json:
        document = model.as_dict() | {"prerequisites": dict(prerequisites(config, model))}
        print(json.dumps(document, indent=2))
    else:
        print(describe_topology(config), end="")
    return 0


def describe_topology(config: Config) -> str:
    """The topology for an operator: vantage points, endpoints by site and reach, placements, prerequisites."""
    from dcwatch.topology import in_vpc_functions, prerequisites

    model = config.topology
    lines = [
        f"topology of {config.name}: network {model.network or 'none'}, "
        f"secondary region {config.secondary_region or 'none'}",
        "vantage points:",
    ]
    for v in model.vantage_points:
        per_site = [f"{sum(1 for s, _ in v.checks if s == site.name)} at {site.name}" for site in config.sites]
        lines.append(f"  {v.name} ({v.placement.describe()}) runs {len(v.checks)} checks: {', '.join(per_site)}")
    lines.append("endpoints (check address <- vantage points that run it):")
    for site in config.sites:
        for reach in ("public", "private"):
            here = [e for e in model.endpoints if e.site == site.name and e.reach == reach]
            if here:
                lines.append(f"  {site.name}, {reach}:")
                lines += [
                    f"    {e.check} {e.address} <- {', '.join(model.runners(*e.key)) or 'nobody'}"
                    + ("" if e.critical else " (warning)")
                    for e in here
                ]
    if model.drill_endpoints:
        lines.append("drill checks (run by SiteSteps in a drill, against the clones; no vantage point runs them):")
        lines += [f"  {e.service}/{e.check} {e.address} at {e.site}, {e.reach}" for e in model.drill_endpoints]
    vpc = in_vpc_functions(model)
    outside = [key for key, placement in model.functions if not placement.in_vpc]
    lines += [f"functions in the VPC: {', '.join(vpc) or 'none'}", f"functions outside any VPC: {', '.join(outside)}"]
    lines.append("network prerequisites:")
    for placement, needs in prerequisites(config, model):
        lines.append(f"  {placement}:")
        lines += [f"    - {need}" for need in needs]
    return "\n".join(lines) + "\n"


def _cost(args: argparse.Namespace) -> int:
    """The monthly AWS cost of a config's deployment, or of a synthetic one (--checks), beside Route 53's."""
    from pathlib import Path

    from dcwatch.cost import RoundCounts, describe, report, synthetic_workload, workload_from_config
    from dcwatch.local.demo import DEMO_CONFIG

    if args.checks is not None:
        if args.config:
            raise UsageError("give --config or --checks, not both")
        workload = synthetic_workload(args.checks, args.interval or 10, args.vantages, check_metrics=args.check_metrics)
    else:
        path = args.config or str(DEMO_CONFIG)
        config = load_config(path)
        if args.interval is not None:
            config = config.model_copy(update={"probe": config.probe.model_copy(update={"interval_s": args.interval})})
        workload = workload_from_config(config, path if args.config else "the embedded demo config")
    counts = None
    if args.round_counts:
        counts = RoundCounts.from_json(Path(args.round_counts).read_text(encoding="utf-8"), args.round_counts)
    print(describe(report(workload, counts)), end="")
    return 0


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(config_schema(), indent=2))
    return 0
