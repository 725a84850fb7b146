"""The `dcwatch` command: validate configs, run the local demo and the scenario matrix, start a recovery
by hand (failover, migrate, drill, failback) and answer its approval, switch automation on or off,
open maintenance windows, acknowledge an incident, show the status and the history.

Commands that touch state reach the deployed tables (stack outputs TableName, AuditTableName,
LocksTableName; or DCWATCH_TABLE_NAME, DCWATCH_AUDIT_TABLE_NAME, DCWATCH_LOCKS_TABLE_NAME) through
boto3's usual credentials and region; with AWS_ENDPOINT_URL set they reach the local runtime's moto.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from botocore.exceptions import BotoCoreError, ClientError

from dcwatch.cli.agent import _agent
from dcwatch.cli.common import UsageError
from dcwatch.cli.config import _cost, _schema, _topology, _validate
from dcwatch.cli.controls import _ack, _automation, _maintenance
from dcwatch.cli.local import FAULT_HELP, _demo, _fault, _scenarios, _up
from dcwatch.cli.recovery import DRILL_HELP, _answer, _drill, _recover
from dcwatch.cli.reports import NotRecorded, _report
from dcwatch.cli.views import add_views
from dcwatch.config import ConfigError
from dcwatch.errors import ApprovalNotWaiting, DcwatchError, InvalidRequest
from dcwatch.local.scenario import ScenarioError

EXIT_INVALID = 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dcwatch", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    config = sub.add_parser("config", help="check or describe a config file").add_subparsers(dest="what", required=True)
    validate = config.add_parser("validate", help="exit 0 when FILE is valid, 2 with every error by path")
    validate.add_argument("file", nargs="?", help="the config file")
    validate.add_argument("--config", help="the same, spelled as every other command spells it")
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

    up = sub.add_parser(
        "up", help="run the local stack until Ctrl-C: print what to export so other commands work against it"
    )
    up.add_argument("--config", help="sites config (default: the embedded demo)")
    up.add_argument("--run-for", type=float, help="stop after this many seconds (default: at Ctrl-C, at most 24 h)")
    up.add_argument("--run-dir", help="where the env file, fault channel and logs go (default: .dcwatch-up)")
    up.set_defaults(run=_up)

    fault = sub.add_parser("fault", help="break the sites of a running `dcwatch up` by hand", description=FAULT_HELP)
    fault.add_argument("--run-dir", help="the `up`'s run directory (default: $DCWATCH_UP_DIR, else .dcwatch-up)")
    faults = fault.add_subparsers(dest="fault", required=True)
    site_help = "a site: active, standby or its name"
    for name, text in (
        ("kill-site", "the site's vCenter and every service stop, and its agent dies"),
        ("revive-site", "a killed site's power returns: its vCenter runs with its VMs off, its agent starts again"),
        ("vcenter-down", "the site's vCenter stops; its services run on"),
    ):
        faults.add_parser(name, help=text).add_argument("site", help=site_help)
    for name, text in (("stop-service", "one service stops answering"), ("start-service", "it answers again")):
        service = faults.add_parser(name, help=text)
        service.add_argument("site", help=site_help)
        service.add_argument("service", help="a service of the config")
    cut = faults.add_parser("cut-link", help="no connection passes from a vantage point's placement to a site")
    cut.add_argument("vantage", help="a vantage point (`dcwatch topology` lists them)")
    cut.add_argument("--site", default="all", help=site_help + ", or all (default)")
    cut.add_argument("--path", default="all", choices=["public", "private", "all"], help="which path (default: all)")
    cut.add_argument("--blackhole", action="store_true", help="packets vanish (timeouts) instead of being refused")
    heal = faults.add_parser("heal", help="links pass again: every link, or one vantage point's, or a partition's")
    chosen = heal.add_mutually_exclusive_group()
    chosen.add_argument("--from", dest="vantage", help="only this vantage point's links")
    chosen.add_argument("--between", nargs=2, metavar=("A", "B"), help="only the links between two parties")
    fault.set_defaults(run=_fault)

    helps = {
        "failover": "disaster recovery by hand: fence the failed site, bring up the other",
        "migrate": "planned migration: shut the active site down gracefully, bring up the other",
        "drill": "prove the standby copies of the drill services; production untouched, always cleaned up",
        "failback": "back to the original site once it is healthy, as a planned migration",
    }
    for command, text in helps.items():
        drill = command == "drill"  # its --cleanup needs none of a start's options
        recover = sub.add_parser(command, help=text, description=DRILL_HELP if drill else None)
        recover.add_argument("--from", dest="from_site", required=not drill, help="the site to leave")
        recover.add_argument("--to", required=not drill, help="the site to bring up")
        recover.add_argument("--reason", required=not drill, help="why, for the audit trail and the notification")
        recover.add_argument(
            "--dry-run",
            action="store_true",
            help="compute and announce the plan, change nothing"
            + ("; with --cleanup: list, remove nothing" if drill else ""),
        )
        recover.add_argument("--config", help="check the request against this config first and print the plan")
        recover.add_argument("--state-machine-arn", help="the deployed workflow (stack output StateMachineArn)")
        recover.add_argument("--wait", action="store_true", help="wait for the workflow to end")
        recover.add_argument(
            "--locks-table",
            help="take the failover lock first (stack output LocksTableName)"
            + ("; with --cleanup: refuse while a recovery holds it" if drill else ""),
        )
        recover.add_argument("--table", help="the state table, to check against the recorded active site")
        if drill:
            recover.add_argument(
                "--cleanup",
                action="store_true",
                help="instead of a start: remove every drill clone a drill left (needs --config; no --from/--to)",
            )
            recover.add_argument("--site", help="with --cleanup: only this site's vCenter (default: every site)")
            recover.add_argument(
                "--schedule-status",
                action="store_true",
                help="instead of a start: the config's drill schedule, its next run and the last drills' results "
                "(needs --config and --audit-table or DCWATCH_AUDIT_TABLE_NAME)",
            )
            recover.add_argument("--audit-table", help="with --schedule-status: the audit table (AuditTableName)")
        recover.set_defaults(run=_drill if drill else _recover)

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

    add_views(sub)
    report = sub.add_parser(
        "report",
        help="write a recovery's HTML report (plan, timeline, RTO against the target, verdict) or the drill scorecard",
    )
    report.add_argument("incident", nargs="?", help="the incident ID (a manual start's is manual-<execution>)")
    report.add_argument("--out", required=True, help="the HTML file to write (self-contained: open it anywhere)")
    report.add_argument(
        "--scorecard",
        action="store_true",
        help="instead of one incident: the last drills' RTO and verdicts (reads at most 5000 audit records)",
    )
    report.add_argument("--audit-table", help="the audit table (stack output AuditTableName)")
    report.add_argument("--config", help="the deployed config: its workflow.rto_target_s is the target")
    report.set_defaults(run=_report)

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
    except (ApprovalNotWaiting, NotRecorded) as exc:
        print(f"dcwatch: {exc}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as exc:  # no region, no credentials, access denied, a table not there
        print(f"dcwatch: AWS: {exc}", file=sys.stderr)
        return 1
    except DcwatchError as exc:  # what an adapter made of a failure: AWS or a vCenter unreachable, a timeout
        print(f"dcwatch: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dcwatch: interrupted; everything started was stopped", file=sys.stderr)
        return 130
