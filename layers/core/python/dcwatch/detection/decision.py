"""Site, service and failover decisions from the checks' states at every vantage point. Pure.

- Aggregation: from one vantage point, the active site is seen DOWN when its critical checks meet
  `thresholds.site_rule` (all, any, at_least N), a service when its critical checks meet `service_rule`.
  The standby is judged on its infrastructure (vCenter, site checks), all of it: its services are off.
- Reach: a vantage point judges only the checks it runs (`dcwatch.topology`: what its placement reaches);
  one that runs none of a verdict's checks has no view of it.
- Fresh evidence: a verdict UP goes DOWN only on checks whose latest result failed. A check still DOWN
  by hysteresis whose latest result passed (e.g. a vantage point back from isolation, its round half in)
  keeps a DOWN verdict DOWN, but never turns an UP one DOWN.
- Quorum: a site or service is DOWN only when `quorum` vantage points, none of them isolated, see it DOWN.
  A site's infrastructure (the standby's verdict, a vCenter's) needs every vantage point that reaches it,
  up to the quorum: it is usually private, seen from the VPC alone, and never moves production by itself.
  A vantage point failing every check it runs right now is left out of it (`failing_everything`).
- Isolation: a vantage point that sees every check it runs fail while another one sees one of those
  checks pass is ISOLATED: the fault is on its side, so its view counts for nothing.
- vCenter: the active site's vCenter DOWN (all its critical parts, by quorum) while its services answer is a
  warning, never a site outage.
- Failover: only for the active site DOWN by quorum, with no flapping check, a standby proven by its
  latest results, automation on, no maintenance window open on the site, its own agent not reporting it
  serving (`dcwatch.detection.agent_watch`), and no failover within the cooldown unless a human acknowledged this
  incident. Every refusal names all its reasons.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from dcwatch.config import VCENTER_PREFIX as VCENTER_CHECK
from dcwatch.config import MaintenanceWindow, Thresholds
from dcwatch.model import AutomationSwitch, CheckState, LastFailover

Role = Literal["active", "standby"]
Status = Literal["UP", "DOWN"]
# Vantage point -> the (site, check) pairs it runs; None: every vantage point runs every check.
Reach = Mapping[str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class Rule:
    """How many of the critical checks must be DOWN: all, any, or at least n."""

    kind: Literal["all", "any", "at_least"]
    n: int = 1

    @classmethod
    def parse(cls, text: str) -> Rule:
        if text.startswith("at_least"):
            return cls("at_least", int(text.split()[1]))
        return cls("all" if text == "all" else "any")

    def met(self, down: int, total: int) -> bool:
        if total == 0:
            return False
        if self.kind == "all":
            return down == total
        return down >= (self.n if self.kind == "at_least" else 1)

    def __str__(self) -> str:
        return f"at least {self.n}" if self.kind == "at_least" else self.kind


@dataclass(frozen=True)
class View:
    """One vantage point's view of a site or a service."""

    vantage: str
    considered: tuple[str, ...]
    failed: tuple[str, ...]  # "check: reason"
    down: bool
    isolated: bool = False

    def summary(self) -> str:
        note = " isolated, not counted" if self.isolated else ""
        return f"{self.vantage} {len(self.failed)}/{len(self.considered)}{note}"


@dataclass(frozen=True)
class Verdict:
    """A site (or one service at a site) as all vantage points see it, with the evidence."""

    subject: str
    site: str
    role: Role
    status: Status
    views: tuple[View, ...]
    quorum: int
    rule: Rule
    failing_since: datetime | None = None  # when the last of the failed checks began failing
    flapping: tuple[str, ...] = ()  # considered checks that flap, as check@vantage
    excluded: tuple[str, ...] = ()  # services left out: a maintenance window is open on them

    @property
    def agreeing(self) -> list[View]:
        return [v for v in self.views if v.down and not v.isolated]

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(sorted({f for v in self.agreeing for f in v.failed}))

    def explain(self, thresholds: Thresholds) -> str:
        """The arithmetic: "3 of 3 critical checks DOWN from 2 of 2 vantage points (quorum 2, ...)"."""
        counted = [v for v in self.views if not v.isolated] or list(self.views)
        worst = max(self.agreeing or counted, key=lambda v: len(v.failed), default=None)
        failed, total = (len(worst.failed), len(worst.considered)) if worst else (0, 0)
        text = (
            f"{failed} of {total} critical checks DOWN from {len(self.agreeing)} of {len(self.views)} vantage points "
            f"(quorum {self.quorum}, rule {self.rule}, {thresholds.failures_to_down} consecutive failures each"
            f"): {', '.join(v.summary() for v in self.views) or 'no results yet'}"
        )
        if self.flapping:
            text += f"; flapping: {', '.join(self.flapping)}"
        if self.excluded:
            text += f"; in maintenance, not counted: {', '.join(self.excluded)}"
        return text


