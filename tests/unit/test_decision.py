"""Sites, services and failovers as every vantage point sees them: quorum, isolation, rules and gates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from dcwatch.config import MaintenanceWindow, Thresholds
from dcwatch.detection.decision import (
    Gates,
    Rule,
    failover_decision,
    isolated_vantages,
    open_windows,
    service_verdict,
    site_verdict,
)
from dcwatch.model import AutomationSwitch, CheckState, LastFailover
from tests.helpers import demo_config

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
TWO = ["aws-public", "aws-vpc"]
THRESHOLDS = Thresholds()


def checks(site: str, vantage: str = "aws-public", **statuses: str) -> list[CheckState]:
    return [
        CheckState(site, name, None if name == "vcenter" else f"svc-{name}", True, status, vantage=vantage)
        for name, status in statuses.items()
    ]


def everywhere(site: str, vantages=TWO, **statuses: str) -> list[CheckState]:
    return [c for v in vantages for c in checks(site, v, **statuses)]


DEAD_A = everywhere("dc-a", vcenter="DOWN", web="DOWN", radio="DOWN")
HEALTHY_B = everywhere("dc-b", vcenter="UP", web="DOWN")


def test_a_site_is_down_only_when_a_quorum_of_vantage_points_sees_it_down():
    one_sees_it = checks("dc-a", "aws-public", vcenter="DOWN", web="DOWN") + checks(
        "dc-a", "aws-vpc", vcenter="UP", web="UP"
    )
    assert site_verdict("dc-a", "active", one_sees_it, TWO, THRESHOLDS).status == "UP"
    verdict = site_verdict("dc-a", "active", DEAD_A, TWO, THRESHOLDS)
    assert verdict.status == "DOWN" and len(verdict.agreeing) == 2


def test_the_decision_record_shows_the_arithmetic():
    text = site_verdict("dc-a", "active", DEAD_A, TWO, THRESHOLDS).explain(THRESHOLDS)
    assert text.startswith("3 of 3 critical checks DOWN from 2 of 2 vantage points (quorum 2, rule all, 3 consecutive")
    assert "aws-public 3/3, aws-vpc 3/3" in text


def test_with_a_single_vantage_point_the_default_quorum_never_declares_a_site_down():
    alone = checks("dc-a", "aws-public", vcenter="DOWN", web="DOWN")
    assert site_verdict("dc-a", "active", alone, ["aws-public"], THRESHOLDS).status == "UP"
    accepted = Thresholds(quorum=1, allow_single_vantage=True)
    assert site_verdict("dc-a", "active", alone, ["aws-public"], accepted).status == "DOWN"


def test_the_site_rule_decides_how_many_critical_checks_must_be_down():
    half = everywhere("dc-a", vcenter="DOWN", web="DOWN", radio="UP", shop="UP")
    assert site_verdict("dc-a", "active", half, TWO, THRESHOLDS).status == "UP"
    assert site_verdict("dc-a", "active", half, TWO, Thresholds(site_rule="at_least 2")).status == "DOWN"
    assert site_verdict("dc-a", "active", half, TWO, Thresholds(site_rule="at_least 3")).status == "UP"
    assert site_verdict("dc-a", "active", half, TWO, Thresholds(site_rule="any")).status == "DOWN"
    assert str(Rule.parse("at_least 3")) == "at least 3" and not Rule.parse("any").met(0, 0)


def test_warning_checks_do_not_decide_a_site():
    states = everywhere("dc-a", vcenter="DOWN", web="DOWN") + [
        CheckState("dc-a", "slow", "svc", False, "UP", vantage=v) for v in TWO
    ]
    assert site_verdict("dc-a", "active", states, TWO, THRESHOLDS).status == "DOWN"


def test_the_standby_is_judged_on_its_infrastructure_because_its_services_are_meant_to_be_off():
    assert site_verdict("dc-b", "standby", HEALTHY_B, TWO, THRESHOLDS).status == "UP"
    dead = everywhere("dc-b", vcenter="DOWN", web="DOWN")
    assert site_verdict("dc-b", "standby", dead, TWO, THRESHOLDS).status == "DOWN"


def test_a_site_with_no_evidence_is_not_declared_down():
    assert site_verdict("dc-a", "active", [], TWO, THRESHOLDS).status == "UP"


def test_a_service_is_judged_by_its_own_checks_and_the_quorum():
    states = everywhere("dc-a", vcenter="UP", web="DOWN", radio="UP")
    assert service_verdict("dc-a", "svc-web", states, TWO, THRESHOLDS).status == "DOWN"
    assert service_verdict("dc-a", "svc-radio", states, TWO, THRESHOLDS).status == "UP"
    assert site_verdict("dc-a", "active", states, TWO, THRESHOLDS).status == "UP"


def test_a_vantage_point_that_sees_both_sites_fail_while_another_does_not_is_isolated():
    cut_off = checks("dc-a", "aws-vpc", vcenter="DOWN", web="DOWN") + checks("dc-b", "aws-vpc", vcenter="DOWN")
    fine = checks("dc-a", "aws-public", vcenter="UP", web="UP") + checks("dc-b", "aws-public", vcenter="UP")
    assert isolated_vantages(cut_off + fine, "dc-a", "dc-b", TWO) == {"aws-vpc"}


def test_when_every_vantage_point_sees_both_sites_fail_no_one_is_isolated():
    assert isolated_vantages(DEAD_A + everywhere("dc-b", vcenter="DOWN"), "dc-a", "dc-b", TWO) == frozenset()


def test_an_isolated_vantage_point_does_not_count_towards_the_quorum():
    three = [*TWO, "aws-eu-west-1"]
    states = everywhere("dc-a", three, vcenter="DOWN", web="DOWN")
    verdict = site_verdict("dc-a", "active", states, three, THRESHOLDS, isolated={"aws-vpc", "aws-eu-west-1"})
    assert verdict.status == "UP" and "aws-vpc 2/2 isolated, not counted" in verdict.explain(THRESHOLDS)


def test_services_in_maintenance_are_left_out_of_the_site_verdict():
    states = everywhere("dc-a", vcenter="UP", web="DOWN")
    verdict = site_verdict("dc-a", "active", states, TWO, THRESHOLDS, excluded_services=["svc-vcenter", "svc-web"])
    assert verdict.status == "UP" and "in maintenance, not counted: svc-vcenter, svc-web" in verdict.explain(THRESHOLDS)
    states = everywhere("dc-a", vcenter="DOWN", web="UP")
    assert site_verdict("dc-a", "active", states, TWO, THRESHOLDS, excluded_services=["svc-web"]).status == "DOWN"


def gates(**overrides) -> Gates:
    return Gates(**{"automation": AutomationSwitch(), "now": T0, "cooldown_s": 3600, **overrides})


def decide(a=DEAD_A, b=HEALTHY_B, **gate_overrides):
    verdict = site_verdict("dc-a", "active", a, TWO, THRESHOLDS)
    standby = site_verdict("dc-b", "standby", b, TWO, THRESHOLDS)
    return failover_decision(verdict, standby, b, gates(**gate_overrides))


def test_a_failover_starts_for_a_down_active_site_with_a_proven_standby():
    decision = decide()
    assert decision.start and "vcenter@aws-public, vcenter@aws-vpc passing" in decision.reason


def test_no_failover_to_a_standby_that_is_down_or_unproven():
    refused = decide(b=everywhere("dc-b", vcenter="DOWN"))
    assert not refused.start and "human" in refused.reason
    assert not decide(b=everywhere("dc-b", vcenter="UNKNOWN")).start


def test_a_standby_vcenter_failing_right_now_is_not_proof_even_below_the_threshold():
    failing = HEALTHY_B[:1] + [CheckState("dc-b", "vcenter", None, True, "UP", failures=1, vantage="aws-vpc")]
    refused = decide(b=failing)
    assert not refused.start and "vcenter@aws-vpc failing (1 in a row)" in refused.reason


def test_no_failover_for_a_standby_that_goes_down():
    down = site_verdict("dc-b", "standby", everywhere("dc-b", vcenter="DOWN"), TWO, THRESHOLDS)
    up = site_verdict("dc-a", "standby", everywhere("dc-a", vcenter="UP"), TWO, THRESHOLDS)
    assert not failover_decision(down, up, everywhere("dc-a", vcenter="UP"), gates()).start


def test_a_flapping_check_holds_the_failover_back_for_a_human():
    flapping = [CheckState("dc-a", "web", "svc", True, "DOWN", vantage="aws-vpc", flapping=True)]
    decision = decide(a=DEAD_A + flapping)
    assert not decision.start and "flapping checks need a human decision: web@aws-vpc" in decision.reason


def test_automation_off_maintenance_and_cooldown_each_hold_the_failover_back_and_all_are_named():
    off = AutomationSwitch(False, "storage migration", "alice", T0 - timedelta(hours=1))
    decision = decide(
        automation=off,
        maintenance=("dc-a 2026-11-25T02:00:00+00:00 to 2026-11-25T04:00:00+00:00",),
        last_failover=LastFailover("dc-b-down-20261125T025000Z", T0 - timedelta(minutes=10)),
    )
    assert not decision.start
    assert "automation off since 2026-11-25T02:00:00+00:00 by alice: storage migration" in decision.reason
    assert "maintenance window open: dc-a 2026-11-25T02:00" in decision.reason
    assert "cooldown: failover dc-b-down-20261125T025000Z was 600 s ago (cooldown 3600 s)" in decision.reason


def test_after_the_cooldown_or_with_a_human_acknowledgement_the_failover_starts():
    recent = LastFailover("dc-b-down-1", T0 - timedelta(minutes=10))
    assert decide(last_failover=recent, acknowledged=True).start
    assert decide(last_failover=LastFailover("dc-b-down-1", T0 - timedelta(hours=2))).start


def window(**fields) -> MaintenanceWindow:
    return MaintenanceWindow(**{"site": "dc-a", "start": T0, "end": T0 + timedelta(hours=2), **fields})


def test_a_maintenance_window_is_open_from_its_start_until_its_end():
    assert open_windows([window()], "dc-a", T0 + timedelta(hours=1))
    assert not open_windows([window()], "dc-a", T0 + timedelta(hours=2))
    assert not open_windows([window()], "dc-a", T0 - timedelta(seconds=1))
    assert not open_windows([window()], "dc-b", T0 + timedelta(hours=1))


def test_a_weekly_window_opens_again_every_seven_days():
    weekly = window(weekly=True)
    assert open_windows([weekly], "dc-a", T0 + timedelta(days=14, hours=1))
    assert not open_windows([weekly], "dc-a", T0 + timedelta(days=14, hours=3))


def test_a_check_still_down_by_hysteresis_whose_latest_result_passed_keeps_a_down_verdict_but_never_makes_one():
    # Given aws-vpc alone reaches the standby's private vCenter; it was DOWN and its latest result passed
    # (one success of successes_to_up), e.g. aws-vpc is back from isolation and half of its round is in
    reach = {"aws-public": frozenset(), "aws-vpc": frozenset({("dc-b", "vcenter")})}
    recovering = [CheckState("dc-b", "vcenter", None, True, "DOWN", successes=1, vantage="aws-vpc")]

    def standby(previous: str) -> str:
        return site_verdict("dc-b", "standby", recovering, TWO, THRESHOLDS, reach=reach, previous=previous).status

    # Then a standby recorded UP is not turned DOWN by it, and one recorded DOWN stays DOWN until it is UP
    assert standby(previous="UP") == "UP"
    assert standby(previous="DOWN") == "DOWN"
    failing = [CheckState("dc-b", "vcenter", None, True, "DOWN", failures=3, vantage="aws-vpc")]
    assert site_verdict("dc-b", "standby", failing, TWO, THRESHOLDS, reach=reach, previous="UP").status == "DOWN"


# The demo's topology: aws-public runs the public services only, aws-vpc those and the private vCenters.
DEMO_TOPOLOGY = demo_config().topology
REACH = {v.name: v.checks for v in DEMO_TOPOLOGY.vantage_points}
SERVICES = {"shop-home": "shop", "radio-stream": "radio", "transit-portal": "transit"}


def seen(site: str, vantage: str, status: str, failures: int = 0, only: Sequence[str] = ()) -> list[CheckState]:
    """What `vantage` holds of `site`'s checks it runs (all of them, or `only` these), in one status."""
    names = [check for s, check in sorted(REACH[vantage]) if s == site and (not only or check in only)]
    return [
        CheckState(site, name, SERVICES.get(name), name != "vcenter-alarms", status, failures, vantage=vantage)
        for name in names
    ]


