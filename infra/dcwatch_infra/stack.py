"""The dcwatch stack for one pair of sites: probe, evaluate, fail over, alert.

Functions, rules and the workflow's task names come from `dcwatch.wiring`, the same tables the local
runtime builds from; the config file decides everything site-specific (schedule, secrets, zones,
subscribers, tags).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Annotations, CfnOutput, Duration, Stack, Tags
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from dcwatch.config import Config
from dcwatch.wiring import FAILOVER_ASL, FUNCTIONS, FUNCTIONS_DIR, RULES, FunctionSpec, asl_variables
from dcwatch.wiring import failover_task_functions as workflow_steps
from dcwatch_infra import constants as c
from dcwatch_infra import layers

# Who may do what, by function key; a function not named here gets nothing of it.
VCENTER_USERS = ("Probe", "CheckStandby", "StartGroup", "CheckGroup")
BUS_PUBLISHERS = ("Probe", "Evaluate")
STATE_USERS = ("Evaluate", "RecordAudit", "NotifyFailure")
ALERT_PUBLISHERS = ("Notify", "NotifyFailure")
WORKFLOW_STARTERS = ("Evaluate",)
DNS_SWITCHERS = ("SwitchDns",)
DNS_WATCHERS = ("CheckDns",)

LOG_RETENTION = logs.RetentionDays.ONE_MONTH


def probe_rate_minutes(interval_s: int) -> int:
    """EventBridge Scheduler's finest rate is one minute."""
    return max(1, interval_s // 60)


class DcwatchStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        config_path: Path,
        bundle_deps: bool = False,
        hosted_zone_ids: dict[str, str] | None = None,
    ):
        sites = " and ".join(s.name for s in config.sites)
        super().__init__(scope, construct_id, description=f"dcwatch {config.name}: watchdog and failover of {sites}")
        self.config = config
        for key, value in config.tags.items():
            Tags.of(self).add(key, value)

        self.bus = events.EventBus(self, c.BUS, event_bus_name=c.bus_name(config.name))
        self.table = dynamodb.Table(
            self,
            c.STATE_TABLE,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
        )
        self.topic = self._alerts_topic()

        self.deps_layer = self._layer(
            c.DEPS_LAYER, layers.deps_code(bundle_deps), "third-party packages of the dcwatch functions"
        )
        self.core_layer = self._layer(c.CORE_LAYER, layers.core_code(), "the dcwatch core package")
        self.config_layer = self._layer(
            c.CONFIG_LAYER, layers.config_code(config_path), f"dcwatch config of {config.name}, at {c.CONFIG_IN_LAMBDA}"
        )
        self.functions = {spec.key: self._function(spec) for spec in FUNCTIONS}

        self.state_machine = self._failover_workflow()
        # Only Evaluate starts the workflow, and it is not one of its steps: no dependency cycle.
        self.functions["Evaluate"].add_environment(c.ENV_STATE_MACHINE_ARN, self.state_machine.state_machine_arn)

        for rule in RULES:
            events.Rule(
                self,
                c.rule_id(rule.name),
                event_bus=self.bus,
                description=f"{rule.name} to {rule.target}",
                event_pattern=_event_pattern(rule.pattern),
                targets=[events_targets.LambdaFunction(self.functions[rule.target])],
            )
        self._probe_schedule()
        self._grant(hosted_zone_ids or {})

        CfnOutput(self, c.OUTPUT_BUS_NAME, value=self.bus.event_bus_name)
        CfnOutput(self, c.OUTPUT_STATE_MACHINE_ARN, value=self.state_machine.state_machine_arn)
        CfnOutput(self, c.OUTPUT_TOPIC_ARN, value=self.topic.topic_arn)
        CfnOutput(self, c.OUTPUT_TABLE_NAME, value=self.table.table_name)

    def _layer(self, construct_id: str, code: lambda_.Code, description: str) -> lambda_.LayerVersion:
        return lambda_.LayerVersion(
            self,
            construct_id,
            code=code,
            description=description,
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
            compatible_architectures=[lambda_.Architecture.X86_64],
        )

    def _function(self, spec: FunctionSpec) -> lambda_.Function:
        return lambda_.Function(
            self,
            c.function_id(spec.key),
            description=spec.description,
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.X86_64,
            code=lambda_.Code.from_asset(str(FUNCTIONS_DIR / spec.code), exclude=c.CODE_EXCLUDES),
            handler=spec.handler,
            timeout=Duration.seconds(spec.timeout_s),
            memory_size=spec.memory_mb,
            layers=[self.deps_layer, self.core_layer, self.config_layer],
            tracing=lambda_.Tracing.ACTIVE,
            log_group=logs.LogGroup(self, c.function_logs_id(spec.key), retention=LOG_RETENTION),
            environment={
                c.ENV_CONFIG: c.CONFIG_IN_LAMBDA,
                c.ENV_BUS_NAME: self.bus.event_bus_name,
                c.ENV_TABLE_NAME: self.table.table_name,
                c.ENV_TOPIC_ARN: self.topic.topic_arn,
                "POWERTOOLS_SERVICE_NAME": c.POWERTOOLS_SERVICE,
            },
        )

    def _alerts_topic(self) -> sns.Topic:
        # The AWS managed key is enough for email and Lambda publishers; alarms would need our own key.
        topic = sns.Topic(
            self,
            c.ALERTS_TOPIC,
            display_name=f"dcwatch {self.config.name}",
            master_key=kms.Alias.from_alias_name(self, c.ALERTS_KEY, c.SNS_MANAGED_KEY_ALIAS),
            enforce_ssl=True,
        )
        for address in self.config.alerts.email:
            topic.add_subscription(subscriptions.EmailSubscription(address))
        return topic

    def _failover_workflow(self) -> sfn.StateMachine:
        steps = workflow_steps()
        unnamed = sorted(set(asl_variables()) - {spec.arn_variable for spec in steps})
        if unnamed:
            raise ValueError(f"{FAILOVER_ASL.name} names {unnamed}, which no function of dcwatch.wiring provides")
        machine = sfn.StateMachine(
            self,
            c.FAILOVER,
            state_machine_name=c.state_machine_name(self.config.name),
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(FAILOVER_ASL)),
            definition_substitutions={spec.arn_variable: self.functions[spec.key].function_arn for spec in steps},
            logs=sfn.LogOptions(
                destination=logs.LogGroup(self, c.FAILOVER_LOGS, retention=LOG_RETENTION),
                level=sfn.LogLevel.ALL,
                include_execution_data=True,
            ),
            tracing_enabled=True,
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[self.functions[spec.key].function_arn for spec in steps],
            )
        )
        return machine

    def _probe_schedule(self) -> None:
        interval_s = self.config.probe.interval_s
        minutes = probe_rate_minutes(interval_s)
        if interval_s % 60:
            Annotations.of(self).add_warning_v2(
                "dcwatch:probeInterval",
                f"probe.interval_s={interval_s} is not a whole number of minutes: the probe runs every {minutes} min, "
                f"so a site is DOWN after {self.config.thresholds.failures_to_down} x {minutes} min at the earliest",
            )
        role = iam.Role(
            self,
            c.PROBE_SCHEDULE_ROLE,
            description="EventBridge Scheduler invokes the Probe function",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": self.account}}
            ),
        )
        scheduler.Schedule(
            self,
            c.PROBE_SCHEDULE,
            description=f"dcwatch {self.config.name}: one probe round",
            schedule=scheduler.ScheduleExpression.rate(Duration.minutes(minutes)),
            # A round that cannot run within its interval is superseded by the next one.
            target=scheduler_targets.LambdaInvoke(
                self.functions["Probe"], role=role, retry_attempts=2, max_event_age=Duration.minutes(minutes)
            ),
        )

    def _grant(self, hosted_zone_ids: dict[str, str]) -> None:
        fn = self.functions
        secrets = [
            secretsmanager.Secret.from_secret_name_v2(
                self, c.vcenter_secret_id(site.name), site.vcenter.credentials_secret
            )
            for site in self.config.sites
        ]
        for key in VCENTER_USERS:
            for secret in secrets:
                secret.grant_read(fn[key])
        for key in BUS_PUBLISHERS:
            self.bus.grant_put_events_to(fn[key])
        for key in STATE_USERS:
            self.table.grant_read_write_data(fn[key])
        for key in ALERT_PUBLISHERS:
            self.topic.grant_publish(fn[key])
        for key in WORKFLOW_STARTERS:
            self.state_machine.grant_start_execution(fn[key])

        zones = sorted({service.dns.zone for service in self.config.services})
        if hosted_zone_ids:
            zone_arns = [self._route53_arn("hostedzone", hosted_zone_ids[zone]) for zone in zones]
        else:
            # Without `-c hosted_zone_ids`, any zone of the account; the production setup narrows it.
            zone_arns = [self._route53_arn("hostedzone", "*")]
        for key in DNS_SWITCHERS:
            fn[key].add_to_role_policy(
                iam.PolicyStatement(actions=["route53:ChangeResourceRecordSets"], resources=zone_arns)
            )
            # Finding a zone's id by its name has no resource-level permission.
            fn[key].add_to_role_policy(iam.PolicyStatement(actions=["route53:ListHostedZonesByName"], resources=["*"]))
        for key in DNS_WATCHERS:
            fn[key].add_to_role_policy(
                iam.PolicyStatement(actions=["route53:GetChange"], resources=[self._route53_arn("change", "*")])
            )

    def _route53_arn(self, resource: str, name: str) -> str:
        return f"arn:{self.partition}:route53:::{resource}/{name}"


def _event_pattern(pattern: dict[str, object]) -> events.EventPattern:
    """The RuleSpec's pattern as the L2 takes it (`detail-type` -> `detail_type`); rendered back verbatim."""
    return events.EventPattern(**{key.replace("-", "_"): value for key, value in pattern.items()})  # type: ignore[arg-type]
