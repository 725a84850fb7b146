"""`dcwatch agent`: run a site's agent (its lease, its peer's heartbeats, self-fencing)."""

from __future__ import annotations

import argparse

from dcwatch.cli.common import UsageError, _table
from dcwatch.config import load_config


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
