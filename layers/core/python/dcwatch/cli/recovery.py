"""Recovery by hand: start a failover, migration, drill or failback (taking the lock first), answer a
workflow's approval, and remove the clones a drill left (`drill --cleanup`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from dcwatch.adapters.dynamodb import DynamoLeases
from dcwatch.cli.common import UsageError, _caller, _store, _table
from dcwatch.cli.reports import SCAN_RECORDS
from dcwatch.config import RecoveryMode, load_config
from dcwatch.recovery.plan import build_plan, describe_plan
from dcwatch.recovery.request import MANUAL_PREFIX, leaving_site, parse_request

# Command -> the workflow's mode.
MODE_COMMANDS: dict[str, RecoveryMode] = {
    "failover": "disaster",
    "migrate": "migration",
    "drill": "drill",
    "failback": "failback",
}


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


DRILL_HELP = """Start a drill: clones of the standby VMs of the drill's services, on the drill's isolated network,
proven and destroyed (--from, --to, --reason). Or, with --cleanup, remove the drill clones a drill killed mid-way
left: at every site of --config (or --site), the VMs both named <vm>-drill-<run> and marked as clones, powered off
and destroyed, one line each; exit 0 when none is left, 1 if some could not be removed (or, with --locks-table,
while a recovery holds the failover lock: a running drill's clones are not leftovers), 2 for a bad config or
argument."""

START_ONLY = {"from_site": "--from", "to": "--to", "reason": "--reason", "state_machine_arn": "--state-machine-arn"}


def _drill(args: argparse.Namespace) -> int:
    """`drill`: a start, or with --cleanup the removal of what drills left, or with --schedule-status when the
    scheduled drill runs next and how the last drills went."""
    given = [option for field, option in START_ONLY.items() if getattr(args, field)]
    given += ["--wait"] * args.wait + ["--table"] * bool(args.table)
    if args.schedule_status:
        if given or args.cleanup:
            raise UsageError(f"--schedule-status starts nothing: drop {', '.join(given or ['--cleanup'])}")
        return _schedule_status(args)
    if args.cleanup:
        if given:
            raise UsageError(f"--cleanup starts nothing: drop {', '.join(given)}")
        return _cleanup(args)
    missing = [option for field, option in list(START_ONLY.items())[:3] if not getattr(args, field)]
    if missing:
        raise UsageError(f"a drill start needs {', '.join(missing)} (or --cleanup to remove a drill's leftovers)")
    return _recover(args)


def _schedule_status(args: argparse.Namespace) -> int:
    """The drill schedule of --config, its next run, and the last drills from the audit table."""
    from dcwatch.adapters.dynamodb.audit import DynamoAuditLog
    from dcwatch.recovery.scheduled import schedule_status

    if not args.config:
        raise UsageError("--schedule-status needs --config: the schedule is the config's drill.schedule")
    config = load_config(args.config)
    records = DynamoAuditLog("", _table(args, "audit_table", "DCWATCH_AUDIT_TABLE_NAME")).scan_audit(
        SCAN_RECORDS
    )  # the same bound as the scorecard's
    print("\n".join(schedule_status(config, records, datetime.now(UTC))))
    return 0


def _running_recovery(args: argparse.Namespace) -> str:
    """Who holds the failover lock now ('' when no one, or no locks table was named)."""
    locks = args.locks_table or os.environ.get("DCWATCH_LOCKS_TABLE_NAME")
    holder = DynamoLeases(locks).holder() if locks else None
    if holder is None or holder.expires_at <= datetime.now(UTC):
        return ""
    return f"{holder.owner} until {holder.expires_at.isoformat()}"


def _cleanup(args: argparse.Namespace) -> int:
    """Every drill clone at each site (or --site), destroyed unless --dry-run; one line per clone."""
    from botocore.exceptions import BotoCoreError, ClientError

    from dcwatch.adapters.secrets import SecretsManagerCredentials
    from dcwatch.adapters.vsphere import VsphereDrillLab
    from dcwatch.errors import DcwatchError

    if not args.config:
        raise UsageError("--cleanup needs --config: the sites' vCenters and the secrets of their credentials")
    config = load_config(args.config)
    names = [site.name for site in config.sites]
    if args.site and args.site not in names:
        raise UsageError(f"--site {args.site}: not a site of {args.config} (sites: {', '.join(names)})")
    if holder := _running_recovery(args):
        print(
            f"dcwatch: a recovery holds the failover lock: {holder}; its clones are not leftovers: nothing removed",
            file=sys.stderr,
        )
        return 1
    secrets, removed, problems = SecretsManagerCredentials(), 0, []
    for site in [args.site] if args.site else names:
        vcenter = config.site(site).vcenter
        try:
            with VsphereDrillLab.connect(vcenter, secrets.get(vcenter.credentials_secret)) as lab:
                found, why = lab.clones(), ""
                if not args.dry_run and found:
                    try:
                        lab.destroy([clone.name for clone in found])
                    except DcwatchError as exc:
                        why = str(exc)
                left = {clone.name for clone in lab.clones()} if found and not args.dry_run else set()
        except (DcwatchError, BotoCoreError, ClientError) as exc:  # vCenter unreachable or refusing, no secret
            problems.append(f"site {site}: {exc}")
            continue
        for clone in found:
            if args.dry_run or clone.name not in left:
                verb, was = ("would remove", "") if args.dry_run else ("removed", "was ")
                print(f"{verb} {clone.name} at {site}: copy of {clone.original}, run {clone.run}, {was}{clone.power}")
        removed += len(found) - len(left)
        if left:
            problems.append(f"site {site}: {', '.join(sorted(left))} left: {why or 'still there after the destroy'}")
    if args.dry_run:
        print(f"dry run: {removed} drill clones found, nothing removed")
    else:
        print(
            f"{removed} drill clones removed"
            + (f"; {len(problems)} sites with clones left or unread" if problems else "")
        )
    for problem in problems:
        print(f"dcwatch: {problem}", file=sys.stderr)
    return 1 if problems else 0


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
    if not args.wait or start.execution is None:
        return 0
    while (status := workflows.status(start.execution))[0] == "RUNNING":
        time.sleep(2)
    print("\n".join(_ended(*status)))
    return 0 if status[0] == "SUCCEEDED" else 1


def _ended(status: str, text: str) -> list[str]:
    """How the run ended: its timeline, step by step, once it succeeded (the output is the whole workflow state,
    which nobody reads); its cause as Step Functions gives it otherwise."""
    from dcwatch.views.history import timeline_steps

    try:
        state = json.loads(text)
    except ValueError:
        state = None
    if status != "SUCCEEDED" or not isinstance(state, dict) or not state.get("timeline"):
        return [f"{status}: {text}"]
    return [f"{status}; timeline (start, duration, step: detail):", *(f"  {s.text()}" for s in timeline_steps(state))]


def _answer(args: argparse.Namespace) -> int:
    """Through the same audited function as the console's control Lambda: the answer, then its record."""
    from dcwatch.adapters.stepfunctions import Approvals
    from dcwatch.control import answer_approval

    approved = args.command == "approve"
    store, now = _store(args), datetime.now(UTC)
    print(answer_approval(store, Approvals(), args.token, approved, args.reason, args.by, now, _caller()))
    return 0
