"""The topology a synth deploys, read back from its templates in the shape of `Topology.as_dict()`.

Only what a template can show: which probes run where (region, inside the VPC or not) and where every
other function runs. Which checks a probe runs is decided at run time from its DCWATCH_VANTAGE.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from aws_cdk.assertions import Template

from dcwatch.topology import HOME, IN_VPC, Placement, Topology, region_placement
from dcwatch_infra import constants
from tests.infrastructure.synth import Synth
from tests.infrastructure.template import refs

# What Lambda needs to attach a function to the VPC (its network interfaces), and nothing more of EC2.
NETWORK_INTERFACE_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}


def stack_templates(synth: Synth) -> list[tuple[str | None, Template]]:
    """(region, template) of every stack of the synth; None: the home region."""
    found: list[tuple[str | None, Template]] = [(None, synth.template)]
    if synth.probe_stack is not None and synth.probe_template is not None:
        found.append((str(synth.probe_stack.region), synth.probe_template))
    return found


def placement_of(region: str | None, in_vpc: bool) -> Placement:
    """The model's placement for code deployed in `region` (None: home), inside the VPC or not."""
    for placement in (HOME, IN_VPC, *([region_placement(region)] if region else [])):
        if (placement.region, placement.in_vpc) == (region, in_vpc):
            return placement
    return Placement(f"unmodelled ({region}, {'in' if in_vpc else 'outside'} a VPC)", region, in_vpc)


def functions(synth: Synth) -> Iterator[tuple[str | None, str, Mapping[str, Any]]]:
    """(region, logical id, properties) of every Lambda function the synth deploys."""
    for region, template in stack_templates(synth):
        for logical_id, function in template.find_resources("AWS::Lambda::Function").items():
            yield region, logical_id, function["Properties"]


def tags(props: Mapping[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in props.get("Tags", [])}


def vantage_of(props: Mapping[str, Any]) -> str | None:
    """The vantage point a probe runs as (what its code reads), None for any other function."""
    return props["Environment"]["Variables"].get(constants.ENV_VANTAGE)


def template_topology(synth: Synth) -> dict[str, Any]:
    """The deployed vantage points (by name) and function placements, as `modelled_topology` shapes the model."""
    vantage_points, placements = [], {}
    for region, _, props in functions(synth):
        placement = placement_of(region, "VpcConfig" in props)
        vantage = vantage_of(props)
        if vantage is not None:
            vantage_points.append(
                {"name": vantage, "placement": placement.name, "region": placement.region, "inVpc": placement.in_vpc}
            )
        else:
            placements[tags(props)[constants.FUNCTION_TAG]] = placement.name
    return {"vantagePoints": sorted(vantage_points, key=lambda v: v["name"]), "functions": placements}


def modelled_topology(model: Topology) -> dict[str, Any]:
    """`model.as_dict()` without what a template cannot show (checks, endpoints, the VPC id)."""
    shown = model.as_dict()
    return {
        "vantagePoints": sorted(
            ({k: v[k] for k in ("name", "placement", "region", "inVpc")} for v in shown["vantagePoints"]),
            key=lambda v: v["name"],
        ),
        "functions": shown["functions"],
    }


def probe_schedules(template: Template) -> dict[str, dict[str, Any]]:
    """Vantage point -> properties of the Scheduler schedule whose target is that probe."""
    probes = {
        logical_id: vantage
        for logical_id, function in template.find_resources("AWS::Lambda::Function").items()
        if (vantage := vantage_of(function["Properties"])) is not None
    }
    found: dict[str, dict[str, Any]] = {}
    for schedule in template.find_resources("AWS::Scheduler::Schedule").values():
        [target] = refs(schedule["Properties"]["Target"]["Arn"])
        if target not in probes:  # the drill's schedule starts the workflow
            continue
        vantage = probes[target]
        assert vantage not in found, f"two schedules for {vantage}"
        found[vantage] = schedule["Properties"]
    return found
