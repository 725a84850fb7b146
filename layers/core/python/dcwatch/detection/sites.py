"""A site's verdict and what follows from it: its condition changed (DOWN or RECOVERED, announced once), an
active site's failover started or held back, and a held-back failover judged again on each failing result."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from functools import cached_property

from dcwatch.config import Config, MaintenanceWindow
from dcwatch.detection.agent_watch import AgentWatch
from dcwatch.detection.alerts import failover_dropped, failover_rejudged, send, site_alert
from dcwatch.detection.announce import condition_key
from dcwatch.detection.decision import Reach, Role, open_windows, site_verdict
from dcwatch.detection.failover import Failover, SiteCase
from dcwatch.detection.health import incident_id
from dcwatch.detection.outcomes import Evaluation
from dcwatch.detection.sight import Sight
from dcwatch.events import ProbeResult, SiteStatusChanged
from dcwatch.model import HeldBack, Hold, StoredStatus, held
from dcwatch.ports import AuditLog, Controls, EventPublisher, Leases, Notifier, StatusStore


class Sites:
    """Judges a site from its checks and records, acts on and announces what changed."""

    def __init__(
        self,
        config: Config,
        reach: Reach,
        status: StatusStore,
        controls: Controls,
        audit: AuditLog,
        publisher: EventPublisher,
        notifier: Notifier,
        leases: Leases,
        agents: AgentWatch,
        failover: Failover,
    ):
        self.config, self.reach, self.status, self.controls, self.audit = config, reach, status, controls, audit
        self.publisher, self.notifier, self.leases = publisher, notifier, leases
        self.agents, self.failover = agents, failover

    @cached_property
    def windows(self) -> list[MaintenanceWindow]:
        """The config's maintenance windows and those operators opened by hand, read once per decision."""
        return [*self.config.maintenance, *self.controls.maintenance_windows()]

    def judge(
        self, result: ProbeResult, site: str, stored: StoredStatus, sight: Sight, now: datetime, check_status: str
    ) -> Evaluation:
        role: Role = "active" if site == sight.active else "standby"
        excluded = sorted({w.service for w in open_windows(self.windows, site, now) if w.service})
        vantages, thresholds = self.config.vantage_points, self.config.thresholds
        uncounted = sight.isolated | sight.blind if role == "standby" else sight.isolated
        verdict = site_verdict(
            site, role, sight.checks[site], vantages, thresholds, uncounted, excluded, self.reach, stored.status
        )
        key = condition_key("site", site)
        if role == "active" and self.agents.enabled:
            lease = self.leases.holder()
            recovering = lease is not None and lease.expires_at > now
            verdict, partitioned = self.agents.judge(site, verdict, stored.status, now, recovering=recovering)
            if partitioned:
                # The vantage points see it DOWN, its agent says it serves: it stays UP, judged again on each
                # failing result (pending) until the paths are back or its agent no longer says so.
                if not held(stored.blocked, Hold.PARTITIONED):
                    marked = replace(stored, blocked=HeldBack.partitioned(), version=stored.version + 1)
                    self.status.change_condition(key, stored, marked)
                return Evaluation(check_status)
        if role == "active" and verdict.status == "DOWN" and stored.status == "UP" and self._moved_away(site, now):
            # A failover, migration or failback away from this site fences or shuts it down: its own doing,
            # announced by its own notification. Judged as the standby once that recovery has recorded it.
            return Evaluation(check_status, ignored=f"{site} fails while a recovery moves production away from it")
        case = SiteCase(site, result, verdict, stored, sight, now)
        if verdict.status != stored.status:
            return self._changed(case, check_status)
        if stored.status == "DOWN" and stored.blocked is not None:
            return self._rejudge(case, check_status)
        if stored.blocked is not None:  # an interrupted decision the site no longer calls for
            self.status.change_condition(key, stored, replace(stored, blocked=None, version=stored.version + 1))
        return Evaluation(check_status)

    def _moved_away(self, site: str, now: datetime) -> bool:
        lease = self.leases.holder()
        return lease is not None and lease.expires_at > now and lease.leaving == site

    def _changed(self, case: SiteCase, check_status: str) -> Evaluation:
        """Take the site's new status, act, announce; on failure give the change back (nothing may be lost)."""
        verdict, stored, result = case.verdict, case.stored, case.result
        down = verdict.status == "DOWN"
        incident = incident_id(case.site, result.observed_at) if down else stored.incident_id
        claimed = StoredStatus(
            verdict.status,
            since=(verdict.failing_since or result.observed_at) if down else case.now,
            incident_id=incident,
            version=stored.version + 1,
        )
        key = condition_key("site", case.site)
        if not self.status.change_condition(key, stored, claimed):
            return Evaluation(check_status)
        try:
            execution, action, blocked = None, f"none: {case.site} is UP again", None
            if down and verdict.role == "active":
                assert incident is not None
                execution, action, blocked = self.failover.start(case, incident, self.windows)
                if held(blocked, Hold.PRODUCTION_MOVED):
                    # This decision read the active site before a recovery recorded another one: the site
                    # is the standby now, and is judged as such from its next result. Nothing to announce.
                    back = replace(stored, version=claimed.version + 1)
                    self.status.change_condition(key, claimed, back)
                    return Evaluation(check_status, ignored=f"{case.site} is no longer the active site: {blocked}")
            elif down:
                action = f"none: {case.site} is the standby; failover would need it healthy"
            if blocked is not None:
                settled = replace(claimed, blocked=blocked, version=claimed.version + 1)
                self.status.change_condition(key, claimed, settled)
            change = self._announce(case, incident, action, started=execution is not None)
        except Exception as exc:
            # Give the change back; going DOWN, mark it so that the site's next failing result decides again
            # (the redelivery of this result may arrive after newer ones and be dropped as late).
            current = self.status.condition(key, verdict.status)
            interrupted = HeldBack.interrupted(type(exc).__name__)
            back = replace(stored, blocked=interrupted if down else stored.blocked, version=current.version + 1)
            self.status.change_condition(key, current, back)
            raise
        detection_s = None
        if down and verdict.failing_since is not None:
            detection_s = max(0.0, (change.decided_at - verdict.failing_since).total_seconds())
        return Evaluation(check_status, change, execution, detection_s)

    def _rejudge(self, case: SiteCase, check_status: str) -> Evaluation:
        """A held-back failover, judged again: started once nothing holds it back, recorded when the reason changes."""
        stored, key = case.stored, condition_key("site", case.site)
        incident = stored.incident_id or incident_id(case.site, case.result.observed_at)
        if case.verdict.role != "active":
            settled = replace(stored, blocked=None, version=stored.version + 1)
            if self.status.change_condition(key, stored, settled):
                self.audit.append_audit(incident, failover_dropped(case.site, case.now))
            return Evaluation(check_status)
        execution, action, blocked = self.failover.start(case, incident, self.windows)
        if blocked == stored.blocked:
            return Evaluation(check_status)
        settled = replace(stored, blocked=blocked, version=stored.version + 1)
        if self.status.change_condition(key, stored, settled):
            explanation = case.verdict.explain(self.config.thresholds)
            self.audit.append_audit(
                incident, failover_rejudged(case.site, action, explanation, stored.blocked, case.now)
            )
        return Evaluation(check_status, execution=execution)

    def _announce(self, case: SiteCase, incident: str | None, action: str, started: bool) -> SiteStatusChanged:
        verdict, stored = case.verdict, case.stored
        explanation = verdict.explain(self.config.thresholds)
        change = SiteStatusChanged(
            site=case.site,
            status=verdict.status,
            previous=stored.status,  # type: ignore[arg-type]
            role=verdict.role,
            changed_at=case.result.observed_at,
            decided_at=case.now,
            failed_checks=list(verdict.failed),
            threshold=self.config.thresholds.failures_to_down,
            incident_id=incident,
            action=action,
            explanation=explanation,
        )
        self.publisher.publish_site_status(change)
        alert = site_alert(verdict, stored, explanation, incident, action, started, case.result.observed_at, case.now)
        send(self.audit, self.notifier, alert)
        return change
