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
vantage point; a silent agent is announced.

The rooms: `decider` (what is judged again, in what order), `parts` (a service or a vCenter), `sites` and
`failover` (a site's verdict and its failover), `alerts` (the texts and records), `round_cache` (a round's reads).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from dcwatch.config import Config
from dcwatch.detection.agent_watch import agents_configured
from dcwatch.detection.decider import Decider
from dcwatch.detection.health import advance
from dcwatch.detection.outcomes import Clock, Evaluation, Judged
from dcwatch.detection.round_cache import RoundCache
from dcwatch.detection.sight import SiteChecks
from dcwatch.detection.trust import result_refusal, round_refusal
from dcwatch.events import ProbeResult, ProbeRound
from dcwatch.ports import EventPublisher, Leases, Notifier, StateStore, WorkflowStarter


@dataclass(frozen=True)
class Ports:
    """The outside world one evaluation uses; each part of the decision takes the ports it needs from it."""

    store: StateStore
    publisher: EventPublisher
    workflows: WorkflowStarter
    notifier: Notifier
    leases: Leases

    def decider(self, config: Config, clock: Clock, checks: SiteChecks | None = None) -> Decider:
        """`checks`: where the decision reads check states (a round's cache); the store by default."""
        p = self
        return Decider(
            config,
            p.store,
            checks if checks is not None else p.store,
            p.publisher,
            p.workflows,
            p.notifier,
            p.leases,
            clock,
        )


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
        by_agent = ports.decider(config, clock).agent_round(result, outcome.check_status)
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
            return ports.decider(config, clock).decide(result, previous.status, changed=True)
        return Evaluation(None)
    if not store.put_check(state, previous.last_observed_at if previous else None):
        return Evaluation(None)
    decider = ports.decider(config, clock)
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
    judged: list[Judged] = []
    for result in accepted:
        previous = cache.get_check(result.site, result.check, result.vantage)
        state = advance(previous, result, config.thresholds)
        if state is None:
            if previous is not None and previous.last_observed_at == result.observed_at:
                judged.append(Judged(result, previous, previous, redelivered=True))
            continue
        cache.keep(state)
        judged.append(Judged(result, previous, state))
    written = [j.state for j in judged if j.written]
    if written:
        cache.put_checks(written)
    decider = Ports(store, publisher, workflows, notifier, leases).decider(config, clock, checks=cache)
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
