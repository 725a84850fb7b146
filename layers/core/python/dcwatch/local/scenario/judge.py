"""Judging a run: what it observed, in the operator's terms, against what its scenario expects; a verdict with
the problems found."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dcwatch.config import Config
from dcwatch.local.scenario.spec import ALERT_KINDS, VANTAGE, Expect, ScenarioSpec, resolve_site


def alert_kind(subject: str) -> str:
    """The alert's kind: the first word (or pair of words) of its subject that is one of ALERT_KINDS, else OTHER.
    `[dcwatch] DOWN dc-a (active): failover started` is a DOWN alert; `SERVICE DOWN shop` a SERVICE one.
    VANTAGE only when no other kind is named: `vantage point aws-vpc ISOLATED` is ISOLATED."""
    words = re.findall(r"[A-Za-z]+", subject.upper())
    # Two-word kinds first (`AGENT SILENT dc-a` is AGENT_SILENT), then one word.
    candidates = [f"{w}_{n}" for w, n in zip(words, words[1:], strict=False)]
    for position, word in enumerate(words):
        pair = candidates[position] if position < len(candidates) else ""
        if pair in ALERT_KINDS:
            return pair
        if word in ALERT_KINDS and word != VANTAGE:
            return word
    return VANTAGE if VANTAGE in words else "OTHER"


@dataclass(frozen=True)
class ScenarioVerdict:
    scenario: str
    expected: str
    got: str
    passed: bool
    decision_passed: bool
    alerts_passed: bool
    failovers: int
    false_failovers: int
    missed_failovers: int
    detection_s: float | None
    detection_floor_s: float
    problems: tuple[str, ...] = ()
    both_serving_s: float = 0.0
    standby_answered_s: float = 0.0

    def row(self) -> dict[str, Any]:
        return {
            "both_serving_s": self.both_serving_s,
            "standby_answered_s": self.standby_answered_s,
            "scenario": self.scenario,
            "expected": self.expected,
            "got": self.got,
            "detection_s": self.detection_s,
            "detection_floor_s": self.detection_floor_s,
            "false_failovers": self.false_failovers,
            "missed_failovers": self.missed_failovers,
            "passed": self.passed,
            "decision_passed": self.decision_passed,
            "alerts_passed": self.alerts_passed,
            "problems": list(self.problems),
        }


@dataclass
class Seen:
    """What a run saw, in the operator's terms."""

    down: list[str]  # sites declared DOWN, in order
    alerts: dict[str, int]
    failovers: int  # workflows that switched DNS (moved production)
    active_site: str
    detection_s: float | None
    errors: list[str]
    fencing: list[str] = field(default_factory=list)  # what each Fence and ProveFenced step reported
    proofs: dict[str, str] = field(default_factory=dict)  # execution that moved production -> its fencing proof
    both_serving_s: float = 0.0  # both sites answered customers at once this long (drill copies not counted)
    self_fenced: dict[str, float] = field(default_factory=dict)  # site -> its agent fenced it, s after the fault
    lease_cost_s: float | None = None  # AWS could act on the failed site's lease this long after its DOWN
    standby_answered_s: float = 0.0  # the standby's production endpoints answered customers this long
    drills: dict[str, str] = field(default_factory=dict)  # drill execution -> passed, or failed: why
    # DOWN decisions and workflows before the scenario's first step: nothing of this scenario caused them, so
    # something of the one before outlived the reset (its outcome would be counted as this one's).
    before_start: list[str] = field(default_factory=list)


def describe(failovers: int, down: list[str] | None, alerts: Mapping[str, int | str]) -> str:
    parts = [{0: "no failover", 1: "failover"}.get(failovers, f"{failovers} failovers")]
    if down is not None:
        parts.append("DOWN " + (",".join(down) if down else "none"))
    shown = " ".join(f"{k}={v}" for k, v in sorted(alerts.items()))
    if shown:
        parts.append("alerts " + shown)
    return "; ".join(parts)


def _expected_alerts(expect: Expect) -> dict[str, int | str]:
    exact: dict[str, int | str] = {str(k): v for k, v in expect.alerts.items()}
    return exact | {str(k): f"<={v}" for k, v in expect.alerts_at_most.items()}


