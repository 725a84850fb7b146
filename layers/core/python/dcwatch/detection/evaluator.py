"""The evaluator's use case: one ProbeResult in, state updated, decisions taken, recorded and announced.

Safe under EventBridge's at-least-once, unordered delivery: stale results are dropped by the
check's last-seen time at its vantage point; every change of a site, service or vantage point is a
conditional write only one evaluator wins; a failover needs the single lock (a lease owned by the
incident) and starts under the incident id, which Step Functions accepts once.

Every change writes a decision record to the audit trail and sends one alert (edge-triggered): a
site DOWN or RECOVERED (with the outage's duration), a service DOWN or RECOVERED (not while a check
of it flaps: the check's one FLAPPING alert speaks for it), the active site's vCenter DOWN while its
services answer or RECOVERED, a vantage point ISOLATED or back, a check FLAPPING or settled. A DOWN
active site whose failover is held back (automation off, maintenance, cooldown, lock held, standby
unproven, flapping) is re-judged on each of its results, so the failover starts as soon as nothing
holds it back any more.

With site agents (`fencing.agents`), their reports weigh in (`dcwatch.detection.agent_watch`): an active site whose
agent reports it alive and serving is PARTITIONED, not DOWN; its agent's "not serving" counts like a
vantage point; a silent agent is announced. `receive_agent_report` keeps each site's latest report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, cast

from dcwatch.agent.report import SiteAgentReport
from dcwatch.config import Config, MaintenanceWindow
from dcwatch.detection.agent_watch import AgentWatch, agents_configured, refusal
from dcwatch.detection.announce import announce, duration, flip
from dcwatch.detection.decision import (
    FailoverDecision,
    Gates,
    Reach,
    Role,
    Verdict,
    describe_window,
    failing_everything,
    failover_decision,
    isolated_vantages,
    open_windows,
    service_verdict,
    site_verdict,
    vcenter_verdict,
)
from dcwatch.detection.health import advance, incident_id, refreshed, repeats
from dcwatch.detection.trust import result_refusal, round_refusal
from dcwatch.errors import StaleState
from dcwatch.events import ProbeResult, ProbeRound, SiteStatusChanged
from dcwatch.model import CheckState, RoundMark, StoredStatus
from dcwatch.ports import EventPublisher, Leases, Notifier, StateStore, WorkflowStarter
from dcwatch.recovery.request import default_reason
from dcwatch.topology import Topology

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Evaluation:
    """What one result caused, for the handler's log line."""

    check_status: str | None
    site_change: SiteStatusChanged | None = None
    execution: str | None = None
    detection_s: float | None = None  # a site gone DOWN: from its first failed observation to the decision
    ignored: str = ""  # why a result changed nothing although it was new

    @property
    def stale(self) -> bool:
        return self.check_status is None


@dataclass
class Ports:
    store: StateStore
    publisher: EventPublisher
    workflows: WorkflowStarter
    notifier: Notifier
    leases: Leases


def evaluate(
    result: ProbeResult,
    config: Config,
    store: StateStore,
    publisher: EventPublisher,
    workflows: WorkflowStarter,
    notifier: Notifier,
    leases: Leases,
    clock: Clock = lambda: datetime.now(UTC),
) -> Evaluation:
    if result.vantage not in config.vantage_points:
        return Evaluation(None, ignored=f"vantage {result.vantage} is not one of {', '.join(config.vantage_points)}")
    vantage = config.topology.vantage(result.vantage)
    if not vantage.runs(result.site, result.check):
        return Evaluation(None, ignored=f"{result.vantage} does not run {result.check} at {result.site}")
    ports = Ports(store, publisher, workflows, notifier, leases)
    outcome = _evaluate(result, config, ports, clock)
    if agents_configured(config) and (result.site, result.check) in vantage.round_markers:
        # Once per round and site from each vantage point: the site agent's silence, and its word on the site.
        by_agent = _Decider(config, ports, clock).agent_round(result, outcome.check_status)
        if by_agent is not None and by_agent.site_change:
            return by_agent
    return outcome


def _evaluate(result: ProbeResult, config: Config, ports: Ports, clock: Clock) -> Evaluation:
    store = ports.store
    if result.ok and store.record_pass(result):
        return Evaluation("UP")  # a steady check passed again: nothing else can change
    previous = store.get_check(result.site, result.check, result.vantage)
    state = advance(previous, result, config.thresholds)
    if state is None:
        # An exact redelivery may be Lambda's retry of a decision that failed half-way: decide again.
        if previous is not None and previous.last_observed_at == result.observed_at:
            return _Decider(config, ports, clock).decide(result, previous.status, changed=True)
        return Evaluation(None)
    if not store.put_check(state, previous.last_observed_at if previous else None):
        return Evaluation(None)
    decider = _Decider(config, ports, clock)
    if previous is not None and previous.flapping != state.flapping:
        decider.flapping(state)
    changed = previous is None or (previous.status, previous.flapping) != (state.status, state.flapping)
    return decider.decide(result, state.status, changed)


