"""An active site gone DOWN: whether its failover may start (`decision.failover_decision` and its gates),
then the start under the failover lock (`recovery.start`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dcwatch.config import Config, MaintenanceWindow
from dcwatch.detection.agent_watch import AgentWatch
from dcwatch.detection.decision import (
    FailoverDecision,
    Gates,
    Reach,
    Verdict,
    describe_window,
    failover_decision,
    open_windows,
    site_verdict,
)
from dcwatch.detection.sight import Sight
from dcwatch.events import ProbeResult
from dcwatch.model import HeldBack, StoredStatus
from dcwatch.ports import Controls, Leases, StatusStore, WorkflowStarter
from dcwatch.recovery.request import default_reason
from dcwatch.recovery.start import start_recovery


@dataclass(frozen=True)
class SiteCase:
    """A site's verdict as one decision reached it, with what it was read from."""

    site: str
    result: ProbeResult
    verdict: Verdict
    stored: StoredStatus
    sight: Sight
    now: datetime


class Failover:
    """The automatic failover of a DOWN active site: held back by any gate, else started under the lock."""

    def __init__(
        self,
        config: Config,
        reach: Reach,
        status: StatusStore,
        controls: Controls,
        workflows: WorkflowStarter,
        leases: Leases,
        agents: AgentWatch,
    ):
        self.config, self.reach, self.status, self.controls = config, reach, status, controls
        self.workflows, self.leases, self.agents = workflows, leases, agents

    def start(
        self, case: SiteCase, incident: str, windows: list[MaintenanceWindow]
    ) -> tuple[str | None, str, HeldBack | None]:
        """(execution, action, why held back): decide, take the lock, start the workflow."""
        standby = self.config.other_site(case.site)
        decision = self._decision(case, incident, windows)
        if not decision.start:
            return None, f"failover to {standby} not started: {decision.reason}", HeldBack.gates(decision.reason)

        # The site was active when this decision read it; a recovery that held the lock until just now may
        # have moved production away since. Under the lock, that read is final.
        def moved() -> str:
            active = self.status.active_site(self.config.active_site)
            return "" if active == case.site else HeldBack.production_moved(active).text

        request = self._request(case, incident, standby)
        lease_s = self.config.workflow.lease_s
        start = start_recovery(
            self.workflows,
            self.leases,
            incident,
            request,
            lease_s=lease_s,
            now=case.now,
            leaving=case.site,
            under_lock=moved,
        )
        why: HeldBack | None = None
        if start.holder is not None:
            why = HeldBack.lock_held(start.holder.owner, start.holder.expires_at.isoformat())
        elif start.withdrawn:
            why = HeldBack.parse(start.withdrawn)
        if why is not None:
            return None, f"failover to {standby} not started: {why.text}", why
        # The cooldown starts when a recovery moves production (its RecordAudit), not with this start.
        return start.execution, f"failover to {standby} started: {decision.reason}", None

    def _decision(self, case: SiteCase, incident: str, windows: list[MaintenanceWindow]) -> FailoverDecision:
        site, sight = case.site, case.sight
        standby = self.config.other_site(site)
        vantages, thresholds = self.config.vantage_points, self.config.thresholds
        uncounted = sight.isolated | sight.blind
        standby_verdict = site_verdict(
            standby, "standby", sight.standby_checks, vantages, thresholds, uncounted, reach=self.reach
        )
        gates = Gates(
            automation=self.controls.automation(),
            now=case.now,
            cooldown_s=self.config.automation.cooldown_s,
            last_failover=self.status.last_failover(),
            acknowledged=self.controls.acknowledged(incident),
            maintenance=tuple(describe_window(w) for w in open_windows(windows, site, case.now) if w.service is None),
            partitioned=self.agents.held_back(site, case.now) if self.agents.enabled else "",
        )
        return failover_decision(case.verdict, standby_verdict, sight.standby_checks, gates, uncounted)

    def _request(self, case: SiteCase, incident: str, standby: str) -> dict[str, object]:
        reason = default_reason(case.site, case.stored.since or case.result.observed_at)
        return {
            "mode": "disaster",
            "from": case.site,
            "to": standby,
            "reason": f"{reason}; {case.verdict.explain(self.config.thresholds)}",
            "dryRun": False,
            "incidentId": incident,
            "trigger": "automatic",
        }
