"""The dcwatch stack for one pair of sites: probe, evaluate, fail over, alert, watch the watcher.

Functions, rules, tables and the workflow's task names come from `dcwatch.wiring`, the same tables the
local runtime builds from; where each runs comes from `config.topology` (`dcwatch.topology`), the model
the local runtime and the decision use too; the config file decides everything site-specific
(schedule, network, secrets, zones, subscribers, tags).

Egress of the functions inside the VPC (the config's `network.security_group_ids`; the stack creates
no security group): to the sites over the VPN or Direct Connect, the vCenters (their URL's port, 443
by default), the site checks' endpoints (storage mirror APIs, ...), the service checks' ports and the
HTTP hooks' URLs; DNS checks need their resolver's port 53. To AWS, through a NAT gateway or VPC
endpoints: the APIs of `dcwatch.topology.AWS_CALLS`, which the tests hold equal to the grants below. Nothing
inbound: every connection starts from the function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Annotations, ArnFormat, CfnOutput, Duration, Environment, RemovalPolicy, Stack, Stage, Tags
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as lambda_destinations
from aws_cdk import aws_lambda_event_sources as lambda_event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from dcwatch.adapters.agent_aws import SITE_LEASE_PREFIX
from dcwatch.config import Config, workflow_timeout_s
from dcwatch.config.hooks import HOOK_STEPS
from dcwatch.events import EVALUATOR_SOURCE, REPLAY_FIELD, SITE_STATUS_CHANGED
from dcwatch.topology import VantagePoint
from dcwatch.wiring import (
    FAILOVER_ASL,
    FUNCTIONS,
    RULES,
    STEPS,
    TABLES,
    FunctionSpec,
    QueueSpec,
    execution_ended_rule,
    failover_definition,
    failover_task_functions,
    function,
    message_group,
    step_arns,
)
from dcwatch.zones import ENV_HOSTED_ZONE_IDS, encode_zone_ids
from dcwatch_infra import constants as c
from dcwatch_infra import nag
from dcwatch_infra.agents import AgentTrust, SiteAgentRoles
from dcwatch_infra.append_only import append_only_policy
from dcwatch_infra.bus_policy import bus_policy, put_events, source_owners
from dcwatch_infra.dns_access import grant_dns
from dcwatch_infra.functions import dcwatch_function, probe_function
from dcwatch_infra.layers import code_layers
from dcwatch_infra.monitoring import Monitoring, Vantage
from dcwatch_infra.schedules import probe_schedule, probe_schedule_role

# Who may do what, by function key ("Probe": every probe, whatever its vantage point) or by workflow step (the
# function that runs it: Steps or SiteSteps, `dcwatch.wiring.STEPS`); a function not named here gets nothing of it.
VCENTER_USERS = (
    "Probe",
    "CheckStandby",
    "Fence",
    "StartGroup",
    "CheckGroup",
    "ShutdownGroup",
    "CheckShutdown",
    "PrepareDrill",
    "CleanUpDrill",
)
# Each its own source and detail-type only (`bus_policy`); each probe its own vantage point's (`probe_function`).
BUS_PUBLISHERS = {"Evaluate": (EVALUATOR_SOURCE, SITE_STATUS_CHANGED)}
# Control: the automation switch, acknowledgements; AgentReports: each site agent's latest report, its silence.
STATE_WRITERS = ("Evaluate", "AgentReports", "RecordAudit", "Control")
# ValidateRequest: a migration, failback or drill is checked against the recorded active site; ProveFenced: the
# standby agent's latest report, which the evaluator keeps there.
STATE_READERS = ("ValidateRequest", "ProveFenced")
# Evaluate and AgentReports: the decision record of every change they announce.
AUDIT_APPENDERS = ("Evaluate", "AgentReports", "RecordAudit", "NotifyFailure", "Control", "ExecutionEnded")
ALERT_PUBLISHERS = ("Evaluate", "AgentReports", "Notify", "NotifyFailure", "RequestApproval", "ExecutionEnded")
# StartGroup, ShutdownGroup and SwitchDns renew the lock before the stretch each starts.
LOCK_HOLDERS = (
    "Evaluate",
    "AcquireLease",
    "StartGroup",
    "ShutdownGroup",
    "SwitchDns",
    "ReleaseLease",
    "Approved",
    "CleanUpDrill",
)
# The lease: conditional put to take it, update to renew, delete to give it back, get to name its holder.
LEASE_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
# A rejected request gives back the lock the evaluator or the CLI took for its execution (conditional delete).
LOCK_RELEASERS = ("ValidateRequest",)
# A stopped or timed-out execution's lock: given back only if that execution holds it; its holder named if not.
LOCK_INSPECTORS = ("ExecutionEnded",)
# The site agents' leases (the lease proof): read only, and only their items (`site-lease#<site>`).
SITE_LEASE_READERS = ("ProveFenced",)
WORKFLOW_STARTERS = ("Evaluate",)
APPROVAL_ANSWERERS = ("Control",)  # SendTaskSuccess: the answer to the workflow's approval gate
# Route 53, record by record: `dns_access.py`.
# Steps that act once per run: their Powertools idempotency records (get, conditional put, update, delete).
ONCE_ACTORS = (
    "StartGroup",
    "CheckGroup",
    "SwitchDns",
    "LowerTtl",
    "RequestApproval",
    "Notify",
    "RecordAudit",
    "NotifyFailure",
    "ExecutionEnded",
)
IDEMPOTENCY_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
# Steps that run recovery hooks (`dcwatch.config.hooks`): they may invoke exactly the Lambda hooks the config names.
HOOK_CALLERS = HOOK_STEPS
# Functions that run the config's checks (`app.probe`): they read the checks' `headers_secret`s; hook callers
# read the hooks' own.
CHECK_RUNNERS = ("Probe", "CheckGroup", "VerifyServices")
# Appending is all the audit trail allows: no update, no delete (the adapter also refuses to overwrite).
AUDIT_APPEND_ACTIONS = ["dynamodb:PutItem"]


def probe_rate_minutes(interval_s: int) -> int:
    """EventBridge Scheduler's finest rate is one minute; shorter intervals run as rounds inside one call."""
    return max(1, interval_s // 60)


def probe_period(config: Config) -> Duration:
    return Duration.minutes(probe_rate_minutes(config.probe.interval_s))


@dataclass(frozen=True)
class SynthInputs:
    """What the stack is built from besides the config: the synth's CDK context."""

    config_path: Path
    placeholder_deps: bool = False  # the offline stand-in for the dependency layer: deploys, cannot run
    hosted_zone_ids: dict[str, str] | None = None
    agent_trust_anchor_arn: str | None = None  # the site agents' roles trust this Roles Anywhere anchor
    agent_principal: str | None = None  # or this account or IAM principal (trials)
    # Provisioned environments of each step function (`-c warm_steps=N`): a failover meets no cold start.
    warm_steps: int = 0


class DcwatchStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        inputs: SynthInputs,
        env: Environment | None = None,
    ):
        sites = " and ".join(s.name for s in config.sites)
        super().__init__(
            scope,
            construct_id,
            env=env,
            description=f"dcwatch {config.name}: watchdog and failover of {sites}",
            tags=config.tags,  # the CloudFormation stack's own (explicitStackTags); Tags.of below tags its resources
        )
        self.config = config
        self.topology = config.topology
        self.hosted_zone_ids = inputs.hosted_zone_ids or {}
        for warning_id, warning in config.warnings.items():
            Annotations.of(self).add_warning_v2(warning_id, warning)
        for key, value in config.tags.items():
            Tags.of(self).add(key, value)

        self.bus = events.EventBus(self, c.BUS, event_bus_name=c.bus_name(config.name))
        self.archive = self.bus.archive(
            c.ARCHIVE,
            archive_name=c.archive_name(config.name),
            description="every dcwatch event, for replay after an incident",
            event_pattern=events.EventPattern(account=[self.account]),
            retention=c.ARCHIVE_RETENTION,
        )
        self.tables = {spec.key: self._table(spec.key) for spec in TABLES}
        self.table = self.tables["State"]
        self.topic = self._alerts_topic()
        self.layers = code_layers(self, inputs.config_path, inputs.placeholder_deps, config.name)
        self.deps_layer, self.core_layer, self.config_layer = self.layers

        # The probes of the home region; those of other regions are their probe stacks' (`probe_stack.py`).
        self.probes = {vantage.name: self._probe(vantage) for vantage in self._home_vantage_points()}
        # "Probe" of the wiring: the first vantage point's (the one outside any VPC every deployment has).
        first_probe = next(iter(self.probes.values()))
        self.functions = {spec.key: first_probe if spec.key == "Probe" else self._function(spec) for spec in FUNCTIONS}
        self.step_targets = self._step_targets(inputs.warm_steps)
        self.state_machine = self._failover_workflow()
        # Only Evaluate starts the workflow, and it is not one of its steps: no dependency cycle.
        self.functions["Evaluate"].add_environment(c.ENV_STATE_MACHINE_ARN, self.state_machine.state_machine_arn)

        self.dead_letters: dict[str, sqs.Queue] = {}
        for rule in RULES:
            target: events.IRuleTarget
            if rule.queue is not None:
                queue = self._rule_queue(rule.name, rule.queue, function(rule.target))
                target = events_targets.SqsQueue(queue, message_group_id=message_group(config.name))
            else:
                target = self._async_target(rule.name, self.functions[rule.target])
            cfn_rule = events.Rule(
                self,
                c.rule_id(rule.name),
                event_bus=self.bus,
                description=f"{rule.name} to {rule.target}",
                event_pattern=_event_pattern(rule.pattern),
                targets=[target],
            ).node.default_child
            for key, value in _beyond_l2(rule.pattern).items():  # `replay-name`: the L2 has no such field
                cfn_rule.add_property_override(f"EventPattern.{key}", value)  # type: ignore[union-attr]
        self._execution_ended_rule()
        self._probe_schedules()
        self._grant(self.hosted_zone_ids)
        self.agent_roles = self._site_agent_roles(inputs)
        self._bus_policy()

        self.monitoring = Monitoring(
            self,
            config=config,
            period=probe_period(config),
            topic=self.topic,
            vantages=[
                Vantage(v.name, self.probes.get(v.name), v.placement.region) for v in self.topology.vantage_points
            ],
            evaluate=self.functions["Evaluate"],
            dead_letters=self.dead_letters,
            steps=[self.functions[spec.key] for spec in failover_task_functions()],
            state_machine=self.state_machine,
            execution_ended=self.functions["ExecutionEnded"],
        )

        CfnOutput(self, c.OUTPUT_BUS_NAME, value=self.bus.event_bus_name)
        CfnOutput(self, c.OUTPUT_STATE_MACHINE_ARN, value=self.state_machine.state_machine_arn)
        CfnOutput(self, c.OUTPUT_TOPIC_ARN, value=self.topic.topic_arn)
        CfnOutput(self, c.OUTPUT_TABLE_NAME, value=self.table.table_name)
        CfnOutput(self, c.OUTPUT_AUDIT_TABLE_NAME, value=self.tables["Audit"].table_name)
        CfnOutput(self, c.OUTPUT_LOCKS_TABLE_NAME, value=self.tables["Locks"].table_name)
        CfnOutput(self, c.OUTPUT_DASHBOARD, value=c.dashboard_name(config.name))
        CfnOutput(
            self,
            c.OUTPUT_CONTROL_POLICY,
            value=self._control_invokers().managed_policy_arn,
            description="attach to the operators' role or group: it lets them invoke the control function",
        )

    def _control_invokers(self) -> iam.ManagedPolicy:
        """The one grant of the control function (automation, ack, approve/deny): attached by the account's
        admins to the operators. The stack opens it to no one else: no resource policy, no function URL."""
        return iam.ManagedPolicy(
            self,
            c.CONTROL_INVOKERS,
            description=f"dcwatch {self.config.name}: invoke the control function (operators only)",
            statements=[
                iam.PolicyStatement(
                    actions=["lambda:InvokeFunction"], resources=[self.functions["Control"].function_arn]
                )
            ],
        )

    def _site_agent_roles(self, inputs: SynthInputs) -> SiteAgentRoles | None:
        """One role per site agent when the config has agents: its own lease item, its own reports, its own fence
        records (`dcwatch.agent.policy`); trusted by Roles Anywhere for that site's certificate, or a principal."""
        fencing = self.config.fencing
        if fencing is None or not fencing.agents:
            return None
        principals: tuple[iam.IPrincipal, ...] = ()
        if inputs.agent_principal:
            principal = inputs.agent_principal
            principals = (iam.AccountPrincipal(principal) if principal.isdigit() else iam.ArnPrincipal(principal),)
        if inputs.agent_trust_anchor_arn is None and not principals:
            Annotations.of(self).add_warning_v2(
                "dcwatch:agentTrust",
                "the config has site agents (fencing.agents) but no role was created for them: give "
                "-c agent_trust_anchor_arn=<IAM Roles Anywhere trust anchor> (or -c agent_principal=<account or "
                "IAM ARN> for trials); until then the agents have no credentials for their lease and reports",
            )
            return None
        roles = SiteAgentRoles(
            self,
            c.SITE_AGENTS,
            config=self.config,
            # Built from their parts: the policy takes account and region from these ARNs (`agent_policy`).
            locks_table_arn=self._arn("dynamodb", "table", self.tables["Locks"].table_name),
            audit_table_arn=self._arn("dynamodb", "table", self.tables["Audit"].table_name),
            bus_arn=self._bus_arn(),
            trust=AgentTrust(trust_anchor_arn=inputs.agent_trust_anchor_arn, principals=principals),
        )
        for site, role in roles.roles.items():
            CfnOutput(self, c.agent_role_output(site), value=role.role_arn, description=f"the role of {site}'s agent")
        return roles

    def _table(self, key: str) -> dynamodb.Table:
        spec = next(t for t in TABLES if t.key == key)
        return dynamodb.Table(
            self,
            c.table_id(key),
            partition_key=dynamodb.Attribute(name=spec.partition_key, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=spec.sort_key, type=dynamodb.AttributeType.STRING)
            if spec.sort_key
            else None,
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

    def _environment(self) -> dict[str, str]:
        return {
            c.ENV_CONFIG: c.CONFIG_IN_LAMBDA,
            c.ENV_BUS_NAME: self.bus.event_bus_name,
            c.ENV_TOPIC_ARN: self.topic.topic_arn,
            "POWERTOOLS_METRICS_NAMESPACE": c.metrics_namespace(self.config.name),
            **{spec.env: self.tables[spec.key].table_name for spec in TABLES},
            ENV_HOSTED_ZONE_IDS: encode_zone_ids(self.hosted_zone_ids),
        }

    def _bus_policy(self) -> None:
        """Each dcwatch source from its one role only (`bus_policy`): the bus's inline resource policy."""
        account_arn = self.format_arn
        owners = source_owners(
            self.config,
            probe_role_arn=lambda v: account_arn(
                service="iam", region="", resource="role", resource_name=c.probe_role_name(self.config.name, v)
            ),
            evaluator_role_arn=self.functions["Evaluate"].role.role_arn,  # type: ignore[union-attr]
            agent_role_arns={s: r.role_arn for s, r in self.agent_roles.roles.items()} if self.agent_roles else {},
        )
        cfn_bus: events.CfnEventBus = self.bus.node.default_child  # type: ignore[assignment]
        cfn_bus.policy = bus_policy(self._bus_arn(), owners)

    def _bus_arn(self) -> str:
        """The bus's ARN from its name, not from the bus: its own policy, and the roles that policy names, use it
        (a reference to the bus there would be a circular dependency)."""
        return self._arn("events", "event-bus", c.bus_name(self.config.name))

    def _async_target(self, name: str, consumer: lambda_.Function) -> events.IRuleTarget:
        """A rule's function invoked asynchronously: what EventBridge cannot deliver, and what the function failed
        on every retry, is kept in the rule's dead-letter queue (an alarm watches it) rather than lost."""
        dead = sqs.Queue(
            self,
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

    def _rule_queue(self, name: str, spec: QueueSpec, consumer: FunctionSpec) -> sqs.Queue:
        """The FIFO queue of a queued rule (`wiring.QueueSpec`), its dead-letter queue, and the function's event
        source: batches, the partial batch response, and the one message group that keeps it a single writer."""
        dead = sqs.Queue(
            self,
            c.dead_letter_id(name),
            fifo=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        queue = sqs.Queue(
            self,
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
        self.functions[consumer.key].add_event_source(
            lambda_event_sources.SqsEventSource(queue, batch_size=spec.batch_size, report_batch_item_failures=True)
        )
        self.dead_letters[name] = dead
        return queue

    def _function(self, spec: FunctionSpec) -> lambda_.Function:
        return dcwatch_function(
            self,
            c.function_id(spec.key),
            spec,
            layers=self.layers,
            environment=self._environment(),
            placement=self.topology.placement(spec.key),
            network=self.config.network,
        )

    def _home_vantage_points(self) -> list[VantagePoint]:
        here = [v for v in self.topology.vantage_points if v.placement.region is None]
        if not here:
            raise ValueError(f"the topology of {self.config.name} has no vantage point in the home region")
        return here

    def _probe(self, vantage: VantagePoint) -> lambda_.Function:
        return probe_function(
            self,
            vantage.name,
            deployment=self.config.name,
            bus_arn=self.bus.event_bus_arn,
            layers=self.layers,
            environment=self._environment(),
            period=probe_period(self.config),
            placement=vantage.placement,
            network=self.config.network,
        )

    def _alerts_topic(self) -> sns.Topic:
        # Our own key, not aws/sns: CloudWatch alarms can only publish to a topic whose key lets them.
        key = kms.Key(
            self,
            c.ALERTS_KEY,
            description=f"dcwatch {self.config.name}: encrypts the alerts topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        alarms = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        same_account = {"StringEquals": {"aws:SourceAccount": self.account}}
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToTheAlertsTopic",
                principals=[alarms],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions=same_account,
            )
        )
        topic = sns.Topic(
            self,
            c.ALERTS_TOPIC,
            display_name=f"dcwatch {self.config.name}",
            master_key=key,
            enforce_ssl=True,
        )
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[alarms],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions=same_account,
            )
        )
        for address in self.config.alerts.email:
            topic.add_subscription(subscriptions.EmailSubscription(address))
        return topic

    def _failover_definition_file(self) -> Path:
        """The ASL with TimeoutSeconds raised to the config's longest possible run (`config.workflow_timeout_s`),
        written beside the cloud assembly, which stages it as the definition's asset."""
        path = Path(Stage.of(self).outdir) / FAILOVER_ASL.name
        path.write_text(failover_definition(workflow_timeout_s(self.config)), encoding="utf-8")
        return path

    def _failover_workflow(self) -> sfn.StateMachine:
        steps = failover_task_functions()  # fails on a Task naming a step dcwatch.wiring does not have
        machine = sfn.StateMachine(
            self,
            c.FAILOVER,
            state_machine_name=c.state_machine_name(self.config.name),
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(self._failover_definition_file())),
            # `${<step>Arn}`: the function that runs the step (Steps or SiteSteps).
            definition_substitutions=step_arns({spec.key: self.step_targets[spec.key].function_arn for spec in steps}),
            # Every event, without its input, output or parameters: RequestApproval's parameters carry the task
            # token that answers the approval gate, and Step Functions cannot leave one field out of its logs.
            # The data stays in the execution history, behind states:GetExecutionHistory.
            logs=sfn.LogOptions(
                destination=logs.LogGroup(self, c.FAILOVER_LOGS, retention=c.LOG_RETENTION),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,
            ),
            tracing_enabled=True,
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[self.step_targets[spec.key].function_arn for spec in steps],
            )
        )
        nag.acknowledge(
            machine.role,
            "IAM5[Resource::*]",
            "Step Functions delivers logs through CloudWatch Logs' log-delivery API and sends traces to X-Ray; "
            "neither has resource-level permissions",
        )
        return machine

    def _step_targets(self, warm: int) -> dict[str, lambda_.IFunction]:
        """What the workflow invokes: each step function, or with `warm` an alias of its current version with
        that many provisioned environments (initialized ahead, they import every step's modules then)."""
        steps = failover_task_functions()
        if not warm:
            return {spec.key: self.functions[spec.key] for spec in steps}
        return {
            spec.key: lambda_.Alias(
                self,
                c.warm_alias_id(spec.key),
                alias_name=c.WARM_ALIAS,
                version=self.functions[spec.key].current_version,
                provisioned_concurrent_executions=warm,
            )
            for spec in steps
        }

    def _execution_ended_rule(self) -> None:
        """Step Functions reports its executions' ends to the default bus, not to ours."""
        rule = execution_ended_rule(self.state_machine.state_machine_arn)
        events.Rule(
            self,
            c.rule_id(rule.name),
            description=f"{rule.name} to {rule.target}: this workflow's executions stopped or timed out",
            event_pattern=_event_pattern(rule.pattern),
            targets=[
                events_targets.LambdaFunction(
                    self.functions[rule.target], max_event_age=c.RESULT_MAX_AGE, retry_attempts=c.ENDED_RETRIES
                )
            ],
        )

    def _probe_schedules(self) -> None:
        interval_s = self.config.probe.interval_s
        period = probe_period(self.config)
        if interval_s % 60 and interval_s > 60:
            Annotations.of(self).add_warning_v2(
                "dcwatch:probeInterval",
                f"probe.interval_s={interval_s} is not a whole number of minutes: the probe runs every "
                f"{period.to_minutes()} min, so a site is DOWN after "
                f"{self.config.thresholds.failures_to_down} x {period.to_minutes()} min at the earliest",
            )
        role = probe_schedule_role(self)
        for vantage, probe in self.probes.items():
            probe_schedule(self, c.probe_id(vantage), probe, role, period, f"{self.config.name} from {vantage}")

    def _grant(self, hosted_zone_ids: dict[str, str]) -> None:
        secrets = [
            secretsmanager.Secret.from_secret_name_v2(
                self, c.vcenter_secret_id(site.name), site.vcenter.credentials_secret
            )
            for site in self.config.sites
        ]
        for fn in self._holders(VCENTER_USERS):
            for secret in secrets:
                secret.grant_read(fn)
        for key, (source, detail_type) in BUS_PUBLISHERS.items():
            self.functions[key].add_to_role_policy(put_events(self.bus.event_bus_arn, source, detail_type))
        headers_secrets = {
            CHECK_RUNNERS: self.config.check_headers_secrets(),
            HOOK_CALLERS: [h.headers_secret for h in self.config.recovery_hooks if h.headers_secret],
        }
        for holders, names in headers_secrets.items():
            for fn in self._holders(holders) if names else []:
                fn.add_to_role_policy(
                    iam.PolicyStatement(
                        actions=["secretsmanager:GetSecretValue"],
                        resources=[
                            self.format_arn(
                                service="secretsmanager",
                                resource="secret",
                                resource_name=f"{name}-??????",
                                arn_format=ArnFormat.COLON_RESOURCE_NAME,
                            )
                            for name in dict.fromkeys(names)
                        ],
                    )
                )
        for fn in self._holders(STATE_WRITERS):
            self.table.grant_read_write_data(fn)
        for fn in self._holders(STATE_READERS):
            self.table.grant_read_data(fn)
        for fn in self._holders(AUDIT_APPENDERS):
            self.tables["Audit"].grant(fn, *AUDIT_APPEND_ACTIONS)
        for fn in self._holders(LOCK_HOLDERS):
            self.tables["Locks"].grant(fn, *LEASE_ACTIONS)
        for fn in self._holders(LOCK_RELEASERS):
            self.tables["Locks"].grant(fn, "dynamodb:DeleteItem")
        for fn in self._holders(LOCK_INSPECTORS):
            self.tables["Locks"].grant(fn, "dynamodb:DeleteItem", "dynamodb:GetItem")
        for fn in self._holders(SITE_LEASE_READERS):
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["dynamodb:GetItem"],
                    resources=[self.tables["Locks"].table_arn],
                    conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{SITE_LEASE_PREFIX}*"]}},
                )
            )
        for fn in self._holders(ALERT_PUBLISHERS):
            self.topic.grant_publish(fn)
            nag.acknowledge(
                fn.role,  # type: ignore[arg-type]
                "IAM5[Action::kms:GenerateDataKey*]",
                "publishing to the KMS-encrypted alerts topic needs a data key of that one key (resource: its ARN)",
            )
        for fn in self._holders(WORKFLOW_STARTERS):
            self.state_machine.grant_start_execution(fn)
        for fn in self._holders(APPROVAL_ANSWERERS):
            # Not grant_task_response: the task-token actions take no resource but "*" (a state machine ARN
            # there matches nothing), and approve and deny both answer with SendTaskSuccess.
            fn.add_to_role_policy(iam.PolicyStatement(actions=["states:SendTaskSuccess"], resources=["*"]))
            nag.acknowledge(
                fn.role,  # type: ignore[arg-type]
                "IAM5[Resource::*]",
                "states:SendTaskSuccess has no resource-level permission; the task token names the one waiting task",
            )
        for fn in self._holders(ONCE_ACTORS):
            self.tables["Idempotency"].grant(fn, *IDEMPOTENCY_ACTIONS)
        hook_functions = sorted(self._hook_function_arns())
        for fn in self._holders(HOOK_CALLERS) if hook_functions else []:
            fn.add_to_role_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=hook_functions))

        grant_dns(self, self.config, hosted_zone_ids, self._holders)

    def _hook_function_arns(self) -> set[str]:
        """The Lambda hooks of the config, as ARNs (a bare name is a function of this account and region)."""
        hooks = self.config.recovery_hooks
        return {
            h.function
            if h.function.startswith("arn:")
            else self.format_arn(
                service="lambda",
                resource="function",
                resource_name=h.function,
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for h in hooks
            if h.function
        }

    def _holders(self, keys: Sequence[str]) -> list[lambda_.Function]:
        """The functions of these function keys or step keys, each once."""
        functions = {s.key: s.function for s in STEPS}
        found = [
            fn
            for key in keys
            for fn in (self.probes.values() if key == "Probe" else [self.functions[functions.get(key, key)]])
        ]
        return list(dict.fromkeys(found))

    def _arn(self, service: str, resource: str, name: str) -> str:
        return self.format_arn(service=service, resource=resource, resource_name=name)


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
