"""One helper for every dcwatch Lambda function: its own role, its own log group, the layers, tracing.

Each function gets a role of its own with nothing but writing to its log group and X-Ray; what else
it may do is granted by the stack, by function (the table at the top of `stack.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from dcwatch.wiring import FUNCTIONS_DIR, FunctionSpec, function
from dcwatch_infra import constants as c
from dcwatch_infra import nag

# Lambda attaches a function to a VPC through network interfaces it manages with these; only Describe*
# cannot be scoped, and Lambda checks the others against "*" when the function is created.
VPC_ACCESS_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]


@dataclass(frozen=True)
class Placement:
    """Where a function runs: outside any VPC, or in these subnets with these security groups."""

    vpc: ec2.IVpc | None = None
    subnets: tuple[ec2.ISubnet, ...] = ()
    security_groups: tuple[ec2.ISecurityGroup, ...] = ()


OUTSIDE_VPC = Placement()


def dcwatch_function(
    scope: Construct,
    construct_id: str,
    spec: FunctionSpec,
    *,
    layers: list[lambda_.LayerVersion],
    environment: dict[str, str],
    placement: Placement = OUTSIDE_VPC,
    description: str = "",
    max_event_age: Duration | None = None,
) -> lambda_.Function:
    """The function `spec` as `construct_id`; `max_event_age` also stops retries of failed async calls."""
    role = iam.Role(
        scope,
        c.role_id(construct_id),
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"dcwatch {construct_id}: {spec.description}"[:1000],
    )
    log_group = logs.LogGroup(scope, c.function_logs_id(construct_id), retention=c.LOG_RETENTION)
    log_group.grant_write(role)
    if placement.vpc is not None:
        role.add_to_policy(iam.PolicyStatement(actions=VPC_ACCESS_ACTIONS, resources=["*"]))
    function = lambda_.Function(
        scope,
        construct_id,
        description=description or spec.description,
        runtime=c.LAMBDA_RUNTIME,
        architecture=c.LAMBDA_ARCHITECTURE,
        code=lambda_.Code.from_asset(str(FUNCTIONS_DIR / spec.code), exclude=c.CODE_EXCLUDES),
        handler=spec.handler,
        timeout=Duration.seconds(spec.timeout_s),
        memory_size=spec.memory_mb,
        reserved_concurrent_executions=spec.reserved_concurrency,
        layers=layers,
        role=role,
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
        environment={
            "POWERTOOLS_SERVICE_NAME": c.POWERTOOLS_SERVICE,
            # Workflow states and probe rounds are large; the trace keeps timings and errors, not payloads.
            "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
            # Probe checks run on worker threads without an X-Ray segment: nothing to report there.
            "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
            **environment,
        },
        vpc=placement.vpc,
        vpc_subnets=ec2.SubnetSelection(subnets=list(placement.subnets)) if placement.vpc else None,
        security_groups=list(placement.security_groups) or None,
        # A failed asynchronous invocation (a probe round) is not run again late: the next one replaces it.
        retry_attempts=0 if max_event_age else None,
        max_event_age=max_event_age,
    )
    nag.acknowledge(
        role,
        "IAM5[Resource::*]",
        "X-Ray's PutTraceSegments and PutTelemetryRecords have no resource-level permissions"
        + (
            "; nor do the network-interface actions Lambda needs to attach the function to the VPC"
            if placement.vpc
            else ""
        ),
    )
    return function


def probe_function(
    scope: Construct,
    vantage: str,
    *,
    layers: list[lambda_.LayerVersion],
    environment: dict[str, str],
    period: Duration,
    placement: Placement = OUTSIDE_VPC,
) -> lambda_.Function:
    """The probe at one vantage point, called every `period`, tagged and named with where it runs from."""
    spec = function("Probe")
    probe = dcwatch_function(
        scope,
        c.probe_id(vantage),
        spec,
        layers=layers,
        environment={
            **environment,
            c.ENV_VANTAGE: vantage,
            c.ENV_SCHEDULE_PERIOD_S: str(int(period.to_seconds())),
        },
        placement=placement,
        description=f"{spec.description} (from {vantage})",
        max_event_age=period,
    )
    Tags.of(probe).add(c.VANTAGE_TAG, vantage)
    return probe