def verdicts(states: list[CheckState]) -> tuple[frozenset[str], str, str]:
    isolated = isolated_vantages(states, "dc-a", "dc-b", TWO, REACH)
    active = site_verdict("dc-a", "active", states, TWO, THRESHOLDS, isolated, reach=REACH)
    standby = site_verdict("dc-b", "standby", states, TWO, THRESHOLDS, isolated, reach=REACH)
    return isolated, active.status, standby.status


def test_a_public_vantage_point_losing_every_path_is_isolated_and_never_moves_production():
    # Given aws-public sees every check it runs fail (dc-b's services are off by design, so it runs nothing
    # that decides the standby), while aws-vpc sees dc-a's services pass right now
    states = seen("dc-a", "aws-public", "DOWN", 3) + seen("dc-a", "aws-vpc", "UP") + seen("dc-b", "aws-vpc", "UP")
    isolated, active, standby = verdicts(states)
    # Then aws-public is ISOLATED, and production stays where it is, even with a quorum of one
    assert (isolated, active, standby) == ({"aws-public"}, "UP", "UP")
    single = Thresholds(quorum=1, allow_single_vantage=True)
    assert site_verdict("dc-a", "active", states, TWO, single, isolated, reach=REACH).status == "UP"


def test_a_genuine_outage_of_the_active_site_does_not_make_the_public_vantage_point_look_isolated():
    # Given dc-a fails from everywhere: aws-public's services and aws-vpc's services and vCenter
    states = seen("dc-a", "aws-public", "DOWN", 3) + seen("dc-a", "aws-vpc", "DOWN", 3) + seen("dc-b", "aws-vpc", "UP")
    isolated, active, standby = verdicts(states)
    # Then nobody is isolated, dc-a is DOWN by quorum and the standby, which only aws-vpc reaches, is proven
    assert (isolated, active, standby) == (frozenset(), "DOWN", "UP")
    verdict = site_verdict("dc-a", "active", states, TWO, THRESHOLDS, reach=REACH)
    assert "from 2 of 2 vantage points" in verdict.explain(THRESHOLDS)
    proven = site_verdict("dc-b", "standby", states, TWO, THRESHOLDS, reach=REACH)
    assert failover_decision(verdict, proven, states, gates()).start


