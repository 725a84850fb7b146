"""The `dcwatch` command: validate configs, run the local demo and the scenario matrix, start a recovery
by hand (failover, migrate, drill, failback) and answer its approval, switch automation on or off,
open maintenance windows, acknowledge an incident.

Commands that touch state reach the deployed tables (stack outputs TableName, AuditTableName,
LocksTableName; or DCWATCH_TABLE_NAME, DCWATCH_AUDIT_TABLE_NAME, DCWATCH_LOCKS_TABLE_NAME) through
boto3's usual credentials and region; with AWS_ENDPOINT_URL set they reach the local runtime's moto.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from dcwatch.adapters.dynamodb import DynamoLeases
from dcwatch.config import Config, ConfigError, RecoveryMode, config_schema, load_config
from dcwatch.errors import ApprovalNotWaiting, InvalidRequest
from dcwatch.local.scenario import ScenarioError
from dcwatch.recovery.plan import build_plan, describe_plan
from dcwatch.recovery.request import MANUAL_PREFIX, leaving_site, parse_request

# Command -> the workflow's mode.
MODE_COMMANDS: dict[str, RecoveryMode] = {
    "failover": "disaster",
    "migrate": "migration",
    "drill": "drill",
    "failback": "failback",
}

EXIT_INVALID = 2


def _validate(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    print(
        f"{args.file}: valid ({len(config.sites)} sites, {len(config.services)} services, active {config.active_site})"
    )
    for warning in config.warnings.values():
        print(f"{args.file}: WARNING: {warning}", file=sys.stderr)
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
        checks = ", ".join(f"{check}@{site}" for site, check in sorted(v.checks))
        lines.append(f"  {v.name} ({v.placement.describe()}) runs {len(v.checks)} checks: {checks or 'none'}")
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


def _table(args: argparse.Namespace, option: str, env: str) -> str:
    name = getattr(args, option) or os.environ.get(env, "")
    if not name:
        raise UsageError(f"--{option.replace('_', '-')} (or {env}) is required: the stack output names it")
    return str(name)


def _store(args: argparse.Namespace) -> Any:
    from dcwatch.adapters.dynamodb import DynamoStateStore

    return DynamoStateStore(
        _table(args, "table", "DCWATCH_TABLE_NAME"), _table(args, "audit_table", "DCWATCH_AUDIT_TABLE_NAME")
    )


def _caller() -> str:
    """Who AWS says runs this command (sts:GetCallerIdentity): audited beside --by, which is only typed."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return str(boto3.client("sts").get_caller_identity()["Arn"])
    except (BotoCoreError, ClientError) as exc:
        return f"unknown: sts:GetCallerIdentity failed ({type(exc).__name__})"


def _automation(args: argparse.Namespace) -> int:
    from dcwatch.control import switch_automation

    store = _store(args)
    if args.state == "status":
        print(store.automation().describe())
        return 0
    if not args.reason:
        raise UsageError("--reason is required to switch automation on or off")
    switch = switch_automation(store, args.state == "on", args.reason, args.by, datetime.now(UTC), _caller())
    print(switch.describe())
    return 0


def _ack(args: argparse.Namespace) -> int:
    from dcwatch.control import acknowledge

    print(acknowledge(_store(args), args.incident, args.reason, args.by, datetime.now(UTC), _caller()))
    return 0


