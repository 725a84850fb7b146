"""What the evaluator makes of the site agents' reports (`SiteAgentReport`, source `dcwatch.agent.<site>`).

- Each site's latest report is kept in the state table: the workflow's lease proof reads the standby's.
- An agent is *alive* while the lease it last reported renewing still runs. A site whose alive agent
  reports it serving is not failed over however the vantage points see it: one PARTITIONED alert, and
  PARTITION OVER once the vantage points see it again.
- An alive agent reporting its (active) site not serving counts towards DOWN like one more vantage point:
  it completes a quorum, it never makes one alone.
- An agent silent for longer than `lease_ttl_s + margin_s` gets one AGENT SILENT alert, AGENT BACK on its
  return: judged on probe rounds (it sends nothing while silent) and on each report.
- A report of one site's agent about another site is refused, and logged by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from dcwatch.agent.report import SiteAgentReport, agent_source
from dcwatch.config import Config
from dcwatch.detection.announce import announce, condition_key, duration, flip
from dcwatch.detection.decision import Verdict, View
from dcwatch.detection.trust import outside_window
from dcwatch.events import REPLAY_FIELD
from dcwatch.model import StoredStatus
from dcwatch.ports import AgentReportStore, AuditLog, Notifier, StatusStore
from dcwatch.subjects import alert_subject


def agents_configured(config: Config) -> bool:
    return config.fencing is not None and bool(config.fencing.agents)


def agent_vantage(site: str) -> str:
    """How verdicts name a site's agent among the vantage points."""
    return f"agent-{site}"


@dataclass(frozen=True)
class AgentEvidence:
    """A site agent's latest report, as of `now`."""

    site: str
    report: SiteAgentReport | None
    now: datetime

    @property
    def alive(self) -> bool:
        """It renewed its lease and that lease still runs: the agent reaches AWS and its site runs it."""
        lease = self.report.lease if self.report else None
        return lease is not None and lease.held and lease.expires_at is not None and lease.expires_at > self.now

    @property
    def serving(self) -> bool:
        return self.alive and self.report is not None and self.report.serving

    @property
    def not_serving(self) -> bool:
        return self.alive and self.report is not None and not self.report.serving

    def describe(self) -> str:
        if self.report is None:
            return f"no report from {self.site}'s agent"
        renewed = self.report.lease.renewed_at
        return (
            f"{self.site}'s agent {self.report.agent_id} reports {self.report.state}, "
            f"{'serving' if self.report.serving else 'not serving'}, lease renewed at "
            f"{f'{renewed:%H:%M:%S}' if renewed else 'never'} (report of {self.report.sent_at:%H:%M:%S})"
        )


def with_agent_view(verdict: Verdict, report: SiteAgentReport) -> Verdict:
    """The active site's verdict with its own agent's view as one more vantage point seeing it DOWN, when at
    least one counted vantage point sees it DOWN too."""
    if not verdict.agreeing:
        return verdict
    services = [c for c in report.checks if c.critical and c.service is not None]
    failed = tuple(f"{c.check}: {c.reason}" if c.reason else c.check for c in services if not c.ok)
    view = View(agent_vantage(report.site), tuple(c.check for c in services), failed or ("not serving",), True)
    views = (*verdict.views, view)
    agreeing = [v for v in views if v.down and not v.isolated]
    status = "DOWN" if len(agreeing) >= verdict.quorum else verdict.status
    return replace(verdict, views=views, status=status, failing_since=verdict.failing_since or report.sent_at)


def refusal(source: str, report: SiteAgentReport, config: Config, now: datetime, replay: str | None = None) -> str:
    """Why a report must not be kept ('' when it may): an agent reports on its own site only, live (no archive
    replay; sent within the live window of `dcwatch.detection.trust`: one dated 2099 would stand as the latest for
    good)."""
    if replay is not None:
        return f"an archive replay ({REPLAY_FIELD} {replay!r}) is never taken as live"
    late = outside_window(report.sent_at, now)
    if late:
        return f"sent {late}"
    sites = [s.name for s in config.sites]
    if report.site not in sites:
        return f"a report about {report.site}, which is not a site of {config.name} ({', '.join(sites)})"
    if source != agent_source(report.site):
        return f"a report about {report.site} from {source}: an agent reports on its own site only"
    if not agents_configured(config):
        return "the config names no site agents (fencing.agents)"
    if report.peer.site != config.other_site(report.site):
        return f"{report.site}'s agent reports on peer {report.peer.site}, not on {config.other_site(report.site)}"
    return ""


class AgentStore(StatusStore, AuditLog, AgentReportStore, Protocol):
    """What the evaluator's side of the agents reads and writes: the reports, its conditions, their records."""


