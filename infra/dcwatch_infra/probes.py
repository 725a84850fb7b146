"""The probes of the home region: one function per vantage point placed here (`config.topology`), each on its
own schedule (those of other regions are their probe stacks', `probe_stack.py`)."""

from __future__ import annotations

from aws_cdk import Annotations, Duration, Stack
from aws_cdk import aws_lambda as lambda_

from dcwatch.config import Config
from dcwatch.topology import VantagePoint
from dcwatch_infra import constants as c
from dcwatch_infra.functions import probe_function
from dcwatch_infra.schedules import probe_schedule, probe_schedule_role


def probe_rate_minutes(interval_s: int) -> int:
    """EventBridge Scheduler's finest rate is one minute; shorter intervals run as rounds inside one call."""
    return max(1, interval_s // 60)


def probe_period(config: Config) -> Duration:
    return Duration.minutes(probe_rate_minutes(config.probe.interval_s))


def home_probes(
    stack: Stack, config: Config, *, bus_arn: str, layers: list[lambda_.LayerVersion], environment: dict[str, str]
) -> dict[str, lambda_.Function]:
    """A probe function per vantage point of the home region, by vantage point; in `stack` itself."""
    here = [v for v in config.topology.vantage_points if v.placement.region is None]
    if not here:
        raise ValueError(f"the topology of {config.name} has no vantage point in the home region")
    return {v.name: _probe(stack, config, v, bus_arn, layers, environment) for v in here}


def _probe(
    stack: Stack,
    config: Config,
    vantage: VantagePoint,
    bus_arn: str,
    layers: list[lambda_.LayerVersion],
    environment: dict[str, str],
) -> lambda_.Function:
    return probe_function(
        stack,
        vantage.name,
        deployment=config.name,
        bus_arn=bus_arn,
        layers=layers,
        environment=environment,
        period=probe_period(config),
        placement=vantage.placement,
        network=config.network,
    )


def schedule_probes(stack: Stack, config: Config, probes: dict[str, lambda_.Function]) -> None:
    """Each probe on its schedule, every `probe_period`; a warning where the interval is not whole minutes."""
    interval_s = config.probe.interval_s
    period = probe_period(config)
    if interval_s % 60 and interval_s > 60:
        Annotations.of(stack).add_warning_v2(
            "dcwatch:probeInterval",
            f"probe.interval_s={interval_s} is not a whole number of minutes: the probe runs every "
            f"{period.to_minutes()} min, so a site is DOWN after "
            f"{config.thresholds.failures_to_down} x {period.to_minutes()} min at the earliest",
        )
    role = probe_schedule_role(stack)
    for vantage, probe in probes.items():
        probe_schedule(stack, c.probe_id(vantage), probe, role, period, f"{config.name} from {vantage}")