def judge(spec: ScenarioSpec, config: Config, seen: Seen) -> ScenarioVerdict:
    expect, standby = spec.expect, config.other_site(config.active_site)

    moved = seen.failovers >= 1 and seen.active_site == standby
    expected_down = [resolve_site(config, s) for s in expect.down] if expect.down is not None else None
    problems: list[str] = list(seen.errors)
    if seen.before_start:
        problems.append(f"before the first step, with nothing injected yet: {'; '.join(seen.before_start)}")
    if expect.failover and not moved:
        problems.append(f"no failover: {seen.failovers} workflows switched DNS, active site {seen.active_site}")
    if seen.failovers > (1 if expect.failover else 0):
        problems.append(f"{seen.failovers} workflows switched DNS")
    if expected_down is not None and seen.down != expected_down:
        problems.append(f"DOWN decisions {seen.down}, expected {expected_down}")
    if expect.fencing is not None and seen.failovers:
        used = sorted(set(seen.proofs.values()))
        if len(seen.proofs) < seen.failovers or used != [expect.fencing]:
            problems.append(f"fencing proofs {seen.proofs or 'none'} ({seen.fencing}), expected {expect.fencing}")
    expected_fenced = sorted(resolve_site(config, s) for s in expect.self_fenced)
    if sorted(seen.self_fenced) != expected_fenced:
        problems.append(f"agents fenced {sorted(seen.self_fenced) or 'nothing'}, expected {expected_fenced or 'none'}")
    ttl = config.fencing.lease_ttl_s if config.fencing else 0.0
    late = {s: t for s, t in seen.self_fenced.items() if s in expected_fenced and t > ttl}
    if late:
        problems.append(f"self-fenced later than lease_ttl_s ({ttl:g} s) after the fault: {late}")
    if expect.lease_within_ttl and (seen.lease_cost_s is None or seen.lease_cost_s > ttl):
        problems.append(f"lease cost beyond detection {seen.lease_cost_s} s, expected at most lease_ttl_s {ttl:g} s")
    if seen.both_serving_s > 0:
        problems.append(f"both sites served customers at once for {seen.both_serving_s:g} s")
    if expect.standby_dark and seen.standby_answered_s > 0:
        problems.append(f"the standby's production endpoints answered customers for {seen.standby_answered_s:g} s")
    if expect.drill is not None:
        problems += _drill_problems(expect.drill, seen.drills)
    within = expect.detected_within_s
    if within is not None and (seen.detection_s is None or seen.detection_s > within):
        problems.append(f"detection {seen.detection_s} s, expected within {expect.detected_within_s:g} s")
    decision_ok = not problems
    alert_problems = [
        f"{kind} alerts: {seen.alerts.get(kind, 0)}, expected {n}"
        for kind, n in expect.alerts.items()
        if seen.alerts.get(kind, 0) != n
    ] + [
        f"{kind} alerts: {seen.alerts.get(kind, 0)}, expected at most {n}"
        for kind, n in expect.alerts_at_most.items()
        if seen.alerts.get(kind, 0) > n
    ]
    named = [*expect.alerts, *expect.alerts_at_most]
    got_alerts = {k: seen.alerts.get(k, 0) for k in named} | {k: v for k, v in seen.alerts.items() if v}
    return ScenarioVerdict(
        scenario=spec.name,
        expected=describe(int(expect.failover), expected_down, _expected_alerts(expect)),
        got=describe(
            seen.failovers if moved or seen.failovers > 1 else 0,
            seen.down if expected_down is not None else None,
            got_alerts,
        ),
        passed=decision_ok and not alert_problems,
        decision_passed=decision_ok,
        alerts_passed=not alert_problems,
        failovers=seen.failovers,
        false_failovers=max(0, seen.failovers - (1 if expect.failover else 0)),
        missed_failovers=1 if expect.failover and not moved else 0,
        detection_s=seen.detection_s,
        detection_floor_s=config.probe.interval_s * config.thresholds.failures_to_down,
        problems=tuple(problems + alert_problems),
        both_serving_s=seen.both_serving_s,
        standby_answered_s=seen.standby_answered_s,
    )


def _drill_problems(expected: str, drills: dict[str, str]) -> list[str]:
    """Every drill started ended as expected (`passed`: it proved the clones and cleaned up)."""
    if not drills:
        return [f"no drill ran, expected one that {expected}"]
    return [
        f"drill {name}: {outcome}, expected {expected}"
        for name, outcome in drills.items()
        if outcome.partition(":")[0] != expected
    ]
