"""What operators read: `dcwatch status` (where production runs, what is wrong, what is in flight) and
`dcwatch history` (the audit trail, one line per record; `history show ID` one incident whole).

Both exit 2, with one readable line, when they cannot read: no table named, a table missing, AWS refusing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dcwatch.cli.common import UsageError, _table
from dcwatch.config import Config, load_config
from dcwatch.errors import DcwatchError

EXIT_UNREADABLE = 2
_AGO = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class Unreadable(Exception):
    """The state cannot be read: what is missing or what AWS said."""


@contextmanager
def _reading(what: str) -> Iterator[None]:
    try:
        yield
    except UsageError as exc:
        raise Unreadable(str(exc)) from None
    except (BotoCoreError, ClientError, DcwatchError) as exc:  # no region or credentials, a table missing, denied
        raise Unreadable(f"{what}: AWS: {exc}") from None


def _optional(args: argparse.Namespace, option: str, env: str) -> str | None:
    return getattr(args, option, None) or os.environ.get(env) or None


def _config(args: argparse.Namespace) -> Config | None:
    path = _optional(args, "config", "DCWATCH_CONFIG")
    return load_config(path) if path else None


def _unreadable(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except Unreadable as exc:
            print(f"dcwatch: cannot read the state: {exc}", file=sys.stderr)
            return EXIT_UNREADABLE

    return guarded


def _read_status(args: argparse.Namespace, now: datetime) -> Any:
    from dcwatch.adapters.dynamodb import DynamoLeases, DynamoStateStore
    from dcwatch.adapters.stepfunctions import StepFunctionsExecutions
    from dcwatch.views.status import SITE_CHECKS, Reading, SiteReading

    config = _config(args)
    with _reading("state table"):
        audit_table = _optional(args, "audit_table", "DCWATCH_AUDIT_TABLE_NAME")
        store = DynamoStateStore(_table(args, "table", "DCWATCH_TABLE_NAME"), audit_table or "")
        sites = [s.name for s in config.sites] if config else store.sites()
        recorded = store.active_site("")
        active = recorded or (config.active_site if config else None)
        readings = []
        for site in sites:
            services = [s.name for s in config.services if site in s.sites] if config else []
            checks = store.site_snapshot(site)[0]
            parts: dict[str, Any] = {}
            if site == active:
                named = services or sorted({c.service for c in checks if c.service})
                parts = {name: store.condition(f"service/{name}@{site}", "UP") for name in named}
                parts[SITE_CHECKS] = store.condition(f"vcenter/{site}", "UP")
            condition = store.condition(f"site/{site}", "UP")
            readings.append(SiteReading(site, condition, checks, services, parts))
        automation, last_failover = store.automation(), store.last_failover()
        windows = [*(config.maintenance if config else []), *store.maintenance_windows()]
    with _reading("locks table"):
        locks = _optional(args, "locks_table", "DCWATCH_LOCKS_TABLE_NAME")
        lock = DynamoLeases(locks).holder() if locks else None
    with _reading("state machine"):
        machine = _optional(args, "state_machine_arn", "DCWATCH_STATE_MACHINE_ARN")
        workflows = StepFunctionsExecutions(machine).running() if machine else None
    with _reading("audit table"):
        audit = store.entries_since(None).entries if audit_table else None
    return Reading(now, active, readings, automation, lock, windows, workflows, last_failover, audit)


@_unreadable
def _status(args: argparse.Namespace) -> int:
    from dcwatch.views.status import status_view

    view = status_view(_read_status(args, datetime.now(UTC)))
    print(json.dumps(view.to_json(), indent=2) if args.json else "\n".join(view.text()))
    return view.exit_code


def parse_since(text: str, now: datetime) -> datetime:
    """`7d`, `12h`, `30m`, `2w` back from now, or an ISO 8601 time (UTC when it names no offset)."""
    if match := _AGO.match(text.strip()):
        return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--since {text!r}: expected an ISO 8601 time or an age like 30m, 12h, 7d, 2w") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _audit(args: argparse.Namespace) -> Any:
    from dcwatch.adapters.dynamodb import DynamoStateStore

    return DynamoStateStore("", _table(args, "audit_table", "DCWATCH_AUDIT_TABLE_NAME"))


@_unreadable
def _history(args: argparse.Namespace) -> int:
    from dcwatch.views.history import history, incident

    if args.show and not args.id:
        raise UsageError("history show needs the ID a history line names")
    if args.id:
        with _reading("audit table"):
            entries = _audit(args).entries(args.id)
        if not entries:
            print(f"dcwatch: no audit record under {args.id!r} (`dcwatch history` lists the ids)", file=sys.stderr)
            return 1
        view = incident(args.id, entries)
        print(json.dumps(view.to_json(), indent=2, default=str) if args.json else "\n".join(view.text()))
        return 0
    since = parse_since(args.since, datetime.now(UTC)) if args.since else None
    with _reading("audit table"):
        page = _audit(args).entries_since(since)
    lines = history(page.entries, since=since, kinds=args.kind or ())
    if args.json:
        print(json.dumps([line.to_json() for line in lines], indent=2))
    else:
        print(
            "\n".join(line.text() for line in lines)
            or "no audit record" + (f" since {since:%Y-%m-%d %H:%M}Z" if since else "")
        )
    if not page.complete:
        print("dcwatch: the audit table is larger than one read goes: older records may be missing", file=sys.stderr)
    return 0


def add_views(sub: Any) -> None:
    """`status` and `history` in the `dcwatch` parser."""
    from dcwatch.views.history import KINDS

    status = sub.add_parser(
        "status",
        help="where production runs and what is wrong: exit 0 all well, 1 needs attention, 2 cannot read the state",
    )
    status.add_argument("--json", action="store_true", help="one JSON object for scripts")
    status.add_argument("--config", help="the deployed config: its sites, services and windows (or DCWATCH_CONFIG)")
    status.add_argument("--table", help="the state table (stack output TableName)")
    status.add_argument("--audit-table", help="the audit table, for the last failover and drill (AuditTableName)")
    status.add_argument("--locks-table", help="the locks table, for the lock holder (LocksTableName)")
    status.add_argument("--state-machine-arn", help="the workflow, for a running execution (StateMachineArn)")
    status.set_defaults(run=_status)

    hist = sub.add_parser("history", help="the audit trail, one line per record; `history show ID` one incident whole")
    hist.add_argument("show", nargs="?", choices=["show"], help="print one incident (or subject) whole")
    hist.add_argument("id", nargs="?", help="with show: the incident or subject id a history line names")
    hist.add_argument("--since", help="ISO 8601 time, or an age: 30m, 12h, 7d, 2w")
    hist.add_argument("--kind", action="append", choices=KINDS, help="only these kinds (repeatable)")
    hist.add_argument("--json", action="store_true", help="a JSON list (show: one JSON object)")
    hist.add_argument("--audit-table", help="the audit table (stack output AuditTableName)")
    hist.set_defaults(run=_history)
