"""Events on the dcwatch bus: the contract between probe, evaluator, workflow and operators.

Each detail-type has a JSON Schema and a sample in `events/`; the tests hold models, schemas and
samples together.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

PROBE_SOURCE = "dcwatch.probe"
EVALUATOR_SOURCE = "dcwatch.evaluator"
PROBE_RESULT = "ProbeResult"
SITE_STATUS_CHANGED = "SiteStatusChanged"

SiteStatus = Literal["UP", "DOWN"]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ProbeResult(_Event):
    """One positive check, run once, from one vantage point."""

    site: str
    check: str
    service: str | None = Field(default=None, description="None for site infrastructure (vCenter)")
    kind: Literal["http", "tls", "tcp", "dns", "vcenter"]
    critical: bool
    ok: bool
    reason: str = Field(default="", description="why it failed, short: 'status 503', 'timeout after 1.0 s'")
    latency_ms: float = Field(alias="latencyMs", ge=0)
    observed_at: AwareDatetime = Field(alias="observedAt")
    vantage: str
    round_id: str = Field(alias="roundId")


class SiteStatusChanged(_Event):
    """A site changed status; carries the evidence so the decision explains itself."""

    site: str
    status: SiteStatus
    previous: SiteStatus
    role: Literal["active", "standby"]
    changed_at: AwareDatetime = Field(alias="changedAt", description="when the deciding probe result was observed")
    decided_at: AwareDatetime = Field(alias="decidedAt", description="when the evaluator decided")
    failed_checks: list[str] = Field(alias="failedChecks")
    threshold: int
    incident_id: str | None = Field(default=None, alias="incidentId")
    action: str = Field(description="what the evaluator did about it, and why")
    explanation: str = Field(
        default="",
        description="the arithmetic: which checks failed from which vantage points, against which thresholds",
    )
