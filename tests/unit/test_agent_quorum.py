"""The site agent's vote, from its own side of every partition in fencing.md: a site keeps serving
while it reaches AWS or its peer, and fences itself once, at lease_ttl - margin, when it reaches neither."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dcwatch.agent.quorum import AgentView, Timing, decide

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
TIMING = Timing(lease_ttl_s=30, margin_s=10)  # fences 20 s after the last contact; AWS acts after 40 s
RENEW_S = 5


def run(rounds: int, *, aws: bool | list[bool], peer: bool | list[bool], view: AgentView | None = None):
    """Rounds every RENEW_S from T0 on a fake clock; the decisions, fencing as the runner does."""
    view = view or AgentView(started_at=T0 - timedelta(seconds=60), last_renewal=T0, last_peer_ok=T0, fenced=False)
    decisions = []
    for n in range(1, rounds + 1):
        now = T0 + timedelta(seconds=RENEW_S * n)
        renewed = aws[n - 1] if isinstance(aws, list) else aws
        answered = peer[n - 1] if isinstance(peer, list) else peer
        view = view.observe(now, renewed=renewed, peer_answered=answered)
        decision = decide(now, view, TIMING)
        if decision.action == "fence":
            view = view.after_fence()
        decisions.append((now, decision))
    return decisions


def fences(decisions) -> list[datetime]:
    return [now for now, d in decisions if d.action == "fence"]


def test_a_site_cut_from_aws_only_keeps_serving_with_its_peer():
    # Given AWS↔A cut and A↔B up, for ten times the lease
    decisions = run(60, aws=False, peer=True)
    # Then A never fences: it holds a majority with its peer
    assert fences(decisions) == []
    assert {d.state for _, d in decisions} == {"DEGRADED"}
    assert "majority with the peer" in decisions[-1][1].reason


def test_a_site_cut_from_its_peer_only_keeps_serving_with_aws():
    decisions = run(60, aws=True, peer=False)
    assert fences(decisions) == []
    assert {d.state for _, d in decisions} == {"DEGRADED"}
    assert "majority with AWS" in decisions[-1][1].reason


def test_a_site_cut_from_both_fences_at_ttl_minus_margin_after_its_last_contact_and_not_before():
    # Given A cut from AWS and from B right after a renewal and an answered heartbeat at T0
    decisions = run(12, aws=False, peer=False)
    # Then it counts down while isolated, and fences exactly once, at T0 + (30 - 10) s
    assert fences(decisions) == [T0 + timedelta(seconds=20)]
    before = [d for now, d in decisions if now < T0 + timedelta(seconds=20)]
    assert {d.state for d in before} == {"ISOLATED"} and all(d.action == "keep" for d in before)
    assert before[0].fence_at == T0 + timedelta(seconds=20)
    after = [d for now, d in decisions if now > T0 + timedelta(seconds=20)]
    assert {d.state for d in after} == {"FENCED"}


def test_the_agent_fences_before_aws_may_act_on_the_expired_lease():
    # The agent fences at t - m after its last renewal, AWS acts no earlier than t + m after it.
    (fenced,) = fences(run(12, aws=False, peer=False))
    assert fenced - T0 == timedelta(seconds=TIMING.lease_ttl_s - TIMING.margin_s)
    assert fenced + timedelta(seconds=2 * TIMING.margin_s) == T0 + timedelta(
        seconds=TIMING.lease_ttl_s + TIMING.margin_s
    )


def test_when_aws_is_gone_for_both_sites_nobody_fences():
    # Given an AWS region outage: A and B both lose AWS and still see each other
    site_a = run(60, aws=False, peer=True)
    site_b = run(60, aws=False, peer=True)
    # Then nothing moves
    assert fences(site_a) == fences(site_b) == []


def test_the_survivor_of_a_dead_peer_keeps_serving():
    # A dead, or A's agent dead with A fine: B still renews its lease and loses only its peer
    assert fences(run(60, aws=True, peer=False)) == []


def test_one_voter_answering_even_once_in_the_window_holds_off_the_fence():
    # Given an isolation in which the peer answers once, at 15 s
    decisions = run(12, aws=False, peer=[False, False, True] + [False] * 9)
    # Then the fence moves to 20 s after that answer
    assert fences(decisions) == [T0 + timedelta(seconds=15 + 20)]


def test_a_fence_is_never_undone_and_a_later_isolation_fences_again():
    # Given a fence, then AWS back for a while (no un-fence), then a second isolation
    pattern = [False] * 6 + [True] * 4 + [False] * 6
    decisions = run(16, aws=pattern, peer=False)
    # Then the agent fenced twice: once per isolation, and kept serving state only while AWS answered
    assert fences(decisions) == [T0 + timedelta(seconds=20), T0 + timedelta(seconds=50 + 20)]
    assert all(
        d.action == "keep" for now, d in decisions if T0 + timedelta(seconds=35) <= now <= T0 + timedelta(seconds=50)
    )


def test_an_agent_that_never_reached_anyone_counts_from_its_start():
    start = T0
    view = AgentView(started_at=start)
    assert fences(run(12, aws=False, peer=False, view=view)) == [T0 + timedelta(seconds=20)]


def test_a_restarted_agent_counts_from_the_last_contact_its_file_kept():
    # Given a restart 15 s after the last renewal and answered heartbeat (kept on disk), cut off from both
    view = AgentView(started_at=T0 + timedelta(seconds=15), last_renewal=T0, last_peer_ok=T0)
    # Then it fences 20 s after that contact, not 20 s after its start
    now = T0 + timedelta(seconds=20)
    decision = decide(now, view.observe(now, renewed=False, peer_answered=False), TIMING)
    assert decision.action == "fence"


@pytest.mark.parametrize(
    ("aws", "peer", "state"), [(True, True, "SERVING"), (True, False, "DEGRADED"), (False, True, "DEGRADED")]
)
def test_the_agent_never_fences_while_it_reaches_aws_or_its_peer(aws, peer, state):
    # However long ago the other voter was last seen
    view = AgentView(started_at=T0, last_renewal=T0, last_peer_ok=T0)
    now = T0 + timedelta(days=1)
    decision = decide(now, view.observe(now, renewed=aws, peer_answered=peer), TIMING)
    assert (decision.state, decision.action) == (state, "keep")


def test_a_slow_renewal_counts_from_when_it_was_sent_so_the_fence_still_comes_before_aws_may_act():
    """AWS overloaded, not gone: a renewal sent at T0+5 s is acknowledged two rounds later."""
    view = AgentView(started_at=T0, last_renewal=T0, last_peer_ok=None)
    sent = T0 + timedelta(seconds=RENEW_S)
    view = view.observe(T0 + timedelta(seconds=2 * RENEW_S), renewed=False, peer_answered=False)
    view = view.renewed_late(sent)
    assert view.last_renewal == sent, "never later than it was sent: AWS counts from the time it carries too"
    aws_may_act = sent + timedelta(seconds=TIMING.lease_ttl_s + TIMING.margin_s)
    assert decide(sent + TIMING.fence_after, view, TIMING).action == "fence"
    assert sent + TIMING.fence_after < aws_may_act
    assert decide(sent + TIMING.fence_after - timedelta(seconds=1), view, TIMING).action == "keep"


def test_a_late_answer_never_moves_the_last_renewal_back():
    view = AgentView(started_at=T0, last_renewal=T0 + timedelta(seconds=10))
    assert view.renewed_late(T0).last_renewal == T0 + timedelta(seconds=10)
