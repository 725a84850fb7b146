"""The DynamoDB tables of `dcwatch.wiring.TABLES`: string keys, on demand, point-in-time recovery; the audit
trail kept (retained, deletion-protected, append-only)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from dcwatch.wiring import TABLES, TableSpec
from dcwatch_infra import constants as c
from dcwatch_infra.append_only import append_only_policy


def tables(scope: Construct) -> dict[str, dynamodb.Table]:
    """Every table, by its key; in `scope` itself (their logical ids are those they were deployed with)."""
    return {spec.key: _table(scope, spec) for spec in TABLES}


def _table(scope: Construct, spec: TableSpec) -> dynamodb.Table:
    return dynamodb.Table(
        scope,
        c.table_id(spec.key),
        partition_key=dynamodb.Attribute(name=spec.partition_key, type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name=spec.sort_key, type=dynamodb.AttributeType.STRING) if spec.sort_key else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        time_to_live_attribute=spec.ttl_attribute,
        # State and leases are rebuilt by a new deployment; the audit trail outlives the stack.
        removal_policy=RemovalPolicy.RETAIN if spec.kept else RemovalPolicy.DESTROY,
        deletion_protection=spec.kept,
        resource_policy=append_only_policy() if spec.kept else None,
    )
