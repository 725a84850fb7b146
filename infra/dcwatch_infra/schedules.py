"""EventBridge Scheduler schedules: the probe functions', in whichever stack a probe lives, and the drill's
(`drill.schedule`), which starts the failover workflow with a scheduled drill request."""

from __future__ import annotations

from aws_cdk import Duration, Stack, TimeZone
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from dcwatch.config import Config
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


# A drill that could not start within this long after its time is dropped (and kept in the dead-letter queue):
# a drill hours late may run into the working day.
DRILL_MAX_EVENT_AGE = Duration.minutes(15)


def drill_schedule(
    stack: Stack, config: Config, machine: sfn.IStateMachine
) -> tuple[scheduler.Schedule, sqs.Queue] | None:
    """The config's `drill.schedule` (none without one): StartExecution of the failover workflow with the
    scheduled drill request, at the expression's times in its time zone, no flexible window. Its role may do
    that and nothing else; what Scheduler cannot deliver after its retries waits in a dead-letter queue."""
    drill = config.drill
    if drill is None or drill.schedule is None:
        return None
    plan = drill.schedule
    role = iam.Role(
        stack,
        c.DRILL_SCHEDULE_ROLE,
        description="EventBridge Scheduler starts the scheduled drill",
        assumed_by=iam.ServicePrincipal(
            "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
        ),
    )
    dead = sqs.Queue(
        stack,
        c.dead_letter_id(c.DRILL_SCHEDULE),
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    nag.acknowledge(dead, "SQS3", "it is a dead-letter queue: of the drill schedule's target")
    schedule = scheduler.Schedule(
        stack,
        c.DRILL_SCHEDULE,
        description=f"dcwatch {config.name}: {plan.reason}",
        schedule=scheduler.ScheduleExpression.expression(plan.expression, TimeZone.of(plan.time_zone)),
        target=scheduler_targets.StepFunctionsStartExecution(
            machine,
            role=role,
            input=scheduler.ScheduleTargetInput.from_object(plan.request()),
            retry_attempts=2,
            max_event_age=DRILL_MAX_EVENT_AGE,
            dead_letter_queue=dead,
        ),
    )
    return schedule, dead