def _maintenance(args: argparse.Namespace) -> int:
    from dcwatch.control import open_maintenance
    from dcwatch.detection.decision import describe_window

    store = _store(args)
    if args.state == "list":
        now = datetime.now(UTC)
        windows = [w for w in store.maintenance_windows() if w.covers(now) or w.start > now]
        for window in windows:
            print(describe_window(window))
        if not windows:
            print("no maintenance window open or planned by hand (the config's windows are in the config)")
        return 0
    if not args.site or args.minutes is None or not args.reason:
        raise UsageError("maintenance open needs --site, --minutes and --reason (and --service for one service)")
    config = load_config(args.config)
    duration = timedelta(minutes=args.minutes)
    now = datetime.now(UTC)
    window = open_maintenance(store, config, args.site, args.service, duration, args.reason, args.by, now, _caller())
    print(f"maintenance window open: {describe_window(window)}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(config_schema(), indent=2))
    return 0


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


def _recorded_state(args: argparse.Namespace) -> Any:
    """The state table (read only: active site, site statuses), when the command can reach it; None otherwise."""
    if not (args.table or os.environ.get("DCWATCH_TABLE_NAME")):
        return None
    from dcwatch.adapters.dynamodb import DynamoStateStore

    return DynamoStateStore(_table(args, "table", "DCWATCH_TABLE_NAME"), "")


def execution_name(mode: RecoveryMode, from_site: str, now: datetime | None = None) -> str:
    """Unique per start (a random suffix after the second), so two starts never share a name or a lock; in the
    manual namespace, as it names the incident too."""
    prefix = MANUAL_PREFIX + ("" if mode == "disaster" else f"{mode}-")
    at = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{prefix}{from_site}-{at}-{uuid.uuid4().hex[:8]}"


def _recover(args: argparse.Namespace) -> int:
    mode = MODE_COMMANDS[args.command]
    request: dict[str, Any] = {
        "mode": mode,
        "from": args.from_site,
        "to": args.to,
        "reason": args.reason,
        "dryRun": args.dry_run,
        "trigger": "manual",
    }
    if args.config:
        config = load_config(args.config)
        recorded = _recorded_state(args)
        active = recorded.active_site(config.active_site) if recorded else None
        parse_request(request, config, active, recorded.site_status if recorded else None)
        print("\n".join(describe_plan(build_plan(config, args.from_site, args.to, mode))))
        if active is None and mode in ("migration", "failback", "drill"):
            print("(the workflow checks the request against the recorded active site; --table lets this command too)")
    if not args.state_machine_arn:
        print("no --state-machine-arn given: request checked, nothing started")
        return 0
    from dcwatch.adapters.stepfunctions import StepFunctionsStarter
    from dcwatch.config.workflow import Workflow
    from dcwatch.recovery.start import start_recovery

    workflows = StepFunctionsStarter(args.state_machine_arn)
    name = execution_name(mode, args.from_site)
    request["incidentId"] = name
    locks = args.locks_table or os.environ.get("DCWATCH_LOCKS_TABLE_NAME")
    # The lock's owner is the execution's name: the execution holds it from its first step on.
    lease_s = load_config(args.config).workflow.lease_s if args.config else Workflow().lease_s
    leases = DynamoLeases(locks) if locks else None
    now, leaving = datetime.now(UTC), leaving_site(mode, args.from_site)
    start = start_recovery(workflows, leases, name, request, lease_s=lease_s, now=now, leaving=leaving)
    if start.holder is not None:
        print(
            f"dcwatch: another failover holds the lock: {start.holder.owner} until "
            f"{start.holder.expires_at.isoformat()}; nothing started",
            file=sys.stderr,
        )
        return 1
    print(f"started {start.execution}")
    if not args.wait:
        return 0
    assert start.execution is not None
    while (status := workflows.status(start.execution))[0] == "RUNNING":
        time.sleep(2)
    print(f"{status[0]}: {status[1]}")
    return 0 if status[0] == "SUCCEEDED" else 1


def _answer(args: argparse.Namespace) -> int:
    """Through the same audited function as the console's control Lambda: the answer, then its record."""
    from dcwatch.adapters.stepfunctions import Approvals
    from dcwatch.control import answer_approval

    approved = args.command == "approve"
    store, now = _store(args), datetime.now(UTC)
    print(answer_approval(store, Approvals(), args.token, approved, args.reason, args.by, now, _caller()))
    return 0


def _agent(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dcwatch.agent.runner import DEFAULT_STATE_DIR, AgentSettings, default_agent_id, run_agent

    config = load_config(args.config)
    if args.site not in {s.name for s in config.sites}:
        raise UsageError(f"--site {args.site!r} is not one of the sites {[s.name for s in config.sites]}")
    settings = AgentSettings(
        locks_table=_table(args, "locks_table", "DCWATCH_LOCKS_TABLE_NAME"),
        audit_table=_table(args, "audit_table", "DCWATCH_AUDIT_TABLE_NAME"),
        bus_name=_table(args, "bus", "DCWATCH_BUS_NAME"),
        agent_id=args.agent_id or default_agent_id(args.site),
        state_file=Path(args.state_file or DEFAULT_STATE_DIR / f"{args.site}.json"),
    )
    return run_agent(config, args.site, settings, args.run_for)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dcwatch", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    config = sub.add_parser("config", help="check or describe a config file").add_subparsers(dest="what", required=True)
    validate = config.add_parser("validate", help="exit 0 when FILE is valid, 2 with every error by path")
    validate.add_argument("file")
    validate.set_defaults(run=_validate)
    config.add_parser("schema", help="print the config's JSON Schema").set_defaults(run=_schema)

    topology = sub.add_parser("topology", help="print where each vantage point and function runs and what it reaches")
    topology.add_argument("--config", required=True, help="the config file")
    shape = topology.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="the model as JSON")
    shape.add_argument("--mermaid", action="store_true", help="a Mermaid flowchart (the picture in docs/deploy.md)")
    topology.set_defaults(run=_topology)

    cost = sub.add_parser("cost", help="print the monthly AWS cost of a deployment beside Route 53 health checks")
    cost.add_argument("--config", help="the config file (default: the embedded demo)")
    cost.add_argument("--checks", type=int, help="instead of a config: this many public HTTPS checks over two sites")
    cost.add_argument("--interval", type=int, help="probe.interval_s (with --checks: default 10; else the config's)")
    cost.add_argument("--vantages", type=int, default=3, help="with --checks: 1 to 3 vantage points (default 3)")
    cost.add_argument(
        "--check-metrics",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --checks: two CloudWatch metrics per check, as probe.check_metrics (default on)",
    )
    cost.add_argument("--round-counts", help="JSON of measured per-round counts (RoundCounts fields) to price instead")
    cost.set_defaults(run=_cost)

    demo = sub.add_parser("demo", help="run the whole pipeline locally through a site outage")
    demo.add_argument("--config", help="sites config (default: the embedded demo)")
    demo.add_argument("--report", help="write the JSON report here")
    demo.add_argument("--steady", type=float, default=5.0, help="seconds of normal operation before the outage")
    demo.add_argument("--scenario", help="play this scenario file instead of the site outage")
    demo.set_defaults(run=_demo)

    scenarios = sub.add_parser("scenarios", help="run the scenario matrix locally and print expected against got")
    scenarios.add_argument("files", nargs="*", help="scenario files (default: every scenarios/*.yaml)")
    scenarios.add_argument("--only", action="append", default=[], metavar="NAME", help="run this scenario (repeatable)")
    scenarios.add_argument("--report", help="write every verdict and timeline as JSON here")
    scenarios.add_argument("--verbose", action="store_true", help="print each scenario's timeline")
    scenarios.add_argument("--config", help="play every scenario under this config instead of each one's own")
    scenarios.set_defaults(run=_scenarios)

    helps = {
        "failover": "disaster recovery by hand: fence the failed site, bring up the other",
        "migrate": "planned migration: shut the active site down gracefully, bring up the other",
        "drill": "prove the standby copies of the drill services; production untouched, always cleaned up",
        "failback": "back to the original site once it is healthy, as a planned migration",
    }
    for command, text in helps.items():
        recover = sub.add_parser(command, help=text)
        recover.add_argument("--from", dest="from_site", required=True, help="the site to leave")
        recover.add_argument("--to", required=True, help="the site to bring up")
        recover.add_argument("--reason", required=True, help="why, for the audit trail and the notification")
        recover.add_argument("--dry-run", action="store_true", help="compute and announce the plan, change nothing")
        recover.add_argument("--config", help="check the request against this config first and print the plan")
        recover.add_argument("--state-machine-arn", help="the deployed workflow (stack output StateMachineArn)")
        recover.add_argument("--wait", action="store_true", help="wait for the workflow to end")
        recover.add_argument("--locks-table", help="take the failover lock first (stack output LocksTableName)")
        recover.add_argument("--table", help="the state table, to check against the recorded active site")
        recover.set_defaults(run=_recover)

    def state_options(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--by",
            default=getpass.getuser(),
            help="who, for the audit trail (default: you); the AWS identity running the command is recorded too",
        )
        command.add_argument("--table", help="the state table (stack output TableName)")
        command.add_argument("--audit-table", help="the audit table (stack output AuditTableName)")

    for command, text in (("approve", "let a workflow waiting for approval go on"), ("deny", "stop it")):
        answer = sub.add_parser(command, help=text)
        answer.add_argument("--token", required=True, help="the task token from the APPROVAL NEEDED message")
        answer.add_argument("--reason", required=True, help="why, for the audit trail")
        state_options(answer)
        answer.set_defaults(run=_answer)

    automation = sub.add_parser("automation", help="switch automatic failover on or off, or show the switch")
    automation.add_argument("state", choices=["on", "off", "status"])
    automation.add_argument("--reason", help="why, for the audit trail (required for on and off)")
    state_options(automation)
    automation.set_defaults(run=_automation)

    ack = sub.add_parser("ack", help="let a failover held back by the cooldown start")
    ack.add_argument("incident", help="the incident id from the DOWN alert, e.g. dc-a-down-20261125T030000Z")
    ack.add_argument("--reason", required=True, help="why, for the audit trail")
    state_options(ack)
    ack.set_defaults(run=_ack)

    maintenance = sub.add_parser("maintenance", help="open a maintenance window from now, or list them")
    maintenance.add_argument("state", choices=["open", "list"])
    maintenance.add_argument("--config", required=True, help="the deployed config (sites and services are checked)")
    maintenance.add_argument("--site", help="the site under maintenance")
    maintenance.add_argument("--service", help="only this service (its checks are left out of the site's verdict)")
    maintenance.add_argument("--minutes", type=float, help="how long, from now")
    maintenance.add_argument("--reason", help="why, for the audit trail")
    state_options(maintenance)
    maintenance.set_defaults(run=_maintenance)

    agent = sub.add_parser("agent", help="run a site's agent: its lease, its peer's heartbeats, self-fencing")
    agent.add_argument("--config", required=True, help="the deployed config (with a fencing section)")
    agent.add_argument("--site", required=True, help="the site this agent runs at")
    agent.add_argument("--agent-id", help="this agent's name in the lease (default: <site>@<hostname>)")
    agent.add_argument("--state-file", help="what a restart must know (default: /var/lib/dcwatch-agent/<site>.json)")
    agent.add_argument("--locks-table", help="the locks table (stack output LocksTableName)")
    agent.add_argument("--audit-table", help="the audit table (stack output AuditTableName)")
    agent.add_argument("--bus", help="the dcwatch event bus (stack output BusName)")
    agent.add_argument("--run-for", type=float, help="stop after this many seconds (tests, trials)")
    agent.set_defaults(run=_agent)
    return p


class UsageError(Exception):
    """A command line that cannot be carried out; says which option is missing."""


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INVALID
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INVALID
    except (InvalidRequest, UsageError, ValueError) as exc:
        print(f"dcwatch: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except ApprovalNotWaiting as exc:
        print(f"dcwatch: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dcwatch: interrupted; everything started was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
