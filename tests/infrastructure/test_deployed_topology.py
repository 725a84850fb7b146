"""Deployed topology = modelled topology: the stacks build exactly `config.topology`, for every config shape.

Four configs: the demo (network, no second region), the example of docs/config.md, a production shape (network,
second region, private vCenters and storage mirrors, public services) and one without a network.
"""

from __future__ import annotations

import re

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match

from dcwatch.topology import IN_VPC, aws_calls, region_placement
from dcwatch.wiring import function as function_spec
from dcwatch_infra import constants
from dcwatch_infra.functions import dcwatch_function
from dcwatch_infra.layers import PLACEHOLDER_WARNING, PLACEHOLDER_WARNING_ID
from dcwatch_infra.probes import probe_rate_minutes
from tests.infrastructure.deployed import (
    NETWORK_INTERFACE_ACTIONS,
    functions,
    modelled_topology,
    probe_schedules,
    stack_templates,
    tags,
    template_topology,
    vantage_of,
)
from tests.infrastructure.synth import Synth
from tests.infrastructure.template import (
    Grant,
    function_role,
    grants,
    policies_granting,
    refs,
    resources,
    services_of,
)
from tests.infrastructure.test_monitoring import metric_of

pytestmark = pytest.mark.infrastructure

CONFIGS = ["demo", "readme", "prod", "flat"]


@pytest.fixture(params=CONFIGS)
def synth(request: pytest.FixtureRequest) -> Synth:
    return request.getfixturevalue(request.param)


def label(region: str | None, props: dict) -> str:
    return f"{vantage_of(props) or tags(props)[constants.FUNCTION_TAG]} ({region or 'home'})"


def test_every_probe_and_function_runs_where_the_configs_topology_places_it(synth: Synth):
    # Given the topology the config computes (what the decision and the local runtime use too)
    model = synth.config.topology
    # Then the templates deploy exactly its vantage points and its function placements
    assert template_topology(synth) == modelled_topology(model)
    assert {vantage_of(p) for _, _, p in functions(synth)} - {None} == set(model.vantage_names)


def test_placements_differ_between_shapes_as_the_network_and_the_second_region_say(demo, prod, flat):
    assert {v["name"]: v["placement"] for v in template_topology(demo)["vantagePoints"]} == {
        "aws-public": "home",
        "aws-vpc": "vpc",
    }
    assert {v["name"]: v["placement"] for v in template_topology(prod)["vantagePoints"]} == {
        "aws-public": "home",
        "aws-vpc": "vpc",
        "aws-eu-west-1": "region-eu-west-1",
    }
    assert {v["name"]: v["placement"] for v in template_topology(flat)["vantagePoints"]} == {
        "aws-public": "home",
        "aws-eu-west-1": "region-eu-west-1",
    }
    # The steps that talk to a site (SiteSteps) run in the VPC when there is one, and outside any VPC when not.
    assert template_topology(prod)["functions"]["SiteSteps"] == "vpc"
    assert template_topology(flat)["functions"]["SiteSteps"] == "home"
    for key in ("Evaluate", "Steps", "ExecutionEnded"):
        assert template_topology(prod)["functions"][key] == "home", key


def test_functions_inside_the_vpc_use_exactly_the_configs_subnets_and_security_groups(synth: Synth):
    network = synth.config.network
    attached = {label(region, p): p["VpcConfig"] for region, _, p in functions(synth) if "VpcConfig" in p}
    if network is None:
        assert attached == {}
        return
    assert attached, "a network is configured: the probe in it and the site steps run there"
    expected = {"SubnetIds": list(network.subnet_ids), "SecurityGroupIds": list(network.security_group_ids)}
    assert all(config == expected for config in attached.values()), attached
    for _, template in stack_templates(synth):
        # The config's groups, no new ones, and no VPC or subnet of CDK's: Lambda's VpcConfig is all it takes.
        assert not [t for r in template.to_json()["Resources"].values() if (t := r["Type"]).startswith("AWS::EC2::")]


def test_only_functions_inside_the_vpc_may_manage_network_interfaces_and_are_created_after_that_grant(synth: Synth):
    for region, template in stack_templates(synth):
        for logical_id, function in template.find_resources("AWS::Lambda::Function").items():
            props = function["Properties"]
            role = function_role(template, logical_id)
            ec2 = {g for g in grants(template, role) if services_of([g]) == {"ec2"}}
            if "VpcConfig" not in props:
                assert not ec2, label(region, props)
                continue
            assert ec2 == {Grant(action, "*") for action in NETWORK_INTERFACE_ACTIONS}, label(region, props)
            # Lambda checks the role when it creates the function's interfaces: the grant must exist by then.
            granting = policies_granting(template, role, "ec2:CreateNetworkInterface")
            assert granting and granting <= set(function.get("DependsOn", [])), label(region, props)


