"""One decision: given what changed (a result, or a round's results), which parts and sites are judged again,
in what order. The judging itself lives in `parts` and `sites`, the texts in `alerts`."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from dcwatch.config import Config
from dcwatch.detection.agent_watch import AgentWatch
from dcwatch.detection.alerts import flapping_alert, send, vantage_alert
from dcwatch.detection.announce import condition_key, flip
from dcwatch.detection.decision import Reach
from dcwatch.detection.failover import Failover
from dcwatch.detection.outcomes import Clock, Evaluation, Judged, one_per_part
from dcwatch.detection.parts import Part, Parts
from dcwatch.detection.sight import Sight, SiteChecks, look
from dcwatch.detection.sites import Sites
from dcwatch.events import ProbeResult
from dcwatch.model import CheckState, StoredStatus
from dcwatch.ports import (
    AgentReportStore,
    AuditLog,
    Controls,
    EventPublisher,
    Leases,
    Notifier,
    StatusStore,
    WorkflowStarter,
)


class DecisionStore(StatusStore, Controls, AuditLog, AgentReportStore, Protocol):
    """The state a decision reads and writes besides the check states (which a round reads from its cache)."""


class Decider:
    """One evaluation's decisions: which parts and sites a change judges again, and in what order."""

    def __init__(
        self,
        config: Config,
        store: DecisionStore,
        checks: SiteChecks,
        publisher: EventPublisher,
        workflows: WorkflowStarter,
        notifier: Notifier,
        leases: Leases,
        clock: Clock,
    ):
        self.config, self.store, self.checks, self.notifier, self.clock = config, store, checks, notifier, clock
        self.reach: Reach = {v.name: v.checks for v in config.topology.vantage_points}
        self.agents = AgentWatch(config, store, notifier)
        self.parts = Parts(config, self.reach, store, store, notifier, leases)
        failover = Failover(config, self.reach, store, store, workflows, leases, self.agents)
        self.sites = Sites(config, self.reach, store, store, store, publisher, notifier, leases, self.agents, failover)

    def flapping(self, state: CheckState) -> None:
        """One alert when a check starts flapping from any vantage point, one when it settles everywhere."""
        now = self.clock()
        seen = [c for c in self.checks.site_checks(state.site) if c.check == state.check and c.flapping]
        status = "FLAPPING" if seen else "SETTLED"
        if flip(self.store, condition_key("flapping", f"{state.check}@{state.site}"), "SETTLED", status, now) is None:
            return
        send(self.store, self.notifier, flapping_alert(state, seen, self.config.thresholds, now))

    def decide(self, result: ProbeResult, check_status: str, changed: bool) -> Evaluation:
        if not changed and result.ok:
            # A held-back failover is re-judged on its site's failing results; a passing one changes nothing.
            return Evaluation(check_status)
        stored = self._site(result.site)
        # Pending: a failover held back, or a decision to go DOWN that was interrupted and given back.
        if not changed and stored.blocked is None:
            self._settle_part(result)
            return Evaluation(check_status)
        now = self.clock()
        sight = self._look(self.store.active_site(self.config.active_site))
        if not changed:
            return self.sites.judge(result, result.site, stored, sight, now, check_status)
        self._vantages(sight.isolated, now)
        if result.site == sight.active:
            self.parts.judge(Part(result.site, result.service), sight, now)
        return self._both(result, result.site, stored, sight, now, check_status)

    def decide_round(self, site: str, judged: list[Judged]) -> Evaluation:
        """`decide` once for a round's results of `site`: the parts they touch, then both sites' verdicts.

        The result a decision is dated by (its incident id, `changedAt`) is the round's latest that changed,
        or, with none changed, its latest failing one.
        """
        changed = [j for j in judged if j.changed]
        failing = [j for j in judged if not j.result.ok]
        if not changed and not failing:
            return Evaluation("UP")
        rep = max(changed or failing, key=lambda j: j.result.observed_at)
        status = rep.state.status
        stored = self._site(site)
        active = self.store.active_site(self.config.active_site)
        if not changed and stored.blocked is None:
            if site == active:  # only the active site's parts are judged (the standby's services are off)
                for j in one_per_part(failing):
                    self._settle_part(j.result)
            self._isolation_again(rep.result.vantage, active)
            return Evaluation(status)
        now = self.clock()
        sight = self._look(active)
        if not changed:
            return self.sites.judge(rep.result, site, stored, sight, now, status)
        self._vantages(sight.isolated, now)
        if site == active:
            for j in one_per_part(changed + failing):
                self.parts.judge(Part(site, j.part), sight, now)
        return self._both(rep.result, site, stored, sight, now, status)

    def agent_round(self, result: ProbeResult, check_status: str | None) -> Evaluation | None:
        """A probe round's marker result: its site's agent silent or back, and an alive agent reporting its
        active site not serving judged with the checks as they are (its report may tip a quorum)."""
        now, site = self.clock(), result.site
        self.agents.silence(site, now)
        active = self.store.active_site(self.config.active_site)
        if site != active or not self.agents.evidence(site, now).not_serving:
            return None
        stored = self._site(site)
        if stored.status != "UP":
            return None
        sight = self._look(active)
        return self.sites.judge(result, site, stored, sight, now, check_status or "")

    def _site(self, site: str) -> StoredStatus:
        return self.store.condition(condition_key("site", site), "UP")

    def _look(self, active: str) -> Sight:
        return look(self.checks, self.config, self.reach, active)

    def _both(
        self, result: ProbeResult, site: str, stored: StoredStatus, sight: Sight, now: datetime, check_status: str
    ) -> Evaluation:
        """The result's site judged, then the other: a change at one site can change the other's verdict too,
        through a vantage point's isolation."""
        outcome = self.sites.judge(result, site, stored, sight, now, check_status)
        other = self.config.other_site(site)
        other_outcome = self.sites.judge(result, other, self._site(other), sight, now, check_status)
        return outcome if outcome.site_change or not other_outcome.site_change else other_outcome

    def _settle_part(self, result: ProbeResult) -> None:
        """A failing result that changes no check still settles a service or vCenter DOWN left pending."""
        part = Part(result.site, result.service)
        if not self.parts.pending(part):
            return
        now, active = self.clock(), self.store.active_site(self.config.active_site)
        if result.site != active:
            return
        self.parts.judge(part, self._look(active), now)

    def _isolation_again(self, vantage: str, active: str) -> None:
        """A vantage point failing everything it runs, its checks DOWN already: judged ISOLATED once another
        one's pass is known to be newer than its failures, which may take the other's next round (a round
        mark dates a steady check at its round's start), when nothing changes any more."""
        sight = self._look(active)
        if vantage in sight.blind or vantage in sight.isolated:
            self._vantages(sight.isolated, self.clock())

    def _vantages(self, isolated: frozenset[str], now: datetime) -> None:
        for vantage in self.config.vantage_points:
            status = "ISOLATED" if vantage in isolated else "OK"
            stored = flip(self.store, condition_key("vantage", vantage), "OK", status, now)
            if stored is not None:
                send(self.store, self.notifier, vantage_alert(vantage, status, stored.status, now))