class AgentWatch:
    """The evaluator's side of the agents: their evidence in site verdicts, partitions and silence. Each change
    is announced once (`dcwatch.detection.announce`); reports are read once per instance (one evaluation)."""

    def __init__(self, config: Config, store: AgentStore, notifier: Notifier):
        self.config, self.store, self.notifier = config, store, notifier
        self._reports: dict[str, SiteAgentReport | None] = {}

    def _flip(self, key: str, default: str, status: str, now: datetime) -> StoredStatus | None:
        return flip(self.store, key, default, status, now)

    def _record(self, audit_id: str, subject: str, message: str, record: dict[str, object]) -> None:
        announce(self.store, self.notifier, audit_id, subject, message, record)

    @property
    def enabled(self) -> bool:
        return agents_configured(self.config)

    @property
    def silent_after_s(self) -> float:
        assert self.config.fencing is not None
        return self.config.fencing.act_after_s

    def evidence(self, site: str, now: datetime) -> AgentEvidence:
        if site not in self._reports:
            self._reports[site] = self.store.agent_report(site)
        return AgentEvidence(site, self._reports[site], now)

    def judge(
        self, site: str, verdict: Verdict, stored_status: str, now: datetime, *, recovering: bool = False
    ) -> tuple[Verdict, bool]:
        """The active site's verdict with its agent's word: (verdict, partitioned). Partitioned, the site stays
        as it is (UP): the vantage points see it DOWN, its alive agent says it serves. While a recovery holds
        the failover lock, the agent's "not serving" is that recovery fencing or shutting the site down (as
        for the services' own alerts): it turns no UP site DOWN, lest the site be failed over a second time (a
        site already DOWN stays so: the recovery may be its own failover, started on that very word)."""
        evidence = self.evidence(site, now)
        if verdict.status == "DOWN" and stored_status == "UP" and evidence.serving:
            self._partition(site, True, verdict, evidence, now)
            return verdict, True
        if verdict.status == "UP" and evidence.not_serving and not (recovering and stored_status == "UP"):
            assert evidence.report is not None
            verdict = with_agent_view(verdict, evidence.report)
        self._partition(site, False, verdict, evidence, now)
        return verdict, False

    def held_back(self, site: str, now: datetime) -> str:
        """Why a failover of `site` must wait for its agent ('' when it need not)."""
        evidence = self.evidence(site, now)
        if not evidence.serving:
            return ""
        return f"partitioned: AWS cannot reach {site}; its agent reports it alive and serving ({evidence.describe()})"

    def _partition(
        self, site: str, partitioned: bool, verdict: Verdict, evidence: AgentEvidence, now: datetime
    ) -> None:
        status = "PARTITIONED" if partitioned else "OK"
        previous = self._flip(condition_key("partition", site), "OK", status, now)
        if previous is None:
            return
        explanation = verdict.explain(self.config.thresholds)
        record: dict[str, object] = {"kind": "partition", "site": site, "status": status, "decidedAt": now}
        record |= {"explanation": explanation, "agent": evidence.describe()}
        if partitioned:
            subject = alert_subject(
                f"PARTITIONED {site}: AWS cannot reach {site}; its agent reports it alive and serving"
            )
            text = (
                f"AWS cannot reach {site}; its agent reports it alive and serving: {evidence.describe()}. "
                f"The vantage points see it DOWN ({explanation}); no failover while its agent renews its lease and "
                f"reports it serving. Check the paths from AWS to {site} (internet, VPN or Direct Connect)."
            )
        elif verdict.status == "UP":
            took = duration(previous.since, now)
            subject = alert_subject(f"PARTITION OVER {site}: AWS reaches {site} again after {took}")
            text = f"the vantage points see {site} again after {took}: {explanation}"
        else:
            # Still DOWN from AWS, its agent no longer says it serves: the site's own DOWN alert speaks now.
            self.store.append_audit(f"partition-{site}", record | {"reason": "its agent no longer reports it serving"})
            return
        self._record(f"partition-{site}", subject, text, record)

    def silence(self, site: str, now: datetime) -> None:
        """AGENT SILENT once its latest report is older than lease_ttl_s + margin_s, AGENT BACK when it reports
        again. An agent never heard counts from the evaluator's first look."""
        report = self.evidence(site, now).report
        key = condition_key("agent", site)
        stored = self.store.condition(key, "OK")
        if report is None and stored.since is None:
            self.store.change_condition(key, stored, StoredStatus("OK", since=now, version=stored.version + 1))
            return
        last = report.sent_at if report else stored.since
        assert last is not None
        # Never heard: silent from the first look on, back only with a report.
        silent = (now - last).total_seconds() > self.silent_after_s or (report is None and stored.status == "SILENT")
        previous = self._flip(key, "OK", "SILENT" if silent else "OK", now)
        if previous is None:
            return
        record: dict[str, object] = {"kind": "agent", "site": site, "status": "SILENT" if silent else "OK"}
        record |= {"lastReportAt": report.sent_at if report else None, "decidedAt": now}
        if silent:
            heard = f"since {last:%H:%M:%S}" if report else f"since the evaluator started watching at {last:%H:%M:%S}"
            subject = alert_subject(f"AGENT SILENT {site}: no report since {last:%H:%M:%S}")
            text = (
                f"the agent of {site} has sent no report {heard}, more than lease_ttl_s + margin_s "
                f"({self.silent_after_s:g} s): it is down, or cut off from AWS. {site} is judged by its vantage "
                "points alone meanwhile, and a failover that needs its word to prove fencing asks a human."
            )
        else:
            took = duration(previous.since, now)
            subject = alert_subject(f"AGENT BACK {site}: its agent reports again after {took} silent")
            text = f"the agent of {site} reports again: {self.evidence(site, now).describe()}"
        self._record(f"agent-{site}", subject, text, record)


@dataclass(frozen=True)
class AgentReportOutcome:
    """What one site agent's report did, for the handler's log line."""

    site: str
    kept: bool = False  # the site's latest report now (False: a later one is kept already)
    refused: str = ""  # why it was not kept at all


def receive_agent_report(
    source: str,
    report: SiteAgentReport,
    config: Config,
    store: AgentStore,
    notifier: Notifier,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    replay: str | None = None,
) -> AgentReportOutcome:
    """Keep the site's latest report (the lease proof reads the standby's) and announce an agent back from
    silence. One agent reports on its own site only, live: anything else is refused, and changes nothing.
    `replay`: the name of the archive replay the event came from, if it did."""
    now = clock()
    refused = refusal(source, report, config, now, replay)
    if refused:
        return AgentReportOutcome(report.site, refused=refused)
    if not store.put_agent_report(report):
        return AgentReportOutcome(report.site)
    AgentWatch(config, store, notifier).silence(report.site, now)
    return AgentReportOutcome(report.site, kept=True)
