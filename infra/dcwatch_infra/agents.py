"""One IAM role per site agent, its policy from `dcwatch.agent.policy` (the stack creates them with agents).

The agents run on VMs at the sites, outside AWS. In production each assumes its role through IAM
Roles Anywhere (an X.509 certificate from the sites' CA, registered as a trust anchor), so no
long-lived key sits on the VM; `agent_principal` allows an IAM user or account instead, for trials.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_iam as iam
from constructs import Construct

from dcwatch.agent.policy import agent_policy
from dcwatch.config import Config

ROLES_ANYWHERE = "rolesanywhere.amazonaws.com"


@dataclass(frozen=True)
class AgentTrust:
    """Who may act as a site's agent: certificates of this trust anchor whose subject CN names the agent
    (`<common_name_prefix><site>`), and/or the principals in `principals` (an IAM user, an account)."""

    trust_anchor_arn: str | None = None
    common_name_prefix: str = "dcwatch-agent-"
    principals: tuple[iam.IPrincipal, ...] = ()


class SiteAgentRoles(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        locks_table_arn: str,
        audit_table_arn: str,
        bus_arn: str,
        trust: AgentTrust,
    ):
        super().__init__(scope, construct_id)
        if trust.trust_anchor_arn is None and not trust.principals:
            raise ValueError("a site agent role needs a trust anchor (Roles Anywhere) or a principal to trust")
        self.roles: dict[str, iam.Role] = {}
        for site in config.sites:
            principals: list[iam.IPrincipal] = list(trust.principals)
            conditions = {
                "ArnEquals": {"aws:SourceArn": trust.trust_anchor_arn},
                "StringEquals": {"aws:PrincipalTag/x509Subject/CN": f"{trust.common_name_prefix}{site.name}"},
            }
            if trust.trust_anchor_arn is not None:
                # Roles Anywhere also tags the session from the certificate (and sets its source identity, below).
                anywhere = iam.ServicePrincipal(ROLES_ANYWHERE).with_session_tags()
                principals.insert(0, anywhere.with_conditions(conditions))
            role = iam.Role(
                self,
                f"Agent-{site.name}",
                description=f"dcwatch site agent of {site.name}: its lease, its reports, its fence records",
                assumed_by=iam.CompositePrincipal(*principals),
                inline_policies={
                    "SiteAgent": iam.PolicyDocument.from_json(
                        agent_policy(
                            config,
                            site.name,
                            locks_table_arn=locks_table_arn,
                            audit_table_arn=audit_table_arn,
                            bus_arn=bus_arn,
                        )
                    )
                },
            )
            if trust.trust_anchor_arn is not None:
                role.assume_role_policy.add_statements(  # type: ignore[union-attr]
                    iam.PolicyStatement(
                        actions=["sts:SetSourceIdentity"],
                        principals=[iam.ServicePrincipal(ROLES_ANYWHERE)],
                        conditions=conditions,
                    )
                )
            self.roles[site.name] = role
