"""The site agents' roles, synthesized on their own (the stack creates them: test_fencing_stack)."""

from __future__ import annotations

import copy

import pytest
import yaml
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template

from dcwatch.config import parse_config
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch_infra.agents import AgentTrust, SiteAgentRoles
from tests.unit.test_agent_config import AUDIT, BUS, FENCING, LOCKS

pytestmark = pytest.mark.infrastructure
ANCHOR = "arn:aws:rolesanywhere:eu-central-1:123456789012:trust-anchor/0a1b2c3d-4e5f-6789-abcd-ef0123456789"


@pytest.fixture(scope="module")
def template() -> Template:
    doc = copy.deepcopy(yaml.safe_load(DEMO_CONFIG.read_text()))
    doc["fencing"] = FENCING
    stack = Stack(App(), "Agents", env={"account": "123456789012", "region": "eu-central-1"})
    SiteAgentRoles(
        stack,
        "SiteAgents",
        config=parse_config(doc),
        locks_table_arn=LOCKS,
        audit_table_arn=AUDIT,
        bus_arn=BUS,
        trust=AgentTrust(trust_anchor_arn=ANCHOR, principals=(iam.AccountPrincipal("123456789012"),)),
    )
    return Template.from_stack(stack)


def test_one_role_per_site_trusting_roles_anywhere_for_that_sites_certificate_only(template):
    roles = template.find_resources("AWS::IAM::Role")
    assert len(roles) == 2
    for site in ("dc-a", "dc-b"):
        template.has_resource_properties(
            "AWS::IAM::Role",
            {
                "AssumeRolePolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                                    "Principal": {"Service": "rolesanywhere.amazonaws.com"},
                                    "Condition": {
                                        "ArnEquals": {"aws:SourceArn": ANCHOR},
                                        "StringEquals": {"aws:PrincipalTag/x509Subject/CN": f"dcwatch-agent-{site}"},
                                    },
                                }
                            )
                        ]
                    )
                },
                "Policies": [
                    {
                        "PolicyName": "SiteAgent",
                        "PolicyDocument": Match.object_like(
                            {
                                "Statement": Match.array_with(
                                    [Match.object_like({"Sid": "OwnSiteLease", "Resource": LOCKS})]
                                )
                            }
                        ),
                    }
                ],
            },
        )


def test_roles_anywhere_may_set_the_source_identity_only_for_the_same_certificate(template):
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "sts:SetSourceIdentity",
                                "Condition": Match.object_like(
                                    {"StringEquals": {"aws:PrincipalTag/x509Subject/CN": "dcwatch-agent-dc-b"}}
                                ),
                            }
                        )
                    ]
                )
            }
        },
    )


def test_an_agent_role_can_also_trust_an_account_for_trials(template):
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Action": "sts:AssumeRole", "Principal": {"AWS": Match.any_value()}})]
                )
            }
        },
    )
