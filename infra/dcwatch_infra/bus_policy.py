"""Who may put what on the dcwatch bus: each of dcwatch's sources from its one role, and no one else.

In one account, any principal whose IAM policy allows `events:PutEvents` could post on the bus; the rules would
take a ProbeRound from it as the probe's, and forged DOWN rounds could start a failover that fences the healthy
production site. So each source has an owner, and the bus's resource policy denies it to everyone else:

- `dcwatch.probe.<vantage>`: that vantage point's probe role (named, `constants.probe_role_name`, so a probe
  stack of another region is named here too); the evaluator refuses a round whose vantage is not its source's;
- `dcwatch.detection.evaluator`: the evaluator's role;
- `dcwatch.agent.<site>`: that site's agent role (denied to everyone while the stack creates none);
- any other `dcwatch.*` source: denied to everyone.

Deny statements, because an Allow in a resource policy adds to what the account's IAM policies allow and takes
nothing away. Each role's own policy (`put_events`) also allows only its source and detail-type. The document is
the bus's inline `Policy` (one resource, written at once): `AWS::Events::EventBusPolicy` takes one statement each,
and its statement id must be unique in the whole account.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aws_cdk import aws_iam as iam

from dcwatch.agent.report import agent_source
from dcwatch.config import Config
from dcwatch.events import EVALUATOR_SOURCE, probe_source

PUT_EVENTS = "events:PutEvents"
DCWATCH_SOURCES = "dcwatch.*"


def source_owners(
    config: Config,
    *,
    probe_role_arn: Callable[[str], str],
    evaluator_role_arn: str,
    agent_role_arns: Mapping[str, str],
) -> dict[str, str | None]:
    """Each dcwatch source -> the ARN of the one role that may put it (None: no role may)."""
    owners: dict[str, str | None] = {probe_source(v): probe_role_arn(v) for v in config.topology.vantage_names}
    owners[EVALUATOR_SOURCE] = evaluator_role_arn
    agents = config.fencing.agents if config.fencing is not None else {}
    owners |= {agent_source(site): agent_role_arns.get(site) for site in agents}
    return owners


def _sid(source: str) -> str:
    return "Only" + "".join(part.capitalize() for part in source.replace("-", ".").split("."))


def bus_policy(bus_arn: str, owners: Mapping[str, str | None]) -> dict[str, Any]:
    """The bus's resource policy (IAM JSON): the sources of `owners` only, each from its owner only."""

    def deny(sid: str, condition: dict[str, Any]) -> dict[str, Any]:
        return {"Sid": sid, "Effect": "Deny", "Principal": "*", "Action": PUT_EVENTS, "Resource": bus_arn} | {
            "Condition": condition
        }

    statements = [
        deny(
            "NoOtherDcwatchSource",
            {"StringLike": {"events:source": DCWATCH_SOURCES}, "StringNotEquals": {"events:source": sorted(owners)}},
        )
    ]
    for source, owner in sorted(owners.items()):
        condition: dict[str, Any] = {"StringEquals": {"events:source": source}}
        if owner is not None:
            condition["ArnNotEquals"] = {"aws:PrincipalArn": owner}
        statements.append(deny(_sid(source), condition))
    return {"Version": "2012-10-17", "Statement": statements}


def put_events(bus_arn: str, source: str, detail_type: str) -> iam.PolicyStatement:
    """A role's own grant: PutEvents on the bus, of its one source and detail-type."""
    return iam.PolicyStatement(
        actions=[PUT_EVENTS],
        resources=[bus_arn],
        conditions={"StringEquals": {"events:source": source, "events:detail-type": detail_type}},
    )
