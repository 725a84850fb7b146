"""Whether the failed site provably cannot serve: the workflow's fencing proof (see fencing.md). Pure.

The standby is promoted only with one positive proof:
- (a) `vcenter`: the failed site's vCenter powered its service VMs off (the Fence step);
- (b) `lease`: the failed site's lease expired more than the margin ago, and the standby's agent reports,
  after that time, that it too has lost the failed site's heartbeats for as long: cut off from both other
  voters, the failed site has fenced itself by the protocol (`dcwatch.agent.quorum`);
- (c) `storage`: the standby's mirror check meets `sites[].storage.fenced_when`: the failed side's
  volumes are offline or demoted.

Without one, a human approves (or not) with the reasons in front of them; `fencing.trust_quorum` alone
lets the quorum verdict stand in for a proof, and says so. Every outcome carries the facts it rests on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dcwatch.agent.report import SiteAgentReport
from dcwatch.config import PROOF_REPORT_SLACK_S, Fencing
from dcwatch.ports import SiteLease

ProofKind = Literal["vcenter", "lease", "storage", "trust_quorum"]
# One Wait state waits at most this long; the wait loop is bounded by `fencing.proof_waits` as well.
MAX_WAIT_S = 300


class FenceProof(BaseModel):
    """What the workflow knows about the failed site's fencing: the proof and its facts, or why there is none."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)

    proven: bool = Field(default=False, description="a proof holds (or trust_quorum stands in for one)")
    kind: ProofKind | None = Field(default=None, description="which proof: vcenter, lease, storage, trust_quorum")
    summary: str = Field(default="", description="the proof, or the lack of one, in one sentence")
    facts: dict[str, Any] = Field(default={}, description="what the proof rests on: times, checks, VMs")
    reasons: list[str] = Field(default=[], description="why each proof does not hold (when none does)")
    attempts: int = Field(default=0, description="how often the proof was sought")
    wait_seconds: int = Field(default=0, alias="waitSeconds", description="> 0: wait this long and look again")


def _at(moment: datetime | None) -> str:
    return f"{moment:%H:%M:%S}" if moment else "never"


def vcenter_proof(site: str, powered_off: list[str], already_off: list[str], not_found: list[str]) -> FenceProof:
    """(a): the Fence step powered the failed site's VMs off through its vCenter."""
    facts = {"poweredOff": powered_off, "alreadyOff": already_off, "notFound": not_found}
    summary = f"vCenter of {site} powered its service VMs off: {', '.join(powered_off) or 'none were on'}"
    return FenceProof(proven=True, kind="vcenter", summary=summary, facts=facts, attempts=1)


def vcenter_reason(site: str, error: dict[str, Any] | None, cause: str) -> str:
    """Why proof (a) does not hold: the Fence step's error as Step Functions caught it."""
    name = str((error or {}).get("Error", "error"))
    return f"its vCenter did not power {site}'s VMs off ({name}: {cause or 'no cause given'})"


@dataclass(frozen=True)
class LeaseVerdict:
    """Proof (b), or why not, and how long until it could hold (None: waiting does not help)."""

    proof: FenceProof | None
    reason: str = ""
    wait_s: float | None = None


def act_after(lease: SiteLease, report: SiteAgentReport | None, fencing: Fencing) -> datetime:
    """When AWS may act: `lease_ttl_s + margin_s` after the later of the failed site's last renewal and
    the last time the standby's agent heard it. The failed site fenced itself `2 x margin_s` before that
    (at `lease_ttl_s - margin_s` after its last contact with either voter), if it was cut off from both."""
    heard = report.peer.last_heard_at if report is not None else None
    last_contact = max(lease.renewed_at, heard) if heard is not None else lease.renewed_at
    return last_contact + timedelta(seconds=fencing.act_after_s)


def lease_proof(
    failed: str,
    standby: str,
    lease: SiteLease | None,
    report: SiteAgentReport | None,
    fencing: Fencing,
    now: datetime,
) -> LeaseVerdict:
    """(b): now >= last renewal + lease_ttl_s + margin_s, and the standby's latest report, sent no earlier
    than the last contact it had with the failed site + lease_ttl_s + margin_s, says it has lost that site.

    The report must be that late: only then does it show that the failed site reached neither voter for the
    whole time it had to fence itself (a report sent earlier cannot tell whether the two met again since)."""
    next_report = fencing.renew_s + PROOF_REPORT_SLACK_S
    if lease is None:
        return LeaseVerdict(None, f"no lease of {failed} on record: its agent never renewed one")
    expires = lease.renewed_at + timedelta(seconds=fencing.act_after_s)
    if now < expires:
        return LeaseVerdict(
            None,
            f"{failed}'s lease was renewed at {_at(lease.renewed_at)} by {lease.agent_id}: it may serve until "
            f"{_at(expires)} (lease_ttl_s {fencing.lease_ttl_s:g} + margin_s {fencing.margin_s:g})",
            (expires - now).total_seconds() + next_report,
        )
    if report is None:
        missing = f"no report from {standby}'s agent on record to confirm it lost {failed}"
        return LeaseVerdict(None, missing, next_report)
    if report.peer.site != failed:
        return LeaseVerdict(None, f"{standby}'s agent reports on {report.peer.site}, not on {failed}")
    deadline = act_after(lease, report, fencing)
    heard = report.peer.last_heard_at
    if report.peer.reached:
        return LeaseVerdict(
            None, f"{standby}'s agent still reaches {failed} (its report of {_at(report.sent_at)})", next_report
        )
    if report.sent_at < deadline:
        return LeaseVerdict(
            None,
            f"{standby}'s agent last heard {failed} at {_at(heard)}: its latest report ({_at(report.sent_at)}) "
            f"is older than {_at(deadline)}, when {failed} must have fenced itself",
            max(0.0, (deadline - now).total_seconds()) + next_report,
        )
    facts = {
        "leaseRenewedAt": lease.renewed_at.isoformat(),
        "leaseAgent": lease.agent_id,
        "leaseState": lease.state,
        "leaseTtlS": fencing.lease_ttl_s,
        "marginS": fencing.margin_s,
        "actAfter": deadline.isoformat(),
        "standbyAgent": report.agent_id,
        "standbyReportSentAt": report.sent_at.isoformat(),
        "standbyState": report.state,
        "peerLastHeardAt": heard.isoformat() if heard else None,
    }
    summary = (
        f"{failed}'s lease expired (last renewed at {_at(lease.renewed_at)}) and {standby}'s agent has not heard "
        f"{failed} since {_at(heard)} (its report of {_at(report.sent_at)}): cut off from both voters for "
        f"lease_ttl_s + margin_s, {failed} fenced itself"
    )
    return LeaseVerdict(FenceProof(proven=True, kind="lease", summary=summary, facts=facts))