def _runs(reach: Reach | None, vantage: str, site: str, check: str) -> bool:
    return reach is None or (site, check) in reach.get(vantage, frozenset())


def _counts_down(state: CheckState, previous: str | None) -> bool:
    return state.status == "DOWN" and (previous != "UP" or state.failures > 0)


def _view(
    vantage: str,
    checks: Sequence[CheckState],
    names: Sequence[str],
    rule: Rule,
    isolated: bool,
    previous: str | None = None,
) -> View:
    mine = {c.check: c for c in checks if c.vantage == vantage}
    failed = tuple(
        f"{n}: {mine[n].reason}" if mine[n].reason else n
        for n in names
        if n in mine and _counts_down(mine[n], previous)
    )
    return View(vantage, tuple(names), failed, rule.met(len(failed), len(names)), isolated)


def _verdict(
    subject: str,
    site: str,
    role: Role,
    checks: Sequence[CheckState],
    vantages: Sequence[str],
    rule: Rule,
    quorum: int,
    isolated: Iterable[str],
    excluded: Sequence[str] = (),
    reach: Reach | None = None,
    infrastructure: bool = False,
    previous: str | None = None,
) -> Verdict:
    isolated = set(isolated)
    names = sorted({c.check for c in checks})
    views = tuple(
        _view(v, checks, mine, rule, v in isolated, previous)
        for v in vantages
        if (mine := [n for n in names if _runs(reach, v, site, n)])
    )
    if infrastructure and reach is not None:
        quorum = max(1, min(quorum, len(views)))
    agreeing = [v for v in views if v.down and not v.isolated]
    failing = [c for c in checks if _counts_down(c, previous) and c.vantage in {v.vantage for v in agreeing}]
    return Verdict(
        subject,
        site,
        role,
        "DOWN" if len(agreeing) >= quorum else "UP",
        views,
        quorum,
        rule,
        max((c.failing_since for c in failing if c.failing_since), default=None),
        tuple(sorted(c.label for c in checks if c.flapping and c.vantage not in isolated)),
        tuple(excluded),
    )


def _deciding(checks: Sequence[CheckState], site: str, role: Role, excluded: Sequence[str] = ()) -> list[CheckState]:
    return [
        c
        for c in checks
        if c.site == site and c.critical and (role == "active" or c.is_infrastructure) and c.service not in excluded
    ]


def site_verdict(
    site: str,
    role: Role,
    checks: Sequence[CheckState],
    vantages: Sequence[str],
    thresholds: Thresholds,
    isolated: Iterable[str] = (),
    excluded_services: Sequence[str] = (),
    reach: Reach | None = None,
    previous: str | None = None,
) -> Verdict:
    """`previous`: the site's recorded status; None judges the check states as they are, without history."""
    rule = Rule.parse(thresholds.site_rule) if role == "active" else Rule("all")
    deciding = _deciding(checks, site, role, excluded_services)
    quorum, excluded = thresholds.effective_quorum, sorted(excluded_services)
    infrastructure = role == "standby"
    return _verdict(
        site, site, role, deciding, vantages, rule, quorum, isolated, excluded, reach, infrastructure, previous
    )


def service_verdict(
    site: str,
    service: str,
    checks: Sequence[CheckState],
    vantages: Sequence[str],
    thresholds: Thresholds,
    isolated: Iterable[str] = (),
    reach: Reach | None = None,
    previous: str | None = None,
) -> Verdict:
    deciding = [c for c in _deciding(checks, site, "active") if c.service == service]
    rule = Rule.parse(thresholds.service_rule)
    quorum, subject = thresholds.effective_quorum, f"{service}@{site}"
    return _verdict(subject, site, "active", deciding, vantages, rule, quorum, isolated, (), reach, False, previous)