@dataclass(frozen=True)
class RoundEvaluation:
    """What one ProbeRound (chunk) caused, for the handler's log line and metrics."""

    vantage: str
    site: str
    round_id: str
    chunk: int
    results: int
    written: int = 0  # check states that changed, written in one batch
    stale: bool = False  # the chunk was judged already: a duplicate, or an older round come late
    ignored: tuple[str, ...] = ()  # results left out (`trust.result_refusal`): the rest was judged
    refused: str = ""  # why nothing of the round was judged (`trust`): it changed nothing, not even its mark
    pruned: tuple[str, ...] = ()  # stored check states the config no longer names, deleted
    decision: Evaluation = field(default_factory=lambda: Evaluation("UP"))


def evaluate_round(
    probe_round: ProbeRound,
    config: Config,
    store: StateStore,
    publisher: EventPublisher,
    workflows: WorkflowStarter,
    notifier: Notifier,
    leases: Leases,
    clock: Clock = lambda: datetime.now(UTC),
    cache: RoundCache | None = None,
) -> RoundEvaluation:
    """One vantage point's round of one site: the state read once, every result judged in memory, what
    changed written in one batch, the site decided once, the chunk marked judged last (a crash before the
    mark lets the redelivery judge it again: its written states read as exact redeliveries, which decide again).

    `cache`: the check states one invocation read already, shared by the rounds of its batch; the evaluator is
    their one writer (`wiring.QueueSpec`), so they stay true while it keeps them. A batch that failed reads afresh.

    The per-result semantics are `evaluate`'s: a check's hysteresis and flapping, the part and site verdicts,
    quorum, isolation, pending parts. A steady check that passes again is not written: the round mark stands
    for it (`health.refreshed`).
    """
    head = RoundEvaluation(
        probe_round.vantage, probe_round.site, probe_round.round_id, probe_round.chunk, len(probe_round.results)
    )
    now = clock()
    refused = round_refusal(probe_round, config, now)
    if refused:
        return replace(head, refused=refused)
    refusals = [(r, result_refusal(r, config, now)) for r in probe_round.results]
    accepted = [r for r, why in refusals if not why]
    ignored = [why for _, why in refusals if why]
    if not accepted:
        return replace(head, refused=f"no result of the round can be judged: {'; '.join(ignored)}")
    cache = cache if cache is not None else RoundCache(store, config.topology)
    mark = cache.mark(probe_round.site, probe_round.vantage)
    pruned = tuple(cache.pruned())
    if mark is not None and mark.judged(probe_round.started_at, probe_round.chunk):
        return replace(head, stale=True, pruned=pruned)
    judged: list[_Judged] = []
    for result in accepted:
        previous = cache.get_check(result.site, result.check, result.vantage)
        state = advance(previous, result, config.thresholds)
        if state is None:
            if previous is not None and previous.last_observed_at == result.observed_at:
                judged.append(_Judged(result, previous, previous, redelivered=True))
            continue
        cache.keep(state)
        judged.append(_Judged(result, previous, state))
    written = [j.state for j in judged if j.written]
    if written:
        cache.put_checks(written)
    ports = Ports(cast(StateStore, cache), publisher, workflows, notifier, leases)
    decider = _Decider(config, ports, clock)
    for j in judged:
        if j.previous is not None and j.previous.flapping != j.state.flapping:
            decider.flapping(j.state)
    decision = decider.decide_round(probe_round.site, judged)
    if agents_configured(config) and probe_round.chunk == 0 and judged:
        # Once per round and site from each vantage point: the site agent's silence, and its word on the site.
        by_agent = decider.agent_round(judged[0].result, judged[0].state.status)
        if by_agent is not None and by_agent.site_change and not decision.site_change:
            decision = by_agent
    cache.mark_round(probe_round)
    pruned += tuple(cache.pruned())
    return replace(head, written=len(written), ignored=tuple(ignored), pruned=pruned, decision=decision)


@dataclass(frozen=True)
class _Judged:
    """One result of a round and the check state it leads to."""

    result: ProbeResult
    previous: CheckState | None
    state: CheckState
    redelivered: bool = False  # already judged (exact redelivery): its decision may have been interrupted

    @property
    def changed(self) -> bool:
        """As `evaluate` calls it: a new check, or its status or flapping changed (or a redelivery)."""
        if self.redelivered or self.previous is None:
            return True
        return (self.previous.status, self.previous.flapping) != (self.state.status, self.state.flapping)

    @property
    def written(self) -> bool:
        """Everything but a result that only repeats its check's state, which the round mark records."""
        if self.redelivered:
            return False
        return self.previous is None or not repeats(self.previous, self.state)

    @property
    def part(self) -> str | None:
        return self.result.service