def test_a_vantage_point_that_runs_only_the_active_sites_checks_is_isolated_only_against_those_same_checks():
    # Given aws-public sees dc-a's services fail and aws-vpc sees only dc-b's vCenter pass (its dc-a results
    # are failing too, just not DOWN yet): no one sees a check aws-public runs passing
    states = seen("dc-a", "aws-public", "DOWN", 3) + seen("dc-a", "aws-vpc", "UP", 2) + seen("dc-b", "aws-vpc", "UP")
    assert isolated_vantages(states, "dc-a", "dc-b", TWO, REACH) == frozenset()


def timed(
    states: list[CheckState],
    observed_at: datetime,
    failing_since: datetime | None = None,
    known_at: datetime | None = None,
) -> list[CheckState]:
    return [
        replace(c, last_observed_at=observed_at, failing_since=failing_since, failure_known_at=known_at) for c in states
    ]


def test_a_pass_a_round_older_than_the_failures_does_not_make_a_vantage_point_look_isolated():
    # Given dc-a dies: aws-public's results of this round (all failing since T0) arrive before aws-vpc's, whose
    # latest dc-a results are its passes of the round before (as the demo saw under load)
    before, now = T0 - timedelta(seconds=2), T0 + timedelta(seconds=2)
    public = timed(seen("dc-a", "aws-public", "DOWN", 2), now, failing_since=T0)
    vpc = timed(seen("dc-a", "aws-vpc", "UP"), before) + timed(seen("dc-b", "aws-vpc", "UP"), now)
    # Then aws-public is not isolated: nobody passed its checks while it was failing them
    assert isolated_vantages(public + vpc, "dc-a", "dc-b", TWO, REACH) == frozenset()
    # But a pass observed after aws-public began to fail is evidence that the fault is its own
    after = T0 + timedelta(seconds=1)
    vpc_now = timed(seen("dc-a", "aws-vpc", "UP"), after) + timed(seen("dc-b", "aws-vpc", "UP"), now)
    assert isolated_vantages(public + vpc_now, "dc-a", "dc-b", TWO, REACH) == {"aws-public"}