def test_functions_inside_the_vpc_are_granted_exactly_the_aws_apis_the_network_prerequisites_name(synth: Synth):
    # `dcwatch topology` and docs/deploy.md ask for a NAT gateway or VPC endpoints for topology.AWS_CALLS.
    for region, template in stack_templates(synth):
        for logical_id, function in template.find_resources("AWS::Lambda::Function").items():
            props = function["Properties"]
            if "VpcConfig" in props:
                granted = services_of(grants(template, function_role(template, logical_id)))
                # ec2 (the interfaces) and logs are used by Lambda itself, not through the VPC.
                key = tags(props)[constants.FUNCTION_TAG]
                assert granted - {"ec2", "logs"} == aws_calls(synth.config, key), label(region, props)


def test_each_vantage_point_is_probed_on_its_own_schedule_at_the_configured_interval(synth: Synth):
    model = synth.config.topology
    rate = probe_rate_minutes(synth.config.probe.interval_s)
    expression = f"rate({rate} minute{'s' if rate > 1 else ''})"
    for region, template in stack_templates(synth):
        placed_here = [v.name for v in model.vantage_points if v.placement.region == region]
        schedules = probe_schedules(template)
        assert sorted(schedules) == sorted(placed_here), region
        for vantage, schedule in schedules.items():
            assert schedule["ScheduleExpression"] == expression, vantage
            assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}, vantage
            assert schedule["Target"]["RetryPolicy"]["MaximumEventAgeInSeconds"] == rate * 60, vantage
            assert vantage in schedule["Description"], vantage


def test_the_watchdog_alarms_when_any_vantage_point_of_the_model_falls_silent(synth: Synth):
    prefix = f"dcwatch-{synth.config.name}-no-probe-results-"
    watched = {
        a["Properties"]["AlarmName"].removeprefix(prefix): a["Properties"]
        for a in resources(synth, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"].startswith(prefix)
    }
    assert sorted(watched) == sorted(synth.config.topology.vantage_names)
    for vantage, alarm in watched.items():
        assert metric_of(alarm)["dimensions"]["vantage"] == vantage
        assert alarm["TreatMissingData"] == "breaching"


def test_a_probe_in_the_home_region_has_an_error_alarm_on_its_own_function(synth: Synth):
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"] for a in resources(synth, "AWS::CloudWatch::Alarm").values()
    }
    for vantage in (v.name for v in synth.config.topology.vantage_points if v.placement.region is None):
        [probe] = [lid for region, lid, p in functions(synth) if region is None and vantage_of(p) == vantage]
        alarm = alarms[f"dcwatch-{synth.config.name}-probe-errors-{vantage}"]
        assert refs(alarm["Dimensions"]) == {probe}, vantage


def test_every_config_shape_synthesizes_without_a_warning_but_the_placeholder_it_was_asked_for(synth: Synth):
    # Imported subnets without route tables, a VPC whose zones are a token: none of that, for any shape. These
    # synths take the offline dependency layer, which says so; a plain synth has no warning but its agents'
    # (test_deployable): a shape with site agents and no trust given for their roles says so, in its home stack.
    stacks = [synth.stack, *([synth.probe_stack] if synth.probe_stack else [])]
    agents = synth.config.fencing is not None and bool(synth.config.fencing.agents)
    for stack in stacks:
        warnings = Annotations.from_stack(stack).find_warning("*", Match.any_value())
        expected = [f"{PLACEHOLDER_WARNING} [ack: {PLACEHOLDER_WARNING_ID}]"]
        found = [w.entry.data for w in warnings]
        if agents and stack is synth.stack:
            trust = [w for w in found if w.endswith("[ack: dcwatch:agentTrust]")]
            assert len(trust) == 1, found
            found.remove(trust[0])
        assert found == expected
        Annotations.from_stack(stack).has_no_error("*", Match.any_value())


@pytest.mark.parametrize(
    ("placement", "network", "message"),
    [
        (IN_VPC, None, "placed inside the VPC, but the config has no `network`"),
        (region_placement("us-east-1"), None, "placed in region us-east-1, but its stack is in eu-west-1"),
    ],
)
def test_a_function_never_lands_anywhere_but_where_its_placement_says(placement, network, message):
    stack = cdk.Stack(cdk.App(), "Elsewhere", env=cdk.Environment(region="eu-west-1"))
    with pytest.raises(ValueError, match=re.escape(message)):
        dcwatch_function(stack, "Evaluate", function_spec("Evaluate"), layers=[], environment={}, placement=placement)
