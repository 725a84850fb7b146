"""Probes from several vantage points: outside any VPC, inside the configured VPC, from a second region."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import pytest
import yaml

from dcwatch_infra import constants
from dcwatch_infra.build import ContextError, build
from tests.infrastructure.conftest import HOME_REGION, NETWORK, SECOND_REGION
from tests.infrastructure.synth import PLACEHOLDER, Synth, zone_ids_context
from tests.infrastructure.template import Grant, actions_of, function_role, grants, refs, resources, resources_for

pytestmark = pytest.mark.infrastructure


def probes(template: cdk.assertions.Template) -> dict[str, tuple[str, dict]]:
    """Vantage point -> (logical id, properties) of every probe function in the template."""
    return {
        props["Environment"]["Variables"]["DCWATCH_VANTAGE"]: (logical_id, props)
        for logical_id, function in template.find_resources("AWS::Lambda::Function").items()
        if (props := function["Properties"])["Handler"] == "app.handler"
        and "DCWATCH_VANTAGE" in props["Environment"]["Variables"]
    }


def test_with_a_network_one_probe_runs_inside_the_vpc_and_one_outside(prod: Synth):
    found = probes(prod.template)
    assert set(found) == {"aws-public", "aws-vpc"}
    assert "VpcConfig" not in found["aws-public"][1]
    assert found["aws-vpc"][1]["VpcConfig"] == {
        "SubnetIds": NETWORK["subnet_ids"],
        "SecurityGroupIds": NETWORK["security_group_ids"],
    }
    for vantage, (_, props) in found.items():
        assert props["ReservedConcurrentExecutions"] == 1
        assert props["Environment"]["Variables"]["DCWATCH_SCHEDULE_PERIOD_S"] == "300"
        assert {"Key": "dcwatch:vantage", "Value": vantage} in props["Tags"]
        assert props["Description"].endswith(f"(from {vantage})")
    prod.template.resource_count_is("AWS::EC2::SecurityGroup", 0)  # the config's groups, not new ones


def test_only_the_vpc_probe_may_manage_network_interfaces_and_both_do_the_same_job(prod: Synth):
    found = probes(prod.template)
    granted = {v: grants(prod, function_role(prod, logical_id)) for v, (logical_id, _) in found.items()}
    assert Grant("ec2:CreateNetworkInterface", "*") in granted["aws-vpc"]
    assert not resources_for(granted["aws-public"], "ec2:CreateNetworkInterface")
    for vantage, probe in granted.items():
        job = {a for a in actions_of(probe) if not a.startswith(("ec2:", "logs:", "xray:"))}
        assert job == {"events:PutEvents", "secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}, vantage


def test_each_probe_has_its_own_schedule_at_the_configured_interval(prod: Synth):
    found = probes(prod.template)
    schedules = [s["Properties"] for s in resources(prod, "AWS::Scheduler::Schedule").values()]
    schedules = [s for s in schedules if "Input" not in s["Target"]]  # the drill's starts the workflow
    assert sorted(refs(s["Target"]["Arn"]).pop() for s in schedules) == sorted(lid for lid, _ in found.values())
    assert {s["ScheduleExpression"] for s in schedules} == {"rate(5 minutes)"}


def test_a_second_region_runs_a_probe_that_reports_to_the_home_bus_with_the_home_secrets(prod: Synth):
    assert prod.probe_stack is not None and prod.probe_template is not None
    assert prod.probe_stack.region == SECOND_REGION and prod.stack.region == HOME_REGION
    assert prod.probe_stack.stack_name == f"dcwatch-prod-probe-{SECOND_REGION}"
    [(vantage, (logical_id, props))] = probes(prod.probe_template).items()
    assert vantage == f"aws-{SECOND_REGION}"
    assert {"Key": "dcwatch:vantage", "Value": vantage} in props["Tags"]
    env = props["Environment"]["Variables"]
    home_bus = f":events:{HOME_REGION}:"
    assert env["DCWATCH_HOME_REGION"] == HOME_REGION and home_bus in str(env["DCWATCH_BUS_NAME"])
    assert (props["Runtime"], props["Architectures"]) == ("python3.14", ["arm64"])
    granted = grants(prod.probe_template, function_role(prod.probe_template, logical_id))
    assert resources_for(granted, "events:PutEvents") == [env["DCWATCH_BUS_NAME"]], "exactly the home bus"
    secrets = resources_for(granted, "secretsmanager:GetSecretValue")
    for site in prod.config.sites:
        assert any(
            f":secretsmanager:{HOME_REGION}:" in str(r) and f"secret:{site.vcenter.credentials_secret}-??????" in str(r)
            for r in secrets
        ), site.name
    [schedule] = prod.probe_template.find_resources("AWS::Scheduler::Schedule").values()
    assert refs(schedule["Properties"]["Target"]["Arn"]) == {logical_id}
    layers = prod.probe_template.find_resources("AWS::Lambda::LayerVersion")
    assert len(layers) == 3, "its own copies of the layers: layers are regional"


def test_a_second_region_needs_to_know_the_home_region_and_must_differ_from_it(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("CDK_DEFAULT_REGION", raising=False)
    doc = yaml.safe_load(constants.DEMO_CONFIG.read_text(encoding="utf-8"))
    doc["secondary_region"] = SECOND_REGION
    config = tmp_path / "two-regions.yaml"
    config.write_text(yaml.safe_dump(doc), encoding="utf-8")

    with pytest.raises(ContextError, match="needs the home region: -c region=REGION"):
        build(cdk.App(context={"config": str(config)}))
    with pytest.raises(ContextError, match="is the home region already"):
        build(cdk.App(context={"config": str(config), "region": SECOND_REGION}))
    # Under the CDK CLI the profile's region is the home region.
    monkeypatch.setenv("CDK_DEFAULT_REGION", HOME_REGION)
    zone_ids = zone_ids_context(config)
    assert (
        build(cdk.App(context={**PLACEHOLDER, "config": str(config), "hosted_zone_ids": zone_ids})).region
        == HOME_REGION
    )
