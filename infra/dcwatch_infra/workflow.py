"""The failover workflow: the state machine from the ASL (`dcwatch.wiring`), its step functions' targets
(warm aliases with `-c warm_steps=N`), its logs and its right to invoke them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Stack, Stage
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn

from dcwatch.config import Config, workflow_timeout_s
from dcwatch.wiring import FAILOVER_ASL, failover_definition, failover_task_functions, step_arns
from dcwatch_infra import constants as c
from dcwatch_infra import nag


def step_targets(stack: Stack, functions: Mapping[str, lambda_.Function], warm: int) -> dict[str, lambda_.IFunction]:
    """What the workflow invokes: each step function, or with `warm` an alias of its current version with
    that many provisioned environments (initialized ahead, they import every step's modules then)."""
    steps = failover_task_functions()
    if not warm:
        return {spec.key: functions[spec.key] for spec in steps}
    return {
        spec.key: lambda_.Alias(
            stack,
            c.warm_alias_id(spec.key),
            alias_name=c.WARM_ALIAS,
            version=functions[spec.key].current_version,
            provisioned_concurrent_executions=warm,
        )
        for spec in steps
    }


def failover_workflow(stack: Stack, config: Config, targets: Mapping[str, lambda_.IFunction]) -> sfn.StateMachine:
    """The state machine, in `stack` itself (its logical ids are those it was deployed with)."""
    steps = failover_task_functions()  # fails on a Task naming a step dcwatch.wiring does not have
    machine = sfn.StateMachine(
        stack,
        c.FAILOVER,
        state_machine_name=c.state_machine_name(config.name),
        state_machine_type=sfn.StateMachineType.STANDARD,
        definition_body=sfn.DefinitionBody.from_file(str(_definition_file(stack, config))),
        # `${<step>Arn}`: the function that runs the step (Steps or SiteSteps).
        definition_substitutions=step_arns({spec.key: targets[spec.key].function_arn for spec in steps}),
        # Every event, without its input, output or parameters: RequestApproval's parameters carry the task
        # token that answers the approval gate, and Step Functions cannot leave one field out of its logs.
        # The data stays in the execution history, behind states:GetExecutionHistory.
        logs=sfn.LogOptions(
            destination=logs.LogGroup(stack, c.FAILOVER_LOGS, retention=c.LOG_RETENTION),
            level=sfn.LogLevel.ALL,
            include_execution_data=False,
        ),
        tracing_enabled=True,
    )
    machine.add_to_role_policy(
        iam.PolicyStatement(
            actions=["lambda:InvokeFunction"],
            resources=[targets[spec.key].function_arn for spec in steps],
        )
    )
    nag.acknowledge(
        machine.role,
        "IAM5[Resource::*]",
        "Step Functions delivers logs through CloudWatch Logs' log-delivery API and sends traces to X-Ray; "
        "neither has resource-level permissions",
    )
    return machine


def _definition_file(stack: Stack, config: Config) -> Path:
    """The ASL with TimeoutSeconds raised to the config's longest possible run (`config.workflow_timeout_s`),
    written beside the cloud assembly, which stages it as the definition's asset."""
    stage = Stage.of(stack)
    assert stage is not None, "a stack is always in a stage (the app)"
    path = Path(stage.outdir) / FAILOVER_ASL.name
    path.write_text(failover_definition(workflow_timeout_s(config)), encoding="utf-8")
    return path