def standby_agent_problem(standby: str, lease: SiteLease | None, fencing: Fencing, now: datetime) -> str | None:
    """Why the standby's own agent might undo its promotion, or None.

    An agent fences its site once it has lost AWS and its peer for `lease_ttl_s - margin_s`; with the
    failed site gone, AWS is its only voter. A lease renewed longer ago than that says it may have lost AWS
    too, and then it powers off what the workflow starts. The lease, not the agent's report, decides: the
    agent writes it straight to DynamoDB, so it is as fresh as the agent's contact with AWS."""
    if lease is None:
        return None  # the agent never ran: nothing at the standby can fence it
    age = (now - lease.renewed_at).total_seconds()
    if age <= fencing.fence_after_s:
        return None
    return (
        f"{standby}'s agent last renewed its lease {age:.1f} s ago, at {_at(lease.renewed_at)} (state "
        f"{lease.state or 'unknown'}), more than lease_ttl_s - margin_s ({fencing.fence_after_s:g} s) ago: if it "
        f"has lost its peer as well, it has fenced {standby} and powers off what this failover starts"
    )


@dataclass(frozen=True)
class StorageOutcome:
    """The standby's mirror check with `fenced_when` added, as the probe answered."""

    where: str  # "storage mirror <check> at <site>"
    condition: str
    ok: bool
    reason: str = ""


def storage_proof(failed: str, outcome: StorageOutcome) -> FenceProof | None:
    """(c): the standby's storage says the failed side's volumes are offline or demoted."""
    if not outcome.ok:
        return None
    summary = f"{outcome.where} shows {failed}'s volumes offline or demoted ({outcome.condition})"
    return FenceProof(
        proven=True, kind="storage", summary=summary, facts={"check": outcome.where, "condition": outcome.condition}
    )


def storage_reason(failed: str, standby: str, outcome: StorageOutcome | None) -> str:
    if outcome is None:
        return f"no storage proof configured (sites[{standby}].storage.fenced_when)"
    return f"{outcome.where} does not show {failed}'s volumes offline ({outcome.reason})"


def prove(
    failed: str,
    standby: str,
    *,
    fencing: Fencing | None,
    vcenter: str,
    lease: SiteLease | None,
    report: SiteAgentReport | None,
    storage: StorageOutcome | None,
    attempts: int,
    now: datetime,
) -> FenceProof:
    """One look for proof (b) or (c) after the Fence step did not give (a): a proof, a wait, or the reasons."""
    attempt = attempts + 1
    reasons = [vcenter]
    verdict = LeaseVerdict(None, f"no site agents configured (fencing.agents): no lease of {failed} to expire")
    if fencing is not None and fencing.agents:
        verdict = lease_proof(failed, standby, lease, report, fencing, now)
    if verdict.proof is not None:
        return verdict.proof.model_copy(update={"attempts": attempt, "reasons": reasons})
    reasons.append(verdict.reason)
    proof = storage_proof(failed, storage) if storage is not None else None
    if proof is not None:
        return proof.model_copy(update={"attempts": attempt, "reasons": reasons})
    reasons.append(storage_reason(failed, standby, storage))
    if fencing is not None and fencing.trust_quorum:
        summary = (
            f"not proven fenced ({'; '.join(reasons)}): promoted on the quorum verdict, as fencing.trust_quorum says"
        )
        return FenceProof(proven=True, kind="trust_quorum", summary=summary, reasons=reasons, attempts=attempt)
    waits = fencing.proof_waits if fencing is not None else 0
    summary = cannot_prove(failed, reasons)
    if verdict.wait_s is not None and attempts < waits:
        wait = min(MAX_WAIT_S, max(1, math.ceil(verdict.wait_s)))
        return FenceProof(summary=summary, reasons=reasons, attempts=attempt, wait_seconds=wait)
    return FenceProof(summary=summary, reasons=reasons, attempts=attempt)


def cannot_prove(site: str, reasons: list[str]) -> str:
    """The approval gate's question, as its alert asks it."""
    return f"cannot prove {site} is fenced: {'; '.join(reasons)}, approve to proceed anyway"
