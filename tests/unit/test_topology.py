"""The deployed topology as the config makes it: who runs where, what each reaches, and the configs
whose network could not work refused before anything is deployed."""

from __future__ import annotations

import re

import pytest

from dcwatch.config import ConfigError, parse_config
from dcwatch.topology import AWS_CALLS, HOME, IN_VPC, in_vpc_functions, prerequisites
from dcwatch.wiring import FUNCTIONS
from tests.topology_configs import CONFIGS, demo, production, without_network

FIELD = re.compile(r"^[a-z_]+(\[\d+\])?(\.[a-z0-9_-]+(\[\d+\])?)*$")


def problems_of(doc) -> dict[str, str]:
    with pytest.raises(ConfigError) as refused:
        parse_config(doc, "sites.yaml")
    assert all(FIELD.match(path) for path, _ in refused.value.problems), refused.value.problems
    return dict(refused.value.problems)


@pytest.mark.parametrize(
    ("name", "vantages"),
    [
        ("demo", {"aws-public": (None, False), "aws-vpc": (None, True)}),
        ("readme", {"aws-public": (None, False), "aws-vpc": (None, True), "aws-eu-west-1": ("eu-west-1", False)}),
        ("production", {"aws-public": (None, False), "aws-vpc": (None, True), "aws-eu-west-1": ("eu-west-1", False)}),
        ("without-network", {"aws-public": (None, False), "aws-eu-west-1": ("eu-west-1", False)}),
    ],
)
def test_each_shape_deploys_a_probe_per_placement_and_every_critical_check_reaches_the_quorum(name, vantages):
    config = parse_config(CONFIGS[name](), name)
    model = config.topology
    assert {v.name: (v.placement.region, v.placement.in_vpc) for v in model.vantage_points} == vantages
    assert config.vantage_points == list(vantages) and config.warnings == {}
    for endpoint in model.endpoints:
        runners = model.runners(*endpoint.key)
        if endpoint.reach == "public":
            assert runners == list(vantages), f"{endpoint.field}: public endpoints are run from everywhere"
        else:
            assert runners == ["aws-vpc"], f"{endpoint.field}: private endpoints only from inside the VPC"
        if endpoint.critical and endpoint.service:
            assert len(runners) >= config.thresholds.effective_quorum


def test_the_demo_probes_its_public_services_from_everywhere_and_its_private_vcenters_from_the_vpc_alone():
    model = parse_config(demo()).topology
    public, vpc = model.vantage("aws-public"), model.vantage("aws-vpc")
    assert {check for _, check in public.checks} == {"shop-home", "radio-stream", "transit-portal"}
    assert public.checks < vpc.checks and ("dc-b", "vcenter") in vpc.checks
    assert model.endpoint("dc-a", "vcenter").field == "sites[0].vcenter"


def test_in_production_the_storage_mirror_is_private_and_every_step_that_talks_to_a_site_runs_in_the_vpc():
    config = parse_config(production())
    model = config.topology
    mirror = model.endpoint("dc-b", "san-mirror")
    assert (mirror.reach, mirror.field, model.runners("dc-b", "san-mirror")) == (
        "private", "sites[1].checks[0]", ["aws-vpc"]
    )  # fmt: skip
    assert model.placement("Fence").in_vpc and model.placement("CheckStorage").in_vpc
    assert not model.placement("Evaluate").in_vpc and not model.placement("SwitchDns").in_vpc
    assert in_vpc_functions(model) == ["Probe", "SiteSteps"]
    assert [s.key for s in FUNCTIONS if s.reaches_sites] == ["Probe", "SiteSteps"]


def test_without_a_network_everything_runs_outside_any_vpc_and_reaches_only_public_endpoints():
    model = parse_config(without_network()).topology
    assert in_vpc_functions(model) == [] and model.network is None
    assert {e.reach for e in model.endpoints} == {"public"}
    assert [placement for placement, _ in prerequisites(parse_config(without_network()), model)] == [
        "home (home region, outside any VPC)",
        "region-eu-west-1 (region eu-west-1, outside any VPC)",
    ]


def test_probe_vantages_other_than_what_is_deployed_is_an_error_naming_the_field():
    doc = production()
    doc["probe"] = {"vantages": ["aws-public", "aws-vpc"]}
    problem = problems_of(doc)["probe.vantages"]
    assert "this config deploys ['aws-public', 'aws-vpc', 'aws-eu-west-1']" in problem
    assert "leave probe.vantages out" in problem
    doc["probe"] = {"vantages": ["aws-eu-west-1", "aws-vpc", "aws-public"]}
    assert parse_config(doc).vantage_points == ["aws-public", "aws-vpc", "aws-eu-west-1"], "the order is not a fault"


