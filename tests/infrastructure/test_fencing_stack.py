"""The stack of a deployment with site agents (their roles: each writes only its own lease, puts only its own
reports) and of one that trusts the quorum verdict without a fencing proof (it says so at synth time)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from aws_cdk.assertions import Annotations, Match

from dcwatch.config.fencing import TRUST_QUORUM_WARNING
from dcwatch_infra import constants
from tests.infrastructure.synth import PLACEHOLDER, Synth, synthesize
from tests.infrastructure.template import refs, resources
from tests.infrastructure.test_access import audit_changers, audit_denials
from tests.unit.test_agent_config import FENCING

pytestmark = pytest.mark.infrastructure
ANCHOR = "arn:aws:rolesanywhere:eu-central-1:123456789012:trust-anchor/0a1b2c3d-4e5f-6789-abcd-ef0123456789"


def synth_with(directory: Path, name: str, fencing: dict, **context: str) -> Synth:
    doc = yaml.safe_load(constants.DEMO_CONFIG.read_text(encoding="utf-8"))
    doc["fencing"] = fencing
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return synthesize(directory / "cdk.out", config=str(path), **PLACEHOLDER, **context)


@pytest.fixture(scope="module")
def trusting(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth_with(tmp_path_factory.mktemp("trusting"), "trusting", {"trust_quorum": True})


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth_with(
        tmp_path_factory.mktemp("agents"),
        "agents",
        FENCING,
        agent_trust_anchor_arn=ANCHOR,
        agent_principal="123456789012",
    )


@pytest.fixture(scope="module")
def untrusted(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth_with(tmp_path_factory.mktemp("untrusted"), "untrusted", FENCING)


def test_trusting_the_quorum_without_a_fencing_proof_is_a_loud_synth_warning(trusting: Synth):
    warnings = Annotations.from_stack(trusting.stack).find_warning("*", Match.string_like_regexp("trust_quorum"))
    assert [w.entry.data for w in warnings] == [f"{TRUST_QUORUM_WARNING} [ack: dcwatch:trustQuorum]"]


def agent_roles(synth: Synth) -> dict[str, dict]:
    """Each site agent's role by site, from its description."""
    return {
        role["Properties"]["Description"].removeprefix("dcwatch site agent of ").split(":")[0]: role["Properties"]
        for role in resources(synth, "AWS::IAM::Role").values()
        if role["Properties"].get("Description", "").startswith("dcwatch site agent of ")
    }


def actions(statement: dict) -> list[str]:
    """The statement's actions as written: the agent roles' inline statements carry Sids, which CDK never merges."""
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def statement(role: dict, sid: str) -> dict:
    (policy,) = role["Policies"]
    return next(s for s in policy["PolicyDocument"]["Statement"] if s["Sid"] == sid)


def test_with_agents_each_site_gets_a_role_that_writes_only_its_own_lease_item(agents: Synth):
    roles = agent_roles(agents)
    assert sorted(roles) == ["dc-a", "dc-b"]
    locks = agents.logical_id(agents.stack.tables["Locks"])
    for site, role in roles.items():
        lease = statement(role, "OwnSiteLease")
        assert actions(lease) == ["dynamodb:GetItem", "dynamodb:PutItem"] and locks in refs(lease["Resource"])
        assert lease["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [f"site-lease#{site}"]}}


def test_with_agents_each_role_puts_only_its_own_sites_reports_on_the_bus(agents: Synth):
    # The bus's ARN from its name: the bus policy names these roles, so the roles cannot refer to the bus.
    bus = f":event-bus/{constants.bus_name(agents.config.name)}"
    for site, role in agent_roles(agents).items():
        reports = statement(role, "OwnSiteReports")
        arn = "".join(p if isinstance(p, str) else "*" for p in reports["Resource"]["Fn::Join"][1])
        assert actions(reports) == ["events:PutEvents"] and arn.endswith(bus)
        assert reports["Condition"] == {
            "StringEquals": {"events:source": f"dcwatch.agent.{site}", "events:detail-type": "SiteAgentReport"}
        }
        granted = {a for s in role["Policies"][0]["PolicyDocument"]["Statement"] for a in actions(s)}
        assert granted <= {"dynamodb:GetItem", "dynamodb:PutItem", "events:PutEvents", "secretsmanager:GetSecretValue"}


def test_each_role_trusts_roles_anywhere_for_its_sites_certificate_and_the_principal_given(agents: Synth):
    for site, role in agent_roles(agents).items():
        trust = role["AssumeRolePolicyDocument"]["Statement"]
        anywhere = next(s for s in trust if s["Principal"] == {"Service": "rolesanywhere.amazonaws.com"})
        assert anywhere["Condition"] == {
            "ArnEquals": {"aws:SourceArn": ANCHOR},
            "StringEquals": {"aws:PrincipalTag/x509Subject/CN": f"dcwatch-agent-{site}"},
        }
        assert any("AWS" in s["Principal"] for s in trust), "the account given for trials"
    outputs = agents.template.to_json()["Outputs"]
    assert {"AgentRoleArnDcA", "AgentRoleArnDcB"} <= set(outputs)


def test_agents_without_a_trust_anchor_or_principal_get_no_role_and_a_warning(untrusted: Synth):
    assert agent_roles(untrusted) == {}
    warnings = Annotations.from_stack(untrusted.stack).find_warning("*", Match.string_like_regexp("fencing.agents"))
    assert len(warnings) == 1 and warnings[0].entry.data.endswith("[ack: dcwatch:agentTrust]")
    assert "agent_trust_anchor_arn" in warnings[0].entry.data


def test_without_agents_the_stack_has_no_agent_role_and_no_agent_warning(trusting: Synth):
    assert agent_roles(trusting) == {}
    assert not Annotations.from_stack(trusting.stack).find_warning("*", Match.string_like_regexp("agent_trust"))


def test_the_site_agents_roles_append_fence_records_but_may_not_change_or_delete_one(agents: Synth):
    audit = agents.logical_id(agents.stack.tables["Audit"])
    for role in agent_roles(agents).values():
        fenced = statement(role, "OwnFenceAudit")
        assert actions(fenced) == ["dynamodb:PutItem"] and audit in refs(fenced["Resource"])
    assert audit_changers(agents) == []
    # And were one granted it, the table's own policy denies every principal, theirs included.
    [deny] = audit_denials(agents)
    assert deny["Principal"] == {"AWS": "*"}
