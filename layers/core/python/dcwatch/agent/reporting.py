"""What the agent reports with its renewals: its site's own checks, run from inside, and its view of the vote
(`SiteAgentReport`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from dcwatch.adapters.agent_aws import SiteLease
from dcwatch.adapters.probers import probe_round
from dcwatch.adapters.secrets import Credentials
from dcwatch.agent.quorum import AgentView, Decision
from dcwatch.agent.report import FenceRecord, LeaseView, LocalCheck, PeerView, SiteAgentReport
from dcwatch.config import Config
from dcwatch.detection.checks import service_checks, site_checks, vcenter_checks
from dcwatch.events import ProbeResult


def _local(result: ProbeResult) -> LocalCheck:
    """A probe result as the report carries it: without site, vantage and round, which the report says once."""
    return LocalCheck.model_validate(result.model_dump(include=set(LocalCheck.model_fields)))


def run_checks(
    config: Config,
    site: str,
    credentials: Callable[[str], Credentials],
    headers: Callable[[str], dict[str, str]],
) -> list[ProbeResult]:
    """The site's vCenter, site and service checks, one round from inside the site."""
    planned = vcenter_checks(config, site) + site_checks(config, site)
    planned += service_checks(config, site)
    deadline = max(c.timeout_s for c in planned) + 1
    return probe_round(
        planned,
        credentials,
        headers=headers,
        vantage=f"agent-{site}",
        round_id=uuid.uuid4().hex,
        deadline_s=deadline,
    )


def site_report(
    site: str,
    agent_id: str,
    peer_site: str,
    sent_at: datetime,
    *,
    decision: Decision,
    view: AgentView,
    lease: SiteLease | None,
    lease_error: str,
    checks: list[ProbeResult],
    last_fence: FenceRecord | None,
    last_heartbeat_at: datetime | None,
) -> SiteAgentReport:
    heard = [t for t in (view.last_peer_ok, last_heartbeat_at) if t is not None]
    login = next((r for r in checks if r.kind == "vcenter" and r.check == "vcenter"), None)
    return SiteAgentReport(
        site=site,
        agent_id=agent_id,
        sent_at=sent_at,
        state=decision.state,
        reason=decision.reason,
        serving=any(r.ok for r in checks if r.service is not None and r.critical),
        lease=LeaseView(
            held=view.aws_reached,
            renewed_at=lease.renewed_at if lease else None,
            expires_at=lease.expires_at if lease else None,
            error="" if view.aws_reached else lease_error,
        ),
        peer=PeerView(
            site=peer_site,
            reached=view.peer_reached,
            last_answered_at=view.last_peer_ok,
            last_heard_at=max(heard) if heard else None,
        ),
        vcenter=_local(login) if login else None,
        checks=[_local(r) for r in checks if r is not login],
        last_fence=last_fence,
    )
