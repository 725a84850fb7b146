"""The active site's parts, each judged on its own: one service, or the site's vCenter. One routine judges
both: a part failing alone is news (one alert, one on its return); failing along with the rest of the site,
it is the start of a site outage, which the site's own alerts announce."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dcwatch.config import Config
from dcwatch.detection.alerts import part_alert, send
from dcwatch.detection.announce import condition_key, part_key
from dcwatch.detection.decision import Reach, Verdict, service_verdict, vcenter_verdict
from dcwatch.detection.sight import Sight
from dcwatch.model import CheckState, HeldBack, Hold, StoredStatus, held
from dcwatch.ports import AuditLog, Leases, Notifier, StatusStore


@dataclass(frozen=True)
class Part:
    site: str
    service: str | None  # None: the site's vCenter

    @property
    def key(self) -> str:
        """Where its condition is stored."""
        return part_key(self.site, self.service)


class Parts:
    """Judges the active site's parts; writes their conditions, records and alerts."""

    def __init__(
        self, config: Config, reach: Reach, status: StatusStore, audit: AuditLog, notifier: Notifier, leases: Leases
    ):
        self.config, self.reach = config, reach
        self.status, self.audit, self.notifier, self.leases = status, audit, notifier, leases

    def pending(self, part: Part) -> bool:
        """Its DOWN was taken pending: a failing result that changes no check still settles it."""
        return held(self.status.condition(part.key, "UP").blocked, Hold.PENDING)

    def judge(self, part: Part, sight: Sight, now: datetime) -> None:
        """ "Failing alone" is known only from the other half's results (a service's: the vCenter's; the vCenter's:
        the services') observed after the part went DOWN, as results arrive unordered: until then its DOWN is
        recorded as pending, and its next result alerts it or lets the site outage speak.

        Services only: one stopping while a recovery holds the lock is that recovery's fencing or shutdown, which
        its notification announces; and while a check of it flaps, its one FLAPPING alert speaks for it (each
        change is recorded, not alerted; a DOWN held back so is marked, and its recovery alerted once it settled).
        """
        stored = self.status.condition(part.key, "UP")
        checks = sight.checks[part.site]
        verdict = self._verdict(part, checks, sight, stored.status)
        pending = held(stored.blocked, Hold.PENDING)
        if verdict.status == stored.status and not pending:
            return
        flapping = verdict.flapping if part.service is not None else ()
        hold, blocked = (HeldBack.flapping(flapping) if flapping else None), None
        news: bool | None
        if verdict.status == "DOWN":
            since = stored.since if pending else now
            news = self._news(part, checks, sight.isolated, since)
            lease = self.leases.holder() if news and part.service is not None else None
            if lease is not None and lease.expires_at > now:
                news, hold = False, HeldBack.recovering(lease.owner)
            if news is not None and flapping:
                news, blocked = False, hold
            elif news is None:
                blocked = HeldBack.pending()
        else:
            news = (stored.alerted or held(stored.blocked, Hold.FLAPPING)) and not flapping
        alert = bool(news)
        if verdict.status == stored.status and held(blocked, Hold.PENDING):
            return  # still waiting for the site's other results
        since = stored.since if verdict.status == stored.status else now
        new = StoredStatus(verdict.status, since=since, blocked=blocked, alerted=alert, version=stored.version + 1)
        if not self.status.change_condition(part.key, stored, new):
            return
        if verdict.status == stored.status and not alert:
            return  # a pending DOWN the site outage explains: its change was recorded when it was taken
        explanation = verdict.explain(self.config.thresholds)
        told = part_alert(part.site, part.service, verdict.status, stored, explanation, now, alert, blocked or hold)
        if alert:
            send(self.audit, self.notifier, told)
        else:
            self.audit.append_audit(told.audit_id, told.record)

    def _verdict(self, part: Part, checks: list[CheckState], sight: Sight, previous: str) -> Verdict:
        vantages, thresholds = self.config.vantage_points, self.config.thresholds
        if part.service is not None:
            isolated = sight.isolated
            return service_verdict(
                part.site, part.service, checks, vantages, thresholds, isolated, self.reach, previous
            )
        uncounted = sight.isolated | sight.blind  # infrastructure: see `decision.failing_everything`
        return vcenter_verdict(part.site, checks, vantages, thresholds, uncounted, self.reach, previous)

    def _news(
        self, part: Part, checks: list[CheckState], isolated: frozenset[str], since: datetime | None
    ) -> bool | None:
        """Whether the part failing alone is news: True when the site's other half (a service's: the
        infrastructure; the vCenter's: the services) passes in results observed since the part went DOWN,
        False when the site or that half fails, None while no such results are in yet."""
        if self.status.condition(condition_key("site", part.site), "UP").status != "UP":
            return False
        return passing(checks, part.site, isolated, infrastructure=part.service is not None, since=since)


def passing(
    checks: list[CheckState], site: str, isolated: frozenset[str], infrastructure: bool, since: datetime | None
) -> bool | None:
    """Whether every counted infrastructure check of the site (or every critical service check) passes
    in results observed since `since`: False as soon as one fails, None while one has no such result."""
    group = [
        c
        for c in checks
        if c.site == site
        and c.is_infrastructure == infrastructure
        and c.vantage not in isolated
        and (infrastructure or c.critical)
    ]
    if not group or any(c.status != "UP" or c.failures > 0 for c in group):
        return False
    fresh = all(since is None or (c.last_observed_at is not None and c.last_observed_at >= since) for c in group)
    return True if fresh else None
