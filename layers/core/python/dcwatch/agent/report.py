"""The agent's report on the dcwatch bus: its site's view from inside, sent with its lease renewals.

Its source names the site (`dcwatch.agent.<site>`), so IAM (`events:source`) lets each agent put only
its own site's reports: EventBridge has no IAM condition on a detail field.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from dcwatch.agent.quorum import AgentState

AGENT_SOURCE_PREFIX = "dcwatch.agent"
SITE_AGENT_REPORT = "SiteAgentReport"


def agent_source(site: str) -> str:
    return f"{AGENT_SOURCE_PREFIX}.{site}"


class _Detail(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class LocalCheck(_Detail):
    """One check the agent ran at its own site (the vCenter login, site and service checks)."""

    check: str
    service: str | None = None
    kind: Literal["http", "tls", "tcp", "dns", "vcenter"]
    critical: bool
    ok: bool
    reason: str = ""
    latency_ms: float = Field(alias="latencyMs", ge=0)
    observed_at: AwareDatetime = Field(alias="observedAt")


class LeaseView(_Detail):
    held: bool = Field(description="this agent holds its site's lease after its latest renewal attempt")
    renewed_at: AwareDatetime | None = Field(default=None, alias="renewedAt", description="its last renewal")
    expires_at: AwareDatetime | None = Field(default=None, alias="expiresAt")
    error: str = Field(default="", description="why the latest renewal failed")


class PeerView(_Detail):
    site: str
    reached: bool = Field(description="the latest heartbeat of this agent was answered, signed")
    last_answered_at: AwareDatetime | None = Field(
        default=None, alias="lastAnsweredAt", description="when the peer last answered this agent's heartbeat"
    )
    last_heard_at: AwareDatetime | None = Field(
        default=None, alias="lastHeardAt", description="the later of lastAnsweredAt and the peer's last heartbeat"
    )


class FenceRecord(_Detail):
    fence_id: str = Field(alias="fenceId", description="<site>-fenced-<UTC time>: the audit record's key")
    fenced_at: AwareDatetime = Field(alias="fencedAt")
    reason: str
    vms_powered_off: list[str] = Field(alias="vmsPoweredOff")
    errors: list[str] = Field(default=[], description="what the fence could not do (vCenter, hook)")
    audited: bool = Field(description="the audit record is written (else it waits on disk for AWS)")


class SiteAgentReport(_Detail):
    """One site agent's view: lease, peer, quorum state, and the site's checks as seen from inside."""

    site: str
    agent_id: str = Field(alias="agentId")
    sent_at: AwareDatetime = Field(alias="sentAt")
    state: AgentState = Field(description="SERVING, DEGRADED (one voter lost), ISOLATED, FENCE, FENCED")
    reason: str = Field(description="the quorum decision, in words")
    serving: bool = Field(description="the site's critical service checks pass, run at the site")
    lease: LeaseView
    peer: PeerView
    vcenter: LocalCheck | None = Field(description="the vCenter login from inside the site (None before the first)")
    checks: list[LocalCheck] = Field(description="the site's own checks and its services' checks, run at the site")
    last_fence: FenceRecord | None = Field(default=None, alias="lastFence")


class SiteAgentReportEvent(BaseModel):
    """The report as EventBridge delivers it: its `source` says which site's agent (and IAM role) put it."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)

    source: str
    detail_type: Literal["SiteAgentReport"] = Field(alias="detail-type")
    detail: SiteAgentReport
    replay_name: str | None = Field(default=None, alias="replay-name", description="set on an archive replay")
