"""The dcwatch stack for one pair of sites: probe, evaluate, fail over, alert, watch the watcher.

Functions, rules, tables and the workflow's task names come from `dcwatch.wiring`, the same tables the
local runtime builds from; where each runs comes from `config.topology` (`dcwatch.topology`), the model
the local runtime and the decision use too; the config file decides everything site-specific
(schedule, network, secrets, zones, subscribers, tags).

Egress of the functions inside the VPC (the config's `network.security_group_ids`; the stack creates
no security group): to the sites over the VPN or Direct Connect, the vCenters (their URL's port, 443
by default), the site checks' endpoints (storage mirror APIs, ...), the service checks' ports and the
HTTP hooks' URLs; DNS checks need their resolver's port 53. To AWS, through a NAT gateway or VPC
endpoints: the APIs of `dcwatch.topology.AWS_CALLS`, which the tests hold equal to the grants (`access.py`). Nothing
inbound: every connection starts from the function.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Annotations, CfnOutput, Environment, Stack, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from dcwatch.config import Config
from dcwatch.wiring import FUNCTIONS, TABLES, FunctionSpec, failover_task_functions
from dcwatch.zones import ENV_HOSTED_ZONE_IDS, encode_zone_ids
from dcwatch_infra import constants as c
from dcwatch_infra.access import Access
from dcwatch_infra.agents import AgentTrust, SiteAgentRoles
from dcwatch_infra.alerts import alerts_topic
from dcwatch_infra.bus import Bus
from dcwatch_infra.functions import dcwatch_function
from dcwatch_infra.layers import code_layers
from dcwatch_infra.monitoring import Monitoring, Vantage
from dcwatch_infra.probes import home_probes, probe_period, schedule_probes
from dcwatch_infra.reports import reports_bucket
from dcwatch_infra.schedules import drill_schedule
from dcwatch_infra.tables import tables
from dcwatch_infra.workflow import failover_workflow, step_targets


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
    """The capabilities, in order: events, tables, alerts, probes and functions, workflow, routes, access
    (`access.py`: the grant matrix), site agents, monitoring. Each builds in the stack's own scope, not in a
    construct of its own: a new scope would rename, and so replace, every deployed resource (the audit table,
    retained and deletion-protected, would block the deployment)."""

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

        self.events = Bus(self, config)
        self.bus, self.archive = self.events.bus, self.events.archive
        self.tables = tables(self)
        self.table = self.tables["State"]
        self.topic = alerts_topic(self, config)
        self.reports = reports_bucket(self, config)
        self.layers = code_layers(self, inputs.config_path, inputs.placeholder_deps, config.name)
        self.deps_layer, self.core_layer, self.config_layer = self.layers

        # The probes of the home region; those of other regions are their probe stacks' (`probe_stack.py`).
        self.probes = home_probes(
            self, config, bus_arn=self.bus.event_bus_arn, layers=self.layers, environment=self._environment()
        )
        # "Probe" of the wiring: the first vantage point's (the one outside any VPC every deployment has).
        first_probe = next(iter(self.probes.values()))
        self.functions = {spec.key: first_probe if spec.key == "Probe" else self._function(spec) for spec in FUNCTIONS}
        self.step_targets = step_targets(self, self.functions, inputs.warm_steps)
        self.state_machine = failover_workflow(self, config, self.step_targets)
        # Only Evaluate starts the workflow, and it is not one of its steps: no dependency cycle.
        self.functions["Evaluate"].add_environment(c.ENV_STATE_MACHINE_ARN, self.state_machine.state_machine_arn)

        self.events.route(self.functions)
        self.dead_letters = self.events.dead_letters
        self.events.route_execution_ends(self.state_machine.state_machine_arn, self.functions)
        schedule_probes(self, config, self.probes)
        self.drill_schedule = drill_schedule(self, config, self.state_machine)
        if self.drill_schedule is not None:
            self.dead_letters[c.DRILL_SCHEDULE] = self.drill_schedule[1]
        self.access = Access(self, self.hosted_zone_ids)
        self.agent_roles = self._site_agent_roles(inputs)
        self.events.restrict_sources(
            evaluator_role_arn=self.functions["Evaluate"].role.role_arn,  # type: ignore[union-attr]
            agent_role_arns={s: r.role_arn for s, r in self.agent_roles.roles.items()} if self.agent_roles else {},
        )

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
        CfnOutput(self, c.OUTPUT_REPORTS_BUCKET, value=self.reports.bucket_name)
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
            locks_table_arn=self._table_arn("Locks"),
            audit_table_arn=self._table_arn("Audit"),
            bus_arn=self.events.arn(),
            trust=AgentTrust(trust_anchor_arn=inputs.agent_trust_anchor_arn, principals=principals),
        )
        for site, role in roles.roles.items():
            CfnOutput(self, c.agent_role_output(site), value=role.role_arn, description=f"the role of {site}'s agent")
        return roles

    def _environment(self) -> dict[str, str]:
        return {
            c.ENV_CONFIG: c.CONFIG_IN_LAMBDA,
            c.ENV_BUS_NAME: self.bus.event_bus_name,
            c.ENV_TOPIC_ARN: self.topic.topic_arn,
            "POWERTOOLS_METRICS_NAMESPACE": c.metrics_namespace(self.config.name),
            **{spec.env: self.tables[spec.key].table_name for spec in TABLES},
            ENV_HOSTED_ZONE_IDS: encode_zone_ids(self.hosted_zone_ids),
        }

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

    def _table_arn(self, key: str) -> str:
        """A table's ARN from its parts: the agent policy takes account and region from it (`agent_policy`)."""
        return self.format_arn(service="dynamodb", resource="table", resource_name=self.tables[key].table_name)
