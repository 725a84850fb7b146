"""The operators' controls: automation on or off, maintenance windows, acknowledging an incident."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from dcwatch.cli.common import UsageError, _caller, _store
from dcwatch.config import load_config


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