def test_a_pass_started_while_the_first_failure_was_in_flight_does_not_make_a_vantage_point_look_isolated():
    # Given aws-public's first failing check started just before dc-a died at T0 and failed when it did,
    # while aws-vpc's check started a moment later, still before the fault, and passed (as CI saw it once)
    in_flight, passed, latest = T0 - timedelta(seconds=0.3), T0 - timedelta(seconds=0.1), T0 + timedelta(seconds=4)
    public = timed(seen("dc-a", "aws-public", "DOWN", 2), latest, failing_since=in_flight, known_at=T0)
    vpc = timed(seen("dc-a", "aws-vpc", "UP"), passed) + timed(seen("dc-b", "aws-vpc", "UP"), latest)
    # Then aws-public is not isolated: nobody passed its checks after its first failure was known
    assert isolated_vantages(public + vpc, "dc-a", "dc-b", TWO, REACH) == frozenset()
    # And a pass started after that moment is evidence
    vpc_after = timed(seen("dc-a", "aws-vpc", "UP"), T0) + timed(seen("dc-b", "aws-vpc", "UP"), latest)
    assert isolated_vantages(public + vpc_after, "dc-a", "dc-b", TWO, REACH) == {"aws-public"}


def test_services_come_up_after_a_failover_in_one_vantage_points_round_before_the_others():
    # Given dc-a died and the failover brought dc-b's services up at T0 + 1 s: aws-vpc's round saw them come
    # UP, while aws-public's latest round, at T0, still found them dark, as they had been since the standby was
    came_up, dark_since = T0 + timedelta(seconds=1), T0 - timedelta(days=30)
    public_b = timed(seen("dc-b", "aws-public", "DOWN", 9), T0, failing_since=dark_since, known_at=dark_since)
    public_a = timed(seen("dc-a", "aws-public", "DOWN", 3), T0, failing_since=T0 - timedelta(seconds=20))
    vpc_b = [replace(c, changes=(came_up,)) for c in timed(seen("dc-b", "aws-vpc", "UP"), came_up)]
    states = public_a + public_b + vpc_b + seen("dc-a", "aws-vpc", "DOWN", 3)
    # Then aws-public is not isolated: it has had no round since the services came up
    assert isolated_vantages(states, "dc-b", "dc-a", TWO, REACH) == frozenset()
    # But failing them again in a round after that, while aws-vpc sees them UP, it is
    again = timed(public_b, T0 + timedelta(seconds=3), failing_since=dark_since, known_at=dark_since)
    assert isolated_vantages(public_a + again + vpc_b, "dc-b", "dc-a", TWO, REACH) == {"aws-public"}


