"""Whether a site keeps serving: the agent's side of the three-voter quorum, as a pure state machine.

The voters are this agent, its peer and AWS. The site keeps serving while it reaches a majority:
itself plus AWS (its lease renewed) or its peer (its heartbeat answered). Cut off from both for
`lease_ttl_s - margin_s` since the last renewal and the last answered heartbeat, it fences itself,
once per isolation, and never undoes a fence: people or a failback bring the site back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

AgentState = Literal["SERVING", "DEGRADED", "ISOLATED", "FENCE", "FENCED"]
Action = Literal["keep", "fence"]


@dataclass(frozen=True)
class Timing:
    lease_ttl_s: float
    margin_s: float

    @property
    def fence_after(self) -> timedelta:
        return timedelta(seconds=self.lease_ttl_s - self.margin_s)


@dataclass(frozen=True)
class AgentView:
    """What the agent knows of the other two voters. Times are the agent's own clock."""

    started_at: datetime
    last_renewal: datetime | None = None  # the last lease renewal AWS accepted
    last_peer_ok: datetime | None = None  # the last heartbeat of ours the peer answered, signed
    aws_reached: bool = False  # the latest renewal attempt succeeded
    peer_reached: bool = False  # the latest heartbeat was answered
    fenced: bool = False  # fenced during the current isolation (cleared once a voter answers again)

    def observe(self, now: datetime, *, renewed: bool, peer_answered: bool) -> AgentView:
        """The view after one round of renewal and heartbeat."""
        return replace(
            self,
            last_renewal=now if renewed else self.last_renewal,
            last_peer_ok=now if peer_answered else self.last_peer_ok,
            aws_reached=renewed,
            peer_reached=peer_answered,
            fenced=self.fenced and not (renewed or peer_answered),
        )

    def renewed_late(self, sent_at: datetime) -> AgentView:
        """A renewal acknowledged after its round gave up on it: AWS was reached, and the lease runs from
        `sent_at` (when the agent sent it, never later), so the fence still comes before AWS may act."""
        last = sent_at if self.last_renewal is None else max(self.last_renewal, sent_at)
        return replace(self, last_renewal=last, fenced=False)

    def after_fence(self) -> AgentView:
        return replace(self, fenced=True)


@dataclass(frozen=True)
class Decision:
    state: AgentState
    action: Action
    reason: str
    fence_at: datetime | None = None  # when an isolated agent fences (or fenced)

    @property
    def serving_majority(self) -> bool:
        return self.state in ("SERVING", "DEGRADED")


def fence_at(view: AgentView, timing: Timing) -> datetime:
    """`lease_ttl - margin` after the later of the last renewal and the last answered heartbeat; an agent
    that never had either counts from its start (a restarted agent's file keeps its last contacts)."""
    renewal = view.last_renewal or view.started_at
    peer = view.last_peer_ok or view.started_at
    return max(renewal, peer) + timing.fence_after


def decide(now: datetime, view: AgentView, timing: Timing) -> Decision:
    """Keep serving with a majority; fence once when cut off from both voters for `lease_ttl - margin`."""
    if view.aws_reached and view.peer_reached:
        return Decision("SERVING", "keep", "lease renewed and peer answered")
    if view.aws_reached:
        return Decision("DEGRADED", "keep", "peer lost, AWS answers: majority with AWS")
    if view.peer_reached:
        return Decision("DEGRADED", "keep", "AWS lost, peer answers: majority with the peer")
    at = fence_at(view, timing)
    if view.fenced:
        return Decision("FENCED", "keep", "fenced; cut off from AWS and the peer", at)
    if now < at:
        left = (at - now).total_seconds()
        return Decision("ISOLATED", "keep", f"cut off from AWS and the peer: fencing in {left:.1f} s", at)
    return Decision(
        "FENCE",
        "fence",
        f"cut off from AWS and the peer for {timing.lease_ttl_s - timing.margin_s:g} s "
        "(lease_ttl_s - margin_s) since the last renewal and answered heartbeat",
        at,
    )