class RoundCache:
    """The state store as the round evaluator sees it: each site's check states and round marks read once,
    kept in memory as the rounds judge them; everything else goes to the store itself.

    It may outlive an invocation (a warm Lambda keeps it): each invocation (`begin`) first reads the site's
    generation, one item, and reads the site again only where it changed. Every write of the site's states or
    marks first claims a new generation, conditionally on the one read: a second writer (an older copy of
    the function still running, a test) makes that claim fail, and the batch is judged again from a fresh
    read. A batch that failed forgets everything (`forget`), as a cold start would.

    Only the checks the topology names now are kept: a check removed or renamed in the config, or one of a
    vantage point gone, would otherwise stand in the site's verdict with its last state for good (under
    `site_rule: all`, its last UP would keep the site from ever being DOWN). They are deleted from the store
    when a site is read (`pruned` names them, once).
    """

    def __init__(self, store: StateStore, topology: Topology):
        self.store = store
        self.topology = topology
        self._pruned: list[str] = []
        self._checks: dict[str, dict[tuple[str, str], CheckState]] = {}
        self._marks: dict[str, dict[str, RoundMark]] = {}
        self._generations: dict[str, str | None] = {}
        self._current: set[str] = set()  # sites known current in this invocation
        self._claimed: set[str] = set()  # sites this invocation holds a new generation of

    def begin(self) -> RoundCache:
        """A new invocation: each site's copy is checked against its generation before it is used."""
        self._current.clear()
        self._claimed.clear()
        return self

    def forget(self) -> None:
        self._checks.clear()
        self._marks.clear()
        self._generations.clear()
        self.begin()

    def _site(self, site: str) -> dict[tuple[str, str], CheckState]:
        if site in self._current:
            return self._checks[site]
        generation = self.store.generation(site)
        if site not in self._checks or generation != self._generations.get(site):
            # The generation first: a write between the two reads leaves a copy older than it says, read again.
            checks, marks = self.store.site_snapshot(site)
            gone = [c for c in checks if not self._named(c)]
            if gone:
                self.store.delete_checks(gone)
                self._pruned += [f"{c.label} at {c.site}" for c in gone]
            self._checks[site] = {(c.check, c.vantage): c for c in checks if self._named(c)}
            self._marks[site] = marks
            self._generations[site] = generation
        self._current.add(site)
        return self._checks[site]

    def _named(self, state: CheckState) -> bool:
        """A check the topology has now, run from a vantage point it has now."""
        return state.vantage in self._vantages and self.topology.vantage(state.vantage).runs(state.site, state.check)

    @cached_property
    def _vantages(self) -> frozenset[str]:
        return frozenset(self.topology.vantage_names)

    def pruned(self) -> list[str]:
        """The check states deleted since the last call, as `check@vantage at site`."""
        out, self._pruned = self._pruned, []
        return out

    def _claim(self, site: str) -> None:
        """Before this invocation's first write of the site: a new generation, or StaleState when it moved."""
        self._site(site)
        if site in self._claimed:
            return
        claimed = self.store.claim_generation(site, self._generations.get(site))
        if claimed is None:
            self.forget()
            raise StaleState(f"{site}'s check states were written by another evaluator meanwhile: judged again")
        self._generations[site] = claimed
        self._claimed.add(site)

    def mark(self, site: str, vantage: str) -> RoundMark | None:
        self._site(site)
        return self._marks[site].get(vantage)

    def get_check(self, site: str, check: str, vantage: str) -> CheckState | None:
        state = self._site(site).get((check, vantage))
        return None if state is None else refreshed(state, self._marks[site].get(vantage))

    def keep(self, state: CheckState) -> None:
        self._site(state.site)[(state.check, state.vantage)] = state

    def put_checks(self, states: list[CheckState]) -> None:
        for site in sorted({s.site for s in states}):
            self._claim(site)
        self.store.put_checks(states)

    def mark_round(self, probe_round: ProbeRound) -> None:
        """Mark the chunk judged, in the store and here (a later round reads it from here)."""
        p = probe_round
        self._claim(p.site)
        self.store.mark_round(p.site, p.vantage, p.started_at, p.chunk, p.chunks)
        marks = self._marks[p.site]
        marks[p.vantage] = RoundMark.after(marks.get(p.vantage), p.vantage, p.started_at, p.chunk, p.chunks)

    def site_checks(self, site: str) -> list[CheckState]:
        checks, marks = self._site(site), self._marks[site]
        return [refreshed(c, marks.get(c.vantage)) for c in checks.values()]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def _key(kind: str, subject: str) -> str:
    return f"{kind}/{subject}"