def test_a_critical_service_check_fewer_vantage_points_run_than_the_quorum_is_refused_naming_it_and_what_to_add():
    doc = production()
    doc["services"][1]["sites"]["dc-a"]["checks"][0]["reach"] = "private"
    problem = problems_of(doc)["services[1].sites.dc-a.checks[0]"]
    assert "critical check portal-home of portal at dc-a is run by 1 vantage point (aws-vpc)" in problem
    assert "thresholds.quorum is 2" in problem and "say `reach: public`" in problem and "severity: warning" in problem
    doc["services"][1]["sites"]["dc-a"]["checks"][0]["reach"] = "public"
    assert parse_config(doc).topology.runners("dc-a", "portal-home") == ["aws-public", "aws-vpc", "aws-eu-west-1"]


def test_one_vantage_point_under_the_default_quorum_is_refused_naming_what_to_deploy():
    doc = without_network()
    del doc["secondary_region"]
    problem = problems_of(doc)["services[0].sites.dc-a.checks[0]"]
    assert "run by 1 vantage point (aws-public)" in problem
    assert "Add network (a probe in the VPC) or secondary_region (a probe in a second region)" in problem


def test_a_private_endpoint_without_a_network_is_refused_naming_its_reach():
    doc = without_network()
    del doc["sites"][0]["vcenter"]["reach"]
    del doc["sites"][1]["checks"][0]["reach"]
    problems = problems_of(doc)
    assert problems["sites[0].vcenter.reach"].startswith("private (the default for a vCenter")
    assert "add `network`" in problems["sites[0].vcenter.reach"]
    assert "say `reach: public`" in problems["sites[1].checks[0].reach"]
    assert len(problems) == 2, "one problem per endpoint, not per vCenter part"


def test_a_site_rule_only_the_vpc_can_meet_is_refused_since_the_site_could_never_go_down():
    doc = production()
    doc["thresholds"] = {"site_rule": "at_least 3"}  # aws-public runs two critical checks of dc-a: the services
    with pytest.raises(ConfigError) as refused:
        parse_config(doc)
    site_rule = [problem for path, problem in refused.value.problems if path == "thresholds.site_rule"]
    assert [p.split(" can be seen")[0] for p in site_rule] == [f"'at_least 3' but site {s}" for s in ("dc-a", "dc-b")]
    assert "by 1 vantage point (aws-vpc) and thresholds.quorum is 2" in site_rule[0]
    assert "could never be declared DOWN" in site_rule[0]
    doc["thresholds"] = {"site_rule": "at_least 2"}
    assert parse_config(doc).thresholds.site_rule == "at_least 2"


def test_a_copied_config_computes_its_own_topology():
    config = parse_config(production())
    assert "aws-vpc" in config.topology.vantage_names
    assert config.model_copy(update={"network": None}).topology.vantage_names == ["aws-public", "aws-eu-west-1"]


def test_the_vpc_prerequisites_name_the_routes_the_ports_and_every_aws_api_its_functions_call():
    config = parse_config(production())
    (_, outside), (vpc, needs), (_, region) = prerequisites(config, config.topology)
    assert vpc == "vpc (home region, inside the VPC, vpc-0a1b2c3d4e5f60718)"
    routes, groups, apis, nat, names = needs
    assert "dc-a: 10.10.0.20:8443, vcenter.dc-a.example:443" in routes and "dc-b:" in routes
    assert groups.startswith("security groups sg-0a1b2c3d4e5f60718 allow outbound TCP to 10.10.0.20:8443")
    for api in ("DynamoDB", "EventBridge", "Secrets Manager", "X-Ray", "Route 53"):
        assert api in apis
    assert "Lambda" not in apis  # no Lambda hook in this config: the VPC need not reach Lambda
    assert "Step Functions" not in apis and nat.startswith("a NAT gateway for the 4 public endpoints")
    assert "outbound internet to 4 public endpoints" in outside[0] and "home region" in region[-1]
    assert names.startswith("names only the sites' DNS knows (vcenter.dc-a.example, vcenter.dc-b.example)")


def test_every_function_placed_in_the_vpc_says_which_aws_apis_it_calls():
    assert set(AWS_CALLS) == {spec.key for spec in FUNCTIONS if spec.reaches_sites}


def test_a_step_runs_where_the_function_that_runs_it_does():
    model = parse_config(production()).topology
    assert model.placement("CheckGroup") == model.placement("SiteSteps") == IN_VPC
    assert model.placement("SwitchDns") == model.placement("Steps") == HOME


def test_a_lambda_hook_adds_lambda_to_the_apis_the_vpc_must_reach():
    doc = production()
    doc["sites"][1]["groups"] = [{"group": 1, "pre_power_on": [{"name": "open-lb", "function": "open-lb"}]}]
    config = parse_config(doc)
    (_, vpc_needs) = prerequisites(config, config.topology)[1]
    assert "Lambda, for hooks (endpoint lambda)" in vpc_needs[2]
