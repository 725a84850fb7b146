"""The probes of a second region (`config.topology`'s vantage points placed there, outside any VPC), each
with its own schedule, publishing to the home bus.

It reads the vCenter credentials from the home region's Secrets Manager and sends its results to the
home region's bus, so the evaluator, the state and the watchdog stay in one place; its own metrics
(per-site latency) stay in its region and the home dashboard reads them from there.
"""

from __future__ import annotations

from aws_cdk import Environment, Stack, Tags
from constructs import Construct

from dcwatch.config import Config
from dcwatch_infra import constants as c
from dcwatch_infra.access import grant_secrets_read
from dcwatch_infra.functions import probe_function
from dcwatch_infra.layers import code_layers
from dcwatch_infra.probes import probe_period
from dcwatch_infra.schedules import probe_schedule, probe_schedule_role
from dcwatch_infra.stack import SynthInputs


class ProbeStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        inputs: SynthInputs,
        home_region: str,
        env: Environment,
    ):
        super().__init__(
            scope,
            construct_id,
            env=env,
            description=f"dcwatch {config.name}: probe from {env.region} for {home_region}",
            tags=config.tags,
        )
        for key, value in config.tags.items():
            Tags.of(self).add(key, value)
        region = str(env.region)
        self.vantage_points = [v for v in config.topology.vantage_points if v.placement.region == region]
        if not self.vantage_points:
            raise ValueError(f"the topology of {config.name} places no vantage point in {region}")
        self.bus_arn = f"arn:{self.partition}:events:{home_region}:{self.account}:event-bus/{c.bus_name(config.name)}"
        period = probe_period(config)
        self.layers = code_layers(self, inputs.config_path, inputs.placeholder_deps, config.name)
        role = probe_schedule_role(self)
        self.probes = {}
        for vantage in self.vantage_points:
            probe = probe_function(
                self,
                vantage.name,
                deployment=config.name,
                bus_arn=self.bus_arn,
                layers=self.layers,
                environment={
                    c.ENV_CONFIG: c.CONFIG_IN_LAMBDA,
                    c.ENV_BUS_NAME: self.bus_arn,
                    c.ENV_HOME_REGION: home_region,
                    "POWERTOOLS_METRICS_NAMESPACE": c.metrics_namespace(config.name),
                },
                period=period,
                placement=vantage.placement,
            )
            grant_secrets_read(
                probe,
                [*(site.vcenter.credentials_secret for site in config.sites), *config.check_headers_secrets()],
                region=home_region,
                describe=True,
            )
            probe_schedule(self, c.probe_id(vantage.name), probe, role, period, f"{config.name} from {vantage.name}")
            self.probes[vantage.name] = probe
