"""The bus's resource policy and its publishers' grants: each of dcwatch's sources from its one role only, so no
principal of the account can post a probe round (or an agent's report) that is not its own."""

from __future__ import annotations

from typing import Any

import pytest

from dcwatch.events import EVALUATOR_SOURCE, PROBE_ROUND, SITE_STATUS_CHANGED, probe_source
from dcwatch_infra import constants
from tests.infrastructure.synth import Synth
from tests.infrastructure.template import function_grants, grants, resources
from tests.infrastructure.test_fencing_stack import agents  # noqa: F401

pytestmark = pytest.mark.infrastructure


def bus_statements(synth: Synth) -> dict[str, dict[str, Any]]:
    policy = resources(synth, "AWS::Events::EventBus")[synth.logical_id(synth.stack.bus)]["Properties"]["Policy"]
    return {s["Sid"]: s for s in policy["Statement"]}


def joined(value: Any) -> str:
    """An ARN built with Fn::Join, its tokens as `*`."""
    if isinstance(value, str):
        return value
    return "".join(p if isinstance(p, str) else "*" for p in value["Fn::Join"][1])


def denial(synth: Synth, source: str) -> dict[str, Any]:
    """The statement that denies `source` to everyone but its owner."""
    [found] = [
        s for s in bus_statements(synth).values() if s["Condition"].get("StringEquals") == {"events:source": source}
    ]
    assert (found["Effect"], found["Principal"], found["Action"]) == ("Deny", "*", "events:PutEvents")
    return found


def role_name(template, function_id: str) -> str:
    role = resources(template, "AWS::Lambda::Function")[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    return resources(template, "AWS::IAM::Role")[role]["Properties"]["RoleName"]


def test_each_vantage_points_rounds_only_from_its_own_probe_role_in_every_region(prod: Synth):
    probes = {v: (prod.template, prod.logical_id(fn)) for v, fn in prod.stack.probes.items()}
    assert prod.probe_stack is not None and prod.probe_template is not None
    probes |= {v: (prod.probe_template, prod.probe_stack.get_logical_id(fn.node.default_child))
               for v, fn in prod.probe_stack.probes.items()}  # fmt: skip
    assert set(probes) == set(prod.config.topology.vantage_names) and len(probes) == 3

    for vantage, (template, function_id) in probes.items():
        name = role_name(template, function_id)
        assert name == constants.probe_role_name(prod.config.name, vantage)
        owner = denial(prod, probe_source(vantage))["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
        assert joined(owner).endswith(f":role/{name}"), vantage


def test_no_other_dcwatch_source_may_be_put_by_anyone(prod: Synth):
    rest = bus_statements(prod)["NoOtherDcwatchSource"]
    assert (rest["Effect"], rest["Principal"], rest["Action"]) == ("Deny", "*", "events:PutEvents")
    known = {probe_source(v) for v in prod.config.topology.vantage_names} | {EVALUATOR_SOURCE}
    known |= {f"dcwatch.agent.{site}" for site in (prod.config.fencing.agents if prod.config.fencing else {})}
    assert rest["Condition"] == {
        "StringLike": {"events:source": "dcwatch.*"},
        "StringNotEquals": {"events:source": sorted(known)},
    }


def test_each_publisher_role_may_put_only_its_own_source_and_detail_type(prod: Synth):
    for vantage, fn in prod.stack.probes.items():
        role = resources(prod, "AWS::Lambda::Function")[prod.logical_id(fn)]["Properties"]["Role"]["Fn::GetAtt"][0]
        [put] = [g for g in grants(prod, role) if g.action == "events:PutEvents"]
        assert put.condition == {
            "StringEquals": {"events:source": probe_source(vantage), "events:detail-type": PROBE_ROUND}
        }, vantage
    [put] = [g for g in function_grants(prod, "Evaluate") if g.action == "events:PutEvents"]
    assert put.condition == {
        "StringEquals": {"events:source": EVALUATOR_SOURCE, "events:detail-type": SITE_STATUS_CHANGED}
    }
    evaluator = denial(prod, EVALUATOR_SOURCE)["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    role = resources(prod, "AWS::Lambda::Function")[prod.function_id("Evaluate")]["Properties"]["Role"]
    assert evaluator == {"Fn::GetAtt": [role["Fn::GetAtt"][0], "Arn"]}


def test_each_site_agents_reports_only_from_its_own_role_and_from_none_without_roles(agents: Synth, demo: Synth):  # noqa: F811
    assert agents.stack.agent_roles is not None
    for site, role in agents.stack.agent_roles.roles.items():
        owner = denial(agents, f"dcwatch.agent.{site}")["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
        assert owner == {"Fn::GetAtt": [agents.logical_id(role), "Arn"]}
    assert demo.stack.agent_roles is None and demo.config.fencing is not None
    for site in demo.config.fencing.agents:
        assert "ArnNotEquals" not in denial(demo, f"dcwatch.agent.{site}")["Condition"], "no role: no one may"


def test_an_agent_report_that_failed_every_attempt_is_kept_in_a_dead_letter_queue(demo: Synth):
    dead = {"Fn::GetAtt": [demo.logical_id(demo.stack.dead_letters["agent-reports"]), "Arn"]}
    [config] = [
        c["Properties"]
        for c in resources(demo, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": demo.function_id("AgentReports")}
    ]
    assert config["DestinationConfig"] == {"OnFailure": {"Destination": dead}}
    [rule] = [
        r["Properties"]
        for r in resources(demo, "AWS::Events::Rule").values()
        if r["Properties"].get("Description", "").startswith("agent-reports")
    ]
    [target] = rule["Targets"]
    assert target["DeadLetterConfig"] == {"Arn": dead}, "what EventBridge cannot deliver is kept too"
    assert rule["EventPattern"]["replay-name"] == [{"exists": False}], "an archive replay is no live report"
