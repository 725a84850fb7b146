"""Events: the dcwatch bus and its archive, the rules of `dcwatch.wiring.RULES` (through a FIFO queue where a
function must judge one message at a time, else asynchronously, each with its dead-letter queue), the default
bus's execution-ended rule, and the bus's resource policy (each source from its one role)."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as lambda_destinations
from aws_cdk import aws_lambda_event_sources as lambda_event_sources
from aws_cdk import aws_sqs as sqs

from dcwatch.config import Config
from dcwatch.events import REPLAY_FIELD
from dcwatch.wiring import RULES, FunctionSpec, QueueSpec, execution_ended_rule, function, message_group
from dcwatch_infra import constants as c
from dcwatch_infra import nag
from dcwatch_infra.bus_policy import bus_policy, source_owners


class Bus:
    """The bus and what it feeds, in the stack itself (their logical ids are those they were deployed with).
    Built in steps: the bus first (functions name it), the rules once the functions exist, the policy once
    the roles it names exist."""

    def __init__(self, stack: Stack, config: Config):
        self.stack, self.config = stack, config
        self.bus = events.EventBus(stack, c.BUS, event_bus_name=c.bus_name(config.name))
        self.archive = self.bus.archive(
            c.ARCHIVE,
            archive_name=c.archive_name(config.name),
            description="every dcwatch event, for replay after an incident",
            event_pattern=events.EventPattern(account=[stack.account]),
            retention=c.ARCHIVE_RETENTION,
        )
        self.dead_letters: dict[str, sqs.Queue] = {}

    def arn(self) -> str:
        """The bus's ARN from its name, not from the bus: its own policy, and the roles that policy names, use it
        (a reference to the bus there would be a circular dependency)."""
        return self.stack.format_arn(service="events", resource="event-bus", resource_name=c.bus_name(self.config.name))

    def route(self, functions: Mapping[str, lambda_.Function]) -> None:
        """The rules of `dcwatch.wiring.RULES` to their functions."""
        for rule in RULES:
            target: events.IRuleTarget
            if rule.queue is not None:
                queue = self._rule_queue(rule.name, rule.queue, function(rule.target), functions[rule.target])
                target = events_targets.SqsQueue(queue, message_group_id=message_group(self.config.name))
            else:
                target = self._async_target(rule.name, functions[rule.target])
            cfn_rule = events.Rule(
                self.stack,
                c.rule_id(rule.name),
                event_bus=self.bus,
                description=f"{rule.name} to {rule.target}",
                event_pattern=_event_pattern(rule.pattern),
                targets=[target],
            ).node.default_child
            for key, value in _beyond_l2(rule.pattern).items():  # `replay-name`: the L2 has no such field
                cfn_rule.add_property_override(f"EventPattern.{key}", value)  # type: ignore[union-attr]

    def route_execution_ends(self, state_machine_arn: str, functions: Mapping[str, lambda_.IFunction]) -> None:
        """Step Functions reports its executions' ends to the default bus, not to ours."""
        rule = execution_ended_rule(state_machine_arn)
        events.Rule(
            self.stack,
            c.rule_id(rule.name),
            description=f"{rule.name} to {rule.target}: this workflow's executions stopped or timed out",
            event_pattern=_event_pattern(rule.pattern),
            targets=[
                events_targets.LambdaFunction(
                    functions[rule.target], max_event_age=c.RESULT_MAX_AGE, retry_attempts=c.ENDED_RETRIES
                )
            ],
        )

    def restrict_sources(self, evaluator_role_arn: str, agent_role_arns: Mapping[str, str]) -> None:
        """Each dcwatch source from its one role only (`bus_policy`): the bus's inline resource policy."""
        owners = source_owners(
            self.config,
            probe_role_arn=self._probe_role_arn,
            evaluator_role_arn=evaluator_role_arn,
            agent_role_arns=dict(agent_role_arns),
        )
        cfn_bus: events.CfnEventBus = self.bus.node.default_child  # type: ignore[assignment]
        cfn_bus.policy = bus_policy(self.arn(), owners)

    def _probe_role_arn(self, vantage: str) -> str:
        return self.stack.format_arn(
            service="iam", region="", resource="role", resource_name=c.probe_role_name(self.config.name, vantage)
        )

    def _async_target(self, name: str, consumer: lambda_.Function) -> events.IRuleTarget:
        """A rule's function invoked asynchronously: what EventBridge cannot deliver, and what the function failed
        on every retry, is kept in the rule's dead-letter queue (an alarm watches it) rather than lost."""
        dead = sqs.Queue(
            self.stack,
            c.dead_letter_id(name),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        nag.acknowledge(
            dead,
            "SQS3",
            "it is a dead-letter queue: of an EventBridge target and of the function's asynchronous invocations",
        )
        consumer.configure_async_invoke(
            on_failure=lambda_destinations.SqsDestination(dead), max_event_age=c.RESULT_MAX_AGE, retry_attempts=2
        )
        self.dead_letters[name] = dead
        return events_targets.LambdaFunction(consumer, max_event_age=c.RESULT_MAX_AGE, dead_letter_queue=dead)

    def _rule_queue(self, name: str, spec: QueueSpec, consumer: FunctionSpec, fn: lambda_.Function) -> sqs.Queue:
        """The FIFO queue of a queued rule (`wiring.QueueSpec`), its dead-letter queue, and the function's event
        source: batches, the partial batch response, and the one message group that keeps it a single writer."""
        dead = sqs.Queue(
            self.stack,
            c.dead_letter_id(name),
            fifo=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        queue = sqs.Queue(
            self.stack,
            c.queue_id(name),
            fifo=True,
            # EventBridge sends no deduplication id; its retries of one event carry the same content.
            content_based_deduplication=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=c.RESULT_MAX_AGE,
            visibility_timeout=Duration.seconds(spec.visibility_timeout_s(consumer.timeout_s)),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dead, max_receive_count=spec.max_receives),
        )
        fn.add_event_source(
            lambda_event_sources.SqsEventSource(queue, batch_size=spec.batch_size, report_batch_item_failures=True)
        )
        self.dead_letters[name] = dead
        return queue


def _event_pattern(pattern: dict[str, object]) -> events.EventPattern:
    """The RuleSpec's pattern as the L2 takes it (`detail-type` -> `detail_type`, `{"prefix": p}` ->
    `Match.prefix(p)`); rendered back verbatim."""

    def values(value: object) -> object:
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict) and set(value[0]) == {"prefix"}:
            return events.Match.prefix(value[0]["prefix"])
        return value

    known = {key: value for key, value in pattern.items() if key not in _beyond_l2(pattern)}
    return events.EventPattern(**{key.replace("-", "_"): values(value) for key, value in known.items()})  # type: ignore[arg-type]


def _beyond_l2(pattern: dict[str, object]) -> dict[str, object]:
    """The pattern's fields `events.EventPattern` has no parameter for (`replay-name`), set on the L1."""
    return {key: value for key, value in pattern.items() if key == REPLAY_FIELD}