class _Decider:
    def __init__(self, config: Config, ports: Ports, clock: Clock):
        self.config, self.ports, self.clock = config, ports, clock
        self.store = ports.store
        self.reach: Reach = {v.name: v.checks for v in config.topology.vantage_points}
        self.blind: frozenset[str] = frozenset()  # failing everything they run: see decision.failing_everything
        self.agents = AgentWatch(config, self.store, ports.notifier)

    @cached_property
    def windows(self) -> list[MaintenanceWindow]:
        """The config's maintenance windows and those operators opened by hand, read once per decision."""
        return [*self.config.maintenance, *self.store.maintenance_windows()]

    def _record(self, audit_id: str, subject: str, message: str, record: dict[str, object]) -> None:
        announce(self.store, self.ports.notifier, audit_id, subject, message, record)

    def _flip(self, key: str, default: str, status: str, now: datetime) -> StoredStatus | None:
        return flip(self.store, key, default, status, now)

    def flapping(self, state: CheckState) -> None:
        """One alert when a check starts flapping from any vantage point, one when it settles everywhere."""
        t = self.config.thresholds
        now = self.clock()
        seen = [c for c in self.store.site_checks(state.site) if c.check == state.check and c.flapping]
        status = "FLAPPING" if seen else "SETTLED"
        if self._flip(_key("flapping", f"{state.check}@{state.site}"), "SETTLED", status, now) is None:
            return
        if seen:
            where = ", ".join(sorted(c.vantage for c in seen))
            subject = f"[dcwatch] FLAPPING {state.check} at {state.site}: no automatic action"
            text = (
                f"{state.check} at {state.site} changed between UP and DOWN {t.flap_changes} times or more within "
                f"{t.flap_window_s} s, seen from {where}; while it flaps, no failover starts automatically"
            )
        else:
            subject = f"[dcwatch] SETTLED {state.check} at {state.site}: {state.status}"
            text = f"{state.check} at {state.site} changed fewer than {t.flap_changes} times within {t.flap_window_s} s"
        record: dict[str, object] = {
            "kind": "check-flapping",
            "site": state.site,
            "check": state.check,
            "vantage": state.vantage,
        }
        record |= {"flapping": bool(seen), "status": state.status, "explanation": text, "decidedAt": now}
        self._record(f"flapping-{state.site}", subject, text, record)

    def decide(self, result: ProbeResult, check_status: str, changed: bool) -> Evaluation:
        if not changed and result.ok:
            # A held-back failover is re-judged on its site's failing results; a passing one changes nothing.
            return Evaluation(check_status)
        stored = self.store.condition(_key("site", result.site), "UP")
        # Pending: a failover held back, or a decision to go DOWN that was interrupted and given back.
        pending = stored.blocked is not None
        if not changed and not pending:
            self._settle_part(result)
            return Evaluation(check_status)
        now = self.clock()
        active = self.store.active_site(self.config.active_site)
        standby = self.config.other_site(active)
        checks, isolated = self._both_sites(active, standby)
        if not changed:
            return self._judge(result, result.site, stored, checks, isolated, active, now, check_status)
        self._vantages(isolated, now)
        if result.service is not None and result.site == active:
            self._service(result.site, result.service, checks[active], isolated, now)
        elif result.site == active:
            self._vcenter(result.site, checks[active], isolated, now)
        # A change at one site can change the other's verdict too, through a vantage point's isolation.
        outcome = self._judge(result, result.site, stored, checks, isolated, active, now, check_status)
        other = self.config.other_site(result.site)
        stored_other = self.store.condition(_key("site", other), "UP")
        other_outcome = self._judge(result, other, stored_other, checks, isolated, active, now, check_status)
        return outcome if outcome.site_change or not other_outcome.site_change else other_outcome

    def decide_round(self, site: str, judged: list[_Judged]) -> Evaluation:
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
        stored = self.store.condition(_key("site", site), "UP")
        active = self.store.active_site(self.config.active_site)
        if not changed and stored.blocked is None:
            if site == active:  # only the active site's parts are judged (the standby's services are off)
                for j in _one_per_part(failing):
                    self._settle_part(j.result)
            self._isolation_again(rep.result.vantage, active)
            return Evaluation(status)
        now = self.clock()
        standby = self.config.other_site(active)
        checks, isolated = self._both_sites(active, standby)
        if not changed:
            return self._judge(rep.result, site, stored, checks, isolated, active, now, status)
        self._vantages(isolated, now)
        if site == active:
            for j in _one_per_part(changed + failing):
                if j.part is not None:
                    self._service(site, j.part, checks[active], isolated, now)
                else:
                    self._vcenter(site, checks[active], isolated, now)
        outcome = self._judge(rep.result, site, stored, checks, isolated, active, now, status)
        other = self.config.other_site(site)
        stored_other = self.store.condition(_key("site", other), "UP")
        other_outcome = self._judge(rep.result, other, stored_other, checks, isolated, active, now, status)
        return outcome if outcome.site_change or not other_outcome.site_change else other_outcome

    def _isolation_again(self, vantage: str, active: str) -> None:
        """A vantage point failing everything it runs, its checks DOWN already: judged ISOLATED once another
        one's pass is known to be newer than its failures, which may take the other's next round (a round
        mark dates a steady check at its round's start), when nothing changes any more."""
        _, isolated = self._both_sites(active, self.config.other_site(active))
        if vantage in self.blind or vantage in isolated:
            self._vantages(isolated, self.clock())

    def agent_round(self, result: ProbeResult, check_status: str | None) -> Evaluation | None:
        """A probe round's marker result: its site's agent silent or back, and an alive agent reporting its
        active site not serving judged with the checks as they are (its report may tip a quorum)."""
        now, site = self.clock(), result.site
        self.agents.silence(site, now)
        active = self.store.active_site(self.config.active_site)
        if site != active or not self.agents.evidence(site, now).not_serving:
            return None
        stored = self.store.condition(_key("site", site), "UP")
        if stored.status != "UP":
            return None
        standby = self.config.other_site(active)
        checks, isolated = self._both_sites(active, standby)
        return self._judge(result, site, stored, checks, isolated, active, now, check_status or "")

    def _both_sites(self, active: str, standby: str) -> tuple[dict[str, list[CheckState]], frozenset[str]]:
        """Both sites' check states, and the ISOLATED vantage points among them (`_isolation`)."""
        checks = {site: self.store.site_checks(site) for site in (active, standby)}
        return checks, self._isolation(checks, active, standby)

    def _isolation(self, checks: dict[str, list[CheckState]], active: str, standby: str) -> frozenset[str]:
        """The ISOLATED vantage points; notes those failing everything, which no infrastructure verdict counts."""
        both, vantages = checks[active] + checks[standby], self.config.vantage_points
        self.blind = failing_everything(both, active, standby, vantages, self.reach)
        return isolated_vantages(both, active, standby, vantages, self.reach)

    def _settle_part(self, result: ProbeResult) -> None:
        """A failing result that changes no check still settles a service or vCenter DOWN left pending."""
        key = _key("service", f"{result.service}@{result.site}") if result.service else _key("vcenter", result.site)
        if not _pending(self.store.condition(key, "UP")):
            return
        now, active = self.clock(), self.store.active_site(self.config.active_site)
        if result.site != active:
            return
        standby = self.config.other_site(active)
        checks, isolated = self._both_sites(active, standby)
        if result.service is not None:
            self._service(result.site, result.service, checks[active], isolated, now)
        else:
            self._vcenter(result.site, checks[active], isolated, now)

    def _judge(
        self,
        result: ProbeResult,
        site: str,
        stored: StoredStatus,
        checks: dict[str, list[CheckState]],
        isolated: frozenset[str],
        active: str,
        now: datetime,
        check_status: str,
    ) -> Evaluation:
        role: Role = "active" if site == active else "standby"
        excluded = sorted({w.service for w in open_windows(self.windows, site, now) if w.service})
        vantages, thresholds = self.config.vantage_points, self.config.thresholds
        uncounted = isolated | self.blind if role == "standby" else isolated
        verdict = site_verdict(
            site, role, checks[site], vantages, thresholds, uncounted, excluded, self.reach, stored.status
        )
        if role == "active" and self.agents.enabled:
            lease = self.ports.leases.holder()
            recovering = lease is not None and lease.expires_at > now
            verdict, partitioned = self.agents.judge(site, verdict, stored.status, now, recovering=recovering)
            if partitioned:
                # The vantage points see it DOWN, its agent says it serves: it stays UP, judged again on each
                # failing result (pending) until the paths are back or its agent no longer says so.
                if stored.blocked != PARTITIONED:
                    held = replace(stored, blocked=PARTITIONED, version=stored.version + 1)
                    self.store.change_condition(_key("site", site), stored, held)
                return Evaluation(check_status)
        if role == "active" and verdict.status == "DOWN" and stored.status == "UP" and self._moved_away(site, now):
            # A failover, migration or failback away from this site fences or shuts it down: its own doing,
            # announced by its own notification. Judged as the standby once that recovery has recorded it.
            return Evaluation(check_status, ignored=f"{site} fails while a recovery moves production away from it")
        standby_checks = checks[self.config.other_site(active)]
        context = _SiteContext(site, result, verdict, stored, standby_checks, isolated, now)
        if verdict.status != stored.status:
            return self._site_changed(context, check_status)
        if stored.status == "DOWN" and stored.blocked is not None:
            return self._retry_failover(context, check_status)
        if stored.blocked is not None:  # an interrupted decision the site no longer calls for
            self.store.change_condition(
                _key("site", site), stored, replace(stored, blocked=None, version=stored.version + 1)
            )
        return Evaluation(check_status)

    def _moved_away(self, site: str, now: datetime) -> bool:
        lease = self.ports.leases.holder()
        return lease is not None and lease.expires_at > now and lease.leaving == site

    def _vantages(self, isolated: frozenset[str], now: datetime) -> None:
        for vantage in self.config.vantage_points:
            status = "ISOLATED" if vantage in isolated else "OK"
            stored = self._flip(_key("vantage", vantage), "OK", status, now)
            if stored is None:
                continue
            if status == "ISOLATED":
                subject = f"[dcwatch] ISOLATED vantage point {vantage}: its view is not counted"
                text = (
                    f"{vantage} sees every critical check it runs fail while another vantage point sees one of "
                    "them pass: "
                    "the fault is on its side; its results count for no site until it sees the sites again"
                )
            else:
                subject = f"[dcwatch] vantage point {vantage} sees the sites again"
                text = f"{vantage} is no longer isolated; its results count again"
            record: dict[str, object] = {
                "kind": "vantage",
                "vantage": vantage,
                "status": status,
                "previous": stored.status,
            }
            self._record(f"vantage-{vantage}", subject, text, record | {"explanation": text, "decidedAt": now})

    def _service(
        self, site: str, service: str, checks: list[CheckState], isolated: frozenset[str], now: datetime
    ) -> None:
        key = _key("service", f"{service}@{site}")
        stored = self.store.condition(key, "UP")
        vantages, thresholds = self.config.vantage_points, self.config.thresholds
        verdict = service_verdict(site, service, checks, vantages, thresholds, isolated, self.reach, stored.status)
        if verdict.status == stored.status and not _pending(stored):
            return
        # One service failing at a site that is otherwise fine is news; services failing along with the
        # site's vCenter are the start of a site outage, which the site's own alerts announce, and services
        # stopping while a recovery holds the lock are its fencing or shutdown, which its notification
        # announces. "Otherwise fine" is known only from the vCenter's results observed after the service
        # went DOWN (results arrive unordered): until then the DOWN is recorded as pending, and the
        # service's next result alerts it or lets the site outage speak. While a check of the service
        # flaps, its one FLAPPING alert speaks for it: each change is recorded, not alerted; a DOWN held
        # back so is marked, and its recovery alerted once it settled.
        flapping = verdict.flapping
        held, blocked = (f"flapping: {', '.join(flapping)}" if flapping else None), None
        if verdict.status == "DOWN":
            since = stored.since if _pending(stored) else now
            news = self._news(site, checks, isolated, infrastructure=True, since=since)
            lease = self.ports.leases.holder() if news else None
            if lease is not None and lease.expires_at > now:
                news, held = False, f"a recovery holds the failover lock: {lease.owner}"
            if news is not None and flapping:
                news, blocked = False, held
            elif news is None:
                blocked = PENDING
        else:
            news = (stored.alerted or _held_by_flapping(stored)) and not flapping
        alert = bool(news)
        if verdict.status == stored.status and blocked == PENDING:
            return  # still waiting for the site's other results
        since = stored.since if verdict.status == stored.status else now
        new = StoredStatus(verdict.status, since=since, blocked=blocked, alerted=alert, version=stored.version + 1)
        if not self.store.change_condition(key, stored, new):
            return
        if verdict.status == stored.status and not alert:
            return  # a pending DOWN the site outage explains: its change was recorded when it was taken
        explanation = verdict.explain(self.config.thresholds)
        if verdict.status == "DOWN":
            subject = f"[dcwatch] SERVICE DOWN {service} at {site}: no automatic action"
            text = f"{service} at {site} DOWN: {explanation}. A service alone never moves production."
        else:
            subject = f"[dcwatch] SERVICE RECOVERED {service} at {site} after {duration(stored.since, now)}"
            text = f"{service} at {site} UP again after {duration(stored.since, now)}: {explanation}"
        record: dict[str, object] = {"kind": "service", "service": service, "site": site, "status": verdict.status}
        record |= {"previous": stored.status, "explanation": explanation, "decidedAt": now, "alerted": alert}
        if held or blocked:
            record["heldBack"] = blocked or held
        if alert:
            self._record(f"service-{service}@{site}", subject, text, record)
        else:
            self.store.append_audit(f"service-{service}@{site}", record)

    def _news(
        self,
        site: str,
        checks: list[CheckState],
        isolated: frozenset[str],
        infrastructure: bool,
        since: datetime | None,
    ) -> bool | None:
        """Whether a part failing alone at `site` is news: True when the site's other part (infrastructure
        or services) passes in results observed since the part went DOWN, False when the site or that
        part fails, None while no such results are in yet."""
        if self.store.condition(_key("site", site), "UP").status != "UP":
            return False
        return _passing(checks, site, isolated, infrastructure=infrastructure, since=since)

    def _vcenter(self, site: str, checks: list[CheckState], isolated: frozenset[str], now: datetime) -> None:
        """The active site's vCenter DOWN while every service of the site answers: one warning, one on its
        return. Failing along with the services, it is the start of a site outage the site's alerts announce;
        which of the two it is, the services' results observed after the vCenter went DOWN tell."""
        key = _key("vcenter", site)
        stored = self.store.condition(key, "UP")
        vantages, thresholds = self.config.vantage_points, self.config.thresholds
        verdict = vcenter_verdict(site, checks, vantages, thresholds, isolated | self.blind, self.reach, stored.status)
        if verdict.status == stored.status and not _pending(stored):
            return
        blocked = None
        if verdict.status == "DOWN":
            since = stored.since if _pending(stored) else now
            news = self._news(site, checks, isolated, infrastructure=False, since=since)
            if news is None:
                if _pending(stored):
                    return
                blocked = PENDING
        else:
            news = stored.alerted
        alert = bool(news)
        since = stored.since if verdict.status == stored.status else now
        new = StoredStatus(verdict.status, since=since, blocked=blocked, alerted=alert, version=stored.version + 1)
        if not self.store.change_condition(key, stored, new):
            return
        if verdict.status == stored.status and not alert:
            return
        explanation = verdict.explain(self.config.thresholds)
        if verdict.status == "DOWN":
            subject = f"[dcwatch] VCENTER DOWN at {site} (active): its services answer; no automatic action"
            text = (
                f"the vCenter of {site} is DOWN while its services answer: {explanation}. Production stays; "
                f"until it is back, a failover could not fence {site}'s VMs and nothing can be powered there."
            )
        else:
            subject = f"[dcwatch] VCENTER RECOVERED at {site} after {duration(stored.since, now)}"
            text = f"the vCenter of {site} is UP again after {duration(stored.since, now)}: {explanation}"
        record: dict[str, object] = {"kind": "vcenter", "site": site, "status": verdict.status}
        record |= {"previous": stored.status, "explanation": explanation, "decidedAt": now, "alerted": alert}
        if blocked:
            record["heldBack"] = blocked
        if alert:
            self._record(f"vcenter-{site}", subject, text, record)
        else:
            self.store.append_audit(f"vcenter-{site}", record)

    def _site_changed(self, ctx: _SiteContext, check_status: str) -> Evaluation:
        """Take the site's new status, act, announce; on failure give the change back (nothing may be lost)."""
        verdict, stored, result = ctx.verdict, ctx.stored, ctx.result
        down = verdict.status == "DOWN"
        incident = incident_id(ctx.site, result.observed_at) if down else stored.incident_id
        claimed = StoredStatus(
            verdict.status,
            since=(verdict.failing_since or result.observed_at) if down else ctx.now,
            incident_id=incident,
            version=stored.version + 1,
        )
        key = _key("site", ctx.site)
        if not self.store.change_condition(key, stored, claimed):
            return Evaluation(check_status)
        try:
            execution, action, blocked = None, f"none: {ctx.site} is UP again", None
            if down and verdict.role == "active":
                assert incident is not None
                execution, action, blocked = self._failover(ctx, incident)
                if blocked is not None and blocked.startswith(PRODUCTION_MOVED):
                    # This decision read the active site before a recovery recorded another one: the site
                    # is the standby now, and is judged as such from its next result. Nothing to announce.
                    back = replace(stored, version=claimed.version + 1)
                    self.store.change_condition(key, claimed, back)
                    return Evaluation(check_status, ignored=f"{ctx.site} is no longer the active site: {blocked}")
            elif down:
                action = f"none: {ctx.site} is the standby; failover would need it healthy"
            if blocked is not None:
                settled = replace(claimed, blocked=blocked, version=claimed.version + 1)
                self.store.change_condition(key, claimed, settled)
            change = self._announce(ctx, incident, action, started=execution is not None)
        except Exception as exc:
            # Give the change back; going DOWN, mark it so that the site's next failing result decides again
            # (the redelivery of this result may arrive after newer ones and be dropped as late).
            current = self.store.condition(key, verdict.status)
            interrupted = f"decision interrupted ({type(exc).__name__}); judged again on the next failing result"
            back = replace(stored, blocked=interrupted if down else stored.blocked, version=current.version + 1)
            self.store.change_condition(key, current, back)
            raise
        detection_s = None
        if down and verdict.failing_since is not None:
            detection_s = max(0.0, (change.decided_at - verdict.failing_since).total_seconds())
        return Evaluation(check_status, change, execution, detection_s)

    def _failover(self, ctx: _SiteContext, incident: str) -> tuple[str | None, str, str | None]:
        """(execution, action, why held back): decide, take the lock, start the workflow."""
        standby = self.config.other_site(ctx.site)
        decision = self._decision(ctx, incident)
        if not decision.start:
            return None, f"failover to {standby} not started: {decision.reason}", decision.reason
        ttl = self.config.workflow.lease_s
        lease = self.ports.leases.acquire(incident, ttl, ctx.now, ctx.site)
        if lease.owner != incident:
            reason = f"the failover lock is held by {lease.owner} until {lease.expires_at.isoformat()}"
            return None, f"failover to {standby} not started: {reason}", reason
        # The site was active when this decision read it; a recovery that held the lock until just now may
        # have moved production away since. Under the lock, that read is final.
        if (active := self.store.active_site(self.config.active_site)) != ctx.site:
            self.ports.leases.release(incident)
            reason = f"{PRODUCTION_MOVED} to {active} meanwhile"
            return None, f"failover to {standby} not started: {reason}", reason
        try:
            execution = self.ports.workflows.start(incident, self._request(ctx, incident, standby))
        except Exception:
            self.ports.leases.release(incident)
            raise
        # The cooldown starts when a recovery moves production (its RecordAudit), not with this start.
        return execution, f"failover to {standby} started: {decision.reason}", None

    def _decision(self, ctx: _SiteContext, incident: str) -> FailoverDecision:
        site = ctx.site
        standby = self.config.other_site(site)
        vantages, thresholds = self.config.vantage_points, self.config.thresholds
        standby_verdict = site_verdict(
            standby, "standby", ctx.standby_checks, vantages, thresholds, ctx.isolated | self.blind, reach=self.reach
        )
        gates = Gates(
            automation=self.store.automation(),
            now=ctx.now,
            cooldown_s=self.config.automation.cooldown_s,
            last_failover=self.store.last_failover(),
            acknowledged=self.store.acknowledged(incident),
            maintenance=tuple(
                describe_window(w) for w in open_windows(self.windows, site, ctx.now) if w.service is None
            ),
            partitioned=self.agents.held_back(site, ctx.now) if self.agents.enabled else "",
        )
        uncounted = ctx.isolated | self.blind
        return failover_decision(ctx.verdict, standby_verdict, ctx.standby_checks, gates, uncounted)

    def _request(self, ctx: _SiteContext, incident: str, standby: str) -> dict[str, object]:
        reason = default_reason(ctx.site, ctx.stored.since or ctx.result.observed_at)
        return {
            "mode": "disaster",
            "from": ctx.site,
            "to": standby,
            "reason": f"{reason}; {ctx.verdict.explain(self.config.thresholds)}",
            "dryRun": False,
            "incidentId": incident,
            "trigger": "automatic",
        }

    def _retry_failover(self, ctx: _SiteContext, check_status: str) -> Evaluation:
        """A held-back failover, judged again: started once nothing holds it back, recorded when the reason changes."""
        stored, key = ctx.stored, _key("site", ctx.site)
        incident = stored.incident_id or incident_id(ctx.site, ctx.result.observed_at)
        if ctx.verdict.role != "active":
            settled = replace(stored, blocked=None, version=stored.version + 1)
            if self.store.change_condition(key, stored, settled):
                text = f"{ctx.site} is no longer the active site: its held-back failover is dropped"
                self.store.append_audit(incident, {"kind": "failover", "explanation": text, "decidedAt": ctx.now})
            return Evaluation(check_status)
        execution, action, blocked = self._failover(ctx, incident)
        if blocked == stored.blocked:
            return Evaluation(check_status)
        settled = replace(stored, blocked=blocked, version=stored.version + 1)
        if self.store.change_condition(key, stored, settled):
            record: dict[str, object] = {"kind": "failover", "site": ctx.site, "action": action, "decidedAt": ctx.now}
            record |= {"explanation": ctx.verdict.explain(self.config.thresholds), "previouslyHeldBack": stored.blocked}
            self.store.append_audit(incident, record)
        return Evaluation(check_status, execution=execution)

    def _announce(self, ctx: _SiteContext, incident: str | None, action: str, started: bool) -> SiteStatusChanged:
        verdict, stored, result = ctx.verdict, ctx.stored, ctx.result
        explanation = verdict.explain(self.config.thresholds)
        change = SiteStatusChanged(
            site=ctx.site,
            status=verdict.status,
            previous=stored.status,  # type: ignore[arg-type]
            role=verdict.role,
            changed_at=result.observed_at,
            decided_at=ctx.now,
            failed_checks=list(verdict.failed),
            threshold=self.config.thresholds.failures_to_down,
            incident_id=incident,
            action=action,
            explanation=explanation,
        )
        self.ports.publisher.publish_site_status(change)
        if verdict.status == "DOWN":
            subject = f"[dcwatch] DOWN {ctx.site} ({verdict.role}): {'failover started' if started else 'no failover'}"
            text = f"{ctx.site} ({verdict.role}) DOWN: {explanation}.\nAction: {action}\nIncident: {incident}"
        else:
            took = duration(stored.since, ctx.now)
            subject = f"[dcwatch] RECOVERED {ctx.site} ({verdict.role}) after {took}"
            text = f"{ctx.site} ({verdict.role}) UP again after {took} DOWN: {explanation}.\nIncident: {incident}"
        record: dict[str, object] = {"kind": "site", "site": ctx.site, "role": verdict.role, "status": verdict.status}
        record |= {"previous": stored.status, "explanation": explanation, "action": action, "decidedAt": ctx.now}
        record |= {"changedAt": result.observed_at, "failedChecks": list(verdict.failed)}
        self._record(incident or f"site-{ctx.site}", subject, text, record)
        return change


@dataclass(frozen=True)
class _SiteContext:
    site: str
    result: ProbeResult
    verdict: Verdict
    stored: StoredStatus
    standby_checks: list[CheckState]
    isolated: frozenset[str]
    now: datetime


PENDING = "pending: waiting for the site's other results observed since"
PRODUCTION_MOVED = "production moved"
PARTITIONED = "partitioned: the vantage points see it DOWN, its agent reports it alive and serving"


def _one_per_part(judged: list[_Judged]) -> list[_Judged]:
    """The latest result of each part (a service, or the site's infrastructure) among `judged`."""
    latest: dict[str | None, _Judged] = {}
    for j in judged:
        if j.part not in latest or j.result.observed_at >= latest[j.part].result.observed_at:
            latest[j.part] = j
    return list(latest.values())


def _pending(stored: StoredStatus) -> bool:
    return stored.blocked == PENDING


def _held_by_flapping(stored: StoredStatus) -> bool:
    return bool(stored.blocked) and str(stored.blocked).startswith("flapping")


def _passing(
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
    store: StateStore,
    notifier: Notifier,
    clock: Clock = lambda: datetime.now(UTC),
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
