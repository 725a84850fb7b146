"""Recovery by hand: start a failover, migration, drill or failback (taking the lock first), and answer a
workflow's approval."""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from dcwatch.adapters.dynamodb import DynamoLeases
from dcwatch.cli.common import _caller, _store, _table
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