def test_the_vpn_to_the_standby_going_down_makes_it_unproven_never_a_failover():
    # Given the VPC's path to dc-b is down (its vCenter fails from aws-vpc, the only one that reaches it)
    standby_cut = seen("dc-b", "aws-vpc", "DOWN", 3)
    states = seen("dc-a", "aws-public", "UP") + seen("dc-a", "aws-vpc", "UP") + standby_cut
    isolated, active, standby = verdicts(states)
    # Then the standby is DOWN (1 of 1 vantage points that reach it), aws-vpc is not isolated, nothing moves
    assert (isolated, active, standby) == (frozenset(), "UP", "DOWN")
    # And should dc-a die on top of it, the failover waits for a human: the standby is not proven
    dead = seen("dc-a", "aws-public", "DOWN", 3) + seen("dc-a", "aws-vpc", "DOWN", 3) + standby_cut
    verdict = site_verdict("dc-a", "active", dead, TWO, THRESHOLDS, reach=REACH)
    unproven = site_verdict("dc-b", "standby", dead, TWO, THRESHOLDS, reach=REACH)
    decision = failover_decision(verdict, unproven, dead, gates())
    assert verdict.status == "DOWN" and not decision.start
    assert "standby dc-b is not proven healthy: vcenter@aws-vpc DOWN" in decision.reason
    assert "from 1 of 1 vantage points (quorum 1" in unproven.explain(THRESHOLDS)
