"""`dcwatch report`: a recovery's HTML report, or the drill scorecard, rendered from the audit table."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from dcwatch.cli.common import UsageError

if TYPE_CHECKING:
    from dcwatch.adapters.dynamodb.audit import DynamoAuditLog

SCORECARD_DRILLS = 20  # the drills the scorecard shows
SCAN_RECORDS = 5000  # the audit records the scorecard reads at most (a bounded Scan: the table is keyed by incident)


class NotRecorded(Exception):
    """The audit table holds no recovery record of this incident."""


def _report(args: argparse.Namespace) -> int:
    if bool(args.incident) == bool(args.scorecard):
        raise UsageError("report needs an incident ID or --scorecard (not both)")
    table = args.audit_table or os.environ.get("DCWATCH_AUDIT_TABLE_NAME", "")
    if not table:
        raise UsageError("--audit-table (or DCWATCH_AUDIT_TABLE_NAME) is required: the stack output AuditTableName")
    from dcwatch.adapters.dynamodb.audit import DynamoAuditLog

    audit = DynamoAuditLog("", table)
    target = _target(args.config)
    try:
        html, what = _render(args, audit, target)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        raise UsageError(f"audit table {table} not found: give the stack output AuditTableName") from exc
    Path(args.out).write_text(html, encoding="utf-8")
    print(f"{what} written to {args.out}")
    return 0


def _render(args: argparse.Namespace, audit: DynamoAuditLog, target: int | None) -> tuple[str, str]:
    from dcwatch.reports import drill_records, recovery_record, render_report, render_scorecard

    if args.scorecard:
        drills = drill_records(audit.scan_audit(SCAN_RECORDS), SCORECARD_DRILLS)
        return render_scorecard(drills, target), f"scorecard of the last {len(drills)} drills"
    record = recovery_record(audit.audit(args.incident))
    if record is None:
        raise NotRecorded(
            f"no recovery record of incident {args.incident} in {audit.audit_table}: check the ID (`dcwatch "
            "history`); a recovery still running has none yet"
        )
    return render_report(record, target), f"report of {args.incident} ({record.get('outcome')})"


def _target(config: str | None) -> int | None:
    if not config:
        return None
    from dcwatch.config import load_config

    return load_config(config).workflow.rto_target_s