def vcenter_verdict(
    site: str,
    checks: Sequence[CheckState],
    vantages: Sequence[str],
    thresholds: Thresholds,
    isolated: Iterable[str] = (),
    reach: Reach | None = None,
    previous: str | None = None,
) -> Verdict:
    """The site's infrastructure, every critical part of its vCenter and its own checks: DOWN when all of
    them are DOWN from the vantage points that reach it (up to the quorum). For the standby this is its
    site verdict; for the active site a warning of its own."""
    deciding = _deciding(checks, site, "standby")
    subject, quorum = f"{VCENTER_CHECK}@{site}", thresholds.effective_quorum
    all_of = Rule("all")
    return _verdict(subject, site, "active", deciding, vantages, all_of, quorum, isolated, (), reach, True, previous)


def isolated_vantages(
    checks: Sequence[CheckState], active: str, standby: str, vantages: Sequence[str], reach: Reach | None = None
) -> frozenset[str]:
    """Vantage points that see every critical check they run at both sites DOWN while another vantage
    point sees one of those same checks passing right now: the fault is between that vantage point and
    everything else. A vantage point is judged only over what it is meant to reach.

    Passing right now, not merely "not DOWN yet", and a pass started after this vantage point's first
    failure of it was known (its start plus its latency): results of one round arrive vantage point by
    vantage point, so the other's latest pass may be a round older than this one's failures; and the first
    failure may have started before the fault, in flight when it struck, with the other's pass started just
    after it and just before the fault. A site dying from everywhere must not look like an isolated observer
    for a moment, and whatever failed that first check was there by the time it was known. Nor a check that
    came UP for the other after this vantage point's latest result of it: a standby's services, dark for
    weeks, come up after a failover in one vantage point's round before the next's.
    """
    deciding = _deciding(checks, active, "active") + _deciding(checks, standby, "standby")
    passing_now = {(c.site, c.check, c.vantage): c for c in deciding if c.status == "UP" and c.failures == 0}

    def passed_after(mine: CheckState, other: str) -> bool:
        theirs = passing_now.get((mine.site, mine.check, other))
        if theirs is None:
            return False
        passed_at, failed_at = theirs.last_observed_at, mine.failure_known_at or mine.failing_since
        if passed_at is not None and failed_at is not None and passed_at < failed_at:
            return False
        # Come UP for the other after this one's latest look: news it had no round to see yet (after a failover,
        # the new active site's services come up in one vantage point's round before another's).
        came_up = theirs.changes[-1] if theirs.changes else None
        return came_up is None or mine.last_observed_at is None or came_up <= mine.last_observed_at

    isolated = set()
    for vantage in vantages:
        mine = [c for c in deciding if c.vantage == vantage and _runs(reach, vantage, c.site, c.check)]
        by_site = [[c for c in mine if c.site == site] for site in (active, standby)]
        if not mine or not all(all(c.status == "DOWN" for c in g) for g in by_site if g):
            continue
        if reach is None and not all(by_site):
            continue  # without a topology, a vantage point is meant to see both sites
        others = [v for v in vantages if v != vantage]
        if any(passed_after(c, other) for c in mine for other in others):
            isolated.add(vantage)
    return frozenset(isolated)


def failing_everything(
    checks: Sequence[CheckState], active: str, standby: str, vantages: Sequence[str], reach: Reach | None = None
) -> frozenset[str]:
    """Vantage points whose latest result failed for every critical check they run at both sites.

    Such a vantage point is being cut off (ISOLATED is confirmed only once its checks are DOWN, and a round's
    results are judged one by one) or sees both sites gone. Either way its word alone says nothing about a
    site's infrastructure, which it may be the only one to reach: infrastructure verdicts leave it out.
    """
    deciding = _deciding(checks, active, "active") + _deciding(checks, standby, "standby")
    found = set()
    for vantage in vantages:
        mine = [c for c in deciding if c.vantage == vantage and _runs(reach, vantage, c.site, c.check)]
        if mine and all(c.failures > 0 for c in mine):
            found.add(vantage)
    return frozenset(found)


