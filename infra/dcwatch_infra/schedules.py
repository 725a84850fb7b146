"""EventBridge Scheduler schedules for the probe functions, in whichever stack a probe lives."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from constructs import Construct

from dcwatch_infra import constants as c
from dcwatch_infra import nag


def probe_schedule_role(scope: Construct) -> iam.Role:
    """The role EventBridge Scheduler assumes, for schedules of this account only; invoke rights follow."""
    return iam.Role(
        scope,
        c.PROBE_SCHEDULE_ROLE,
        description="EventBridge Scheduler invokes the probe functions",
        assumed_by=iam.ServicePrincipal(
            "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Stack.of(scope).account}}
        ),
    )


def probe_schedule(
    scope: Construct, construct_id: str, probe: lambda_.IFunction, role: iam.IRole, period: Duration, what: str
) -> scheduler.Schedule:
    """The probe every `period`; a round that cannot start within its period is superseded by the next."""
    schedule = scheduler.Schedule(
        scope,
        c.schedule_id(construct_id),
        description=f"dcwatch {what}: probe rounds",
        schedule=scheduler.ScheduleExpression.rate(period),
        target=scheduler_targets.LambdaInvoke(probe, role=role, retry_attempts=2, max_event_age=period),
    )
    logical_id = Stack.of(probe).get_logical_id(probe.node.default_child)  # type: ignore[arg-type]
    nag.acknowledge(
        role,
        f"IAM5[Resource::<{logical_id}.Arn>:*]",
        "the Scheduler target grants invoke on the probe function and its versions (ARN:*); the schedule "
        "invokes the unqualified function, and nothing else",
    )
    return schedule
