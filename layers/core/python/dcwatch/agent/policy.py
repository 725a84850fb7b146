"""The IAM policy of one site's agent, as a pure function of the config (CDK puts it on the agent's role).

Each agent may write only its own site's lease item (`dynamodb:LeadingKeys`), append only its own
site's fence records to the audit table, put only its own site's reports on the bus (`events:source`
is `dcwatch.agent.<site>`), and read only the secrets it uses. Nothing else: no delete, no update of
the audit trail, no other site's item.
"""

from __future__ import annotations

from typing import Any

from dcwatch.adapters.agent_aws import site_lease_key
from dcwatch.adapters.secrets import read_secrets_statement
from dcwatch.agent.report import SITE_AGENT_REPORT, agent_source
from dcwatch.config import Config


def fence_audit_prefix(site: str) -> str:
    """The audit records of a site's fences are keyed `<site>-fenced-<UTC time>`."""
    return f"{site}-fenced-"


def agent_policy(
    config: Config, site: str, *, locks_table_arn: str, audit_table_arn: str, bus_arn: str
) -> dict[str, Any]:
    """The policy document (IAM JSON) of `site`'s agent."""
    if config.fencing is None or site not in config.fencing.agents:
        raise ValueError(f"the config's fencing.agents has no agent for {site}: there is no site agent to allow")
    agent = config.fencing.agents[site]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "OwnSiteLease",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
            "Resource": locks_table_arn,
            "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [site_lease_key(site)]}},
        },
        {
            "Sid": "OwnFenceAudit",
            "Effect": "Allow",
            "Action": ["dynamodb:PutItem"],
            "Resource": audit_table_arn,
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{fence_audit_prefix(site)}*"]}},
        },
        {
            "Sid": "OwnSiteReports",
            "Effect": "Allow",
            "Action": ["events:PutEvents"],
            "Resource": bus_arn,
            "Condition": {
                "StringEquals": {"events:source": agent_source(site), "events:detail-type": SITE_AGENT_REPORT}
            },
        },
    ]
    secrets = []
    if config.fencing.secret_id is not None:
        secrets.append(config.fencing.secret_id)
    if agent.vcenter_credentials_file is None:
        secrets.append(config.site(site).vcenter.credentials_secret)
    secrets += config.check_headers_secrets(site)  # the agent runs its site's checks
    if agent.fence_hook is not None and agent.fence_hook.headers_secret is not None:
        secrets.append(agent.fence_hook.headers_secret)
    if secrets:
        # In the locks table's account and region.
        partition, region, account = (locks_table_arn.split(":")[i] for i in (1, 3, 4))
        read = read_secrets_statement(secrets, partition=partition, region=region, account=account)
        statements.append({"Sid": "AgentSecrets", **read})
    return {"Version": "2012-10-17", "Statement": statements}