def open_windows(windows: Sequence[MaintenanceWindow], site: str, at: datetime) -> list[MaintenanceWindow]:
    return [w for w in windows if w.site == site and w.covers(at)]


def describe_window(window: MaintenanceWindow) -> str:
    what = f"{window.service}@{window.site}" if window.service else window.site
    repeat = ", weekly" if window.weekly else ""
    why = f": {window.reason}" if window.reason else ""
    return f"{what} {window.start.isoformat()} to {window.end.isoformat()}{repeat}{why}"


@dataclass(frozen=True)
class Gates:
    """Everything besides the verdicts that may hold an automatic failover back."""

    automation: AutomationSwitch
    now: datetime
    cooldown_s: int
    last_failover: LastFailover | None = None
    acknowledged: bool = False  # a human acknowledged this incident: the cooldown does not hold it
    maintenance: tuple[str, ...] = ()  # open windows on the failed site
    partitioned: str = ""  # the failed site's agent reports it alive and serving: why, in words


@dataclass(frozen=True)
class FailoverDecision:
    start: bool
    reason: str


def standby_proof(checks: Sequence[CheckState], standby: Verdict, isolated: Iterable[str]) -> tuple[bool, str]:
    """The standby is proven when its site verdict is UP and its vCenter login passes now from a counted
    vantage point and fails from none: the workflow needs that vCenter to power the VMs on. UP is not
    enough (a login failing right now, below the threshold, proves nothing). Other infrastructure parts
    failing (a host in maintenance, a full datastore) are named but hold nothing back: one of them must
    not turn a dead active site into a missed failover."""
    isolated = set(isolated)
    counted = [c for c in _deciding(checks, standby.site, "standby") if c.vantage not in isolated]
    logins = [c for c in counted if c.check == VCENTER_CHECK]
    passing = [c for c in logins if c.status == "UP" and c.failures == 0]
    failing_logins = [c for c in logins if c not in passing]
    other_failing = [c for c in counted if c.check != VCENTER_CHECK and (c.failures or c.status != "UP")]
    if standby.status != "UP" or not passing or failing_logins:
        bad = ", ".join(_state_of(c) for c in failing_logins + other_failing) or f"no passing `{VCENTER_CHECK}` yet"
        return False, f"standby {standby.site} is not proven healthy: {bad}"
    also = f"; also failing there: {', '.join(_state_of(c) for c in other_failing)}" if other_failing else ""
    return True, f"standby {standby.site} UP ({', '.join(sorted(c.label for c in passing))} passing){also}"


def _state_of(check: CheckState) -> str:
    if check.status == "UNKNOWN":
        return f"{check.label} has no verdict yet"
    state = "DOWN" if check.status == "DOWN" else f"failing ({check.failures} in a row)"
    return f"{check.label} {state}" + (f": {check.reason}" if check.reason else "")


def failover_decision(
    verdict: Verdict, standby: Verdict, standby_checks: Sequence[CheckState], gates: Gates, isolated: Iterable[str] = ()
) -> FailoverDecision:
    if verdict.status != "DOWN":
        return FailoverDecision(False, f"{verdict.site} is not DOWN")
    if verdict.role != "active":
        return FailoverDecision(False, f"{verdict.site} is the standby; nothing to fail over")
    blocked = []
    if verdict.flapping:
        blocked.append(f"flapping checks need a human decision: {', '.join(verdict.flapping)}")
    proven, proof = standby_proof(standby_checks, standby, isolated)
    if not proven:
        blocked.append(proof + "; failover needs a human decision")
    if gates.partitioned:
        blocked.append(gates.partitioned)
    if gates.maintenance:
        blocked.append(f"maintenance window open: {'; '.join(gates.maintenance)}")
    if not gates.automation.enabled:
        blocked.append(gates.automation.describe())
    last = gates.last_failover
    if last is not None and not gates.acknowledged:
        ago = (gates.now - last.at).total_seconds()
        if ago < gates.cooldown_s:
            blocked.append(
                f"cooldown: failover {last.incident} was {ago:.0f} s ago (cooldown {gates.cooldown_s} s); "
                "a second automatic failover needs `dcwatch ack <incident>`"
            )
    if blocked:
        return FailoverDecision(False, "; ".join(blocked))
    return FailoverDecision(True, f"active site DOWN, {proof}")
