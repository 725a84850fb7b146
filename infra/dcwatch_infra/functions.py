"""One helper for every dcwatch Lambda function: its own role, its own log group, the layers, tracing,
and its place in the network (`dcwatch.topology.Placement`).

Each function gets a role of its own with nothing but writing to its log group and X-Ray (and, inside
the VPC, managing its network interfaces); what else it may do is granted by the stack, by function
(the table at the top of `stack.py`).

A function inside the VPC is attached through Lambda's own `VpcConfig` (the config's subnets and
security groups), not through CDK's imported `ec2.Vpc`: Lambda needs nothing else, and importing the
VPC would make CDK ask for the subnets' availability zones and route tables, which nothing here uses.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from dcwatch.config import Network
from dcwatch.events import PROBE_ROUND, probe_source
from dcwatch.topology import HOME, Placement
from dcwatch.wiring import FUNCTIONS_DIR, FunctionSpec, function
from dcwatch_infra import constants as c
from dcwatch_infra import nag
from dcwatch_infra.bus_policy import put_events

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


def dcwatch_function(
    scope: Construct,
    construct_id: str,
    spec: FunctionSpec,
    *,
    layers: list[lambda_.LayerVersion],
    environment: dict[str, str],
    placement: Placement = HOME,
    network: Network | None = None,
    description: str = "",
    max_event_age: Duration | None = None,
    role_name: str | None = None,
) -> lambda_.Function:
    """The function `spec` as `construct_id`, where `placement` says (inside `network` when it is in the VPC);
    `max_event_age` also stops retries of failed async calls; `role_name` where a policy names its role."""
    _check_placement(scope, construct_id, placement, network)
    role = iam.Role(
        scope,
        c.role_id(construct_id),
        role_name=role_name,
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"dcwatch {construct_id}: {spec.description}"[:1000],
    )
    log_group = logs.LogGroup(scope, c.function_logs_id(construct_id), retention=c.LOG_RETENTION)
    log_group.grant_write(role)
    if placement.in_vpc:
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
        # A failed asynchronous invocation (a probe round) is not run again late: the next one replaces it.
        retry_attempts=0 if max_event_age else None,
        max_event_age=max_event_age,
    )
    Tags.of(function).add(c.FUNCTION_TAG, spec.key)
    if placement.in_vpc and network is not None:
        cfn: lambda_.CfnFunction = function.node.default_child  # type: ignore[assignment]
        cfn.vpc_config = lambda_.CfnFunction.VpcConfigProperty(
            subnet_ids=list(network.subnet_ids), security_group_ids=list(network.security_group_ids)
        )
    nag.acknowledge(
        role,
        "IAM5[Resource::*]",
        "X-Ray's PutTraceSegments and PutTelemetryRecords have no resource-level permissions"
        + (
            "; nor do the network-interface actions Lambda needs to attach the function to the VPC"
            if placement.in_vpc
            else ""
        ),
    )
    return function


def probe_function(
    scope: Construct,
    vantage: str,
    *,
    deployment: str,
    bus_arn: str,
    layers: list[lambda_.LayerVersion],
    environment: dict[str, str],
    period: Duration,
    placement: Placement = HOME,
    network: Network | None = None,
) -> lambda_.Function:
    """The probe at one vantage point, called every `period`, tagged and named with where it runs from; it may
    put on the bus its own vantage point's ProbeRounds only (`bus_policy`)."""
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
        network=network,
        description=f"{spec.description} (from {vantage})",
        max_event_age=period,
        role_name=c.probe_role_name(deployment, vantage),
    )
    probe.add_to_role_policy(put_events(bus_arn, probe_source(vantage), PROBE_ROUND))
    Tags.of(probe).add(c.VANTAGE_TAG, vantage)
    return probe


def _check_placement(scope: Construct, construct_id: str, placement: Placement, network: Network | None) -> None:
    """The model's placement is what gets built, or the synth stops: no function lands somewhere else."""
    region = Stack.of(scope).region
    if placement.region is not None and placement.region != region:
        raise ValueError(f"{construct_id}: placed in region {placement.region}, but its stack is in {region}")
    if placement.in_vpc and network is None:
        raise ValueError(f"{construct_id}: placed inside the VPC, but the config has no `network`")
    if placement.in_vpc and placement.region is not None:
        raise ValueError(f"{construct_id}: `network` is a VPC of the home region, not of {placement.region}")
