"""What the commands share: the usage error, the deployed tables named by option or environment, the
caller's AWS identity for the audit trail."""

from __future__ import annotations

import argparse
import os
from typing import Any


class UsageError(Exception):
    """A command line that cannot be carried out; says which option is missing."""


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
