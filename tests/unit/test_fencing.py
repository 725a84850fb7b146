"""The fencing proof: the standby is promoted only when one proof says the failed site cannot serve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dcwatch.config import Fencing
from dcwatch.ports import SiteLease
from dcwatch.recovery.fencing import StorageOutcome, act_after, lease_proof, prove, vcenter_reason
from tests.helpers import agent_report

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
AGENTS = {"dc-a": {"listen": "10.1.0.5:7440"}, "dc-b": {"listen": "10.2.0.5:7440"}}
# t = 30, m = 10: dc-a fences itself at t - m = 20 s after its last contact, AWS may act at t + m = 40 s.
FENCING = Fencing.model_validate(
    {"renew_s": 5, "lease_ttl_s": 30, "margin_s": 10, "secret_file": "/k", "agents": AGENTS, "proof_waits": 3}
)
ACT = timedelta(seconds=40)
VCENTER_GONE = vcenter_reason(
    "dc-a", {"Error": "VcenterUnreachable"}, "vCenter https://vc-a/sdk unreachable: timed out"
)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def lease(renewed_at: datetime = T0) -> SiteLease:
    """dc-a's lease as its agent last renewed it, just before dc-a died."""
    return SiteLease("dc-a", "dc-a@agent", renewed_at, renewed_at + timedelta(seconds=30), True, True, "SERVING")


def lost_peer(sent_at: datetime, last_heard_at: datetime = T0):
    """dc-b's agent: it renews its own lease and has not heard dc-a since `last_heard_at`."""
    return agent_report("dc-b", "dc-a", sent_at, reached=False, last_heard_at=last_heard_at)


def proof_at(now: datetime, report, the_lease=None, **kwargs):
    return prove(
        "dc-a",
        "dc-b",
        fencing=kwargs.pop("fencing", FENCING),
        vcenter=VCENTER_GONE,
        lease=the_lease if the_lease is not None else lease(),
        report=report,
        storage=kwargs.pop("storage", None),
        attempts=kwargs.pop("attempts", 0),
        now=now,
    )


def test_a_dead_site_is_proven_fenced_once_its_lease_expired_by_the_margin_and_the_standby_lost_it_too():
    # Given dc-a died at T0: last renewal and last heartbeat heard by dc-b at T0
    # When dc-b reports at T0 + t + m that it has not heard dc-a since
    proof = proof_at(T0 + ACT, lost_peer(T0 + ACT))

    # Then proof (b) holds, with the facts it rests on
    assert proof.proven and proof.kind == "lease"
    assert proof.facts["leaseRenewedAt"] == T0.isoformat() and proof.facts["actAfter"] == (T0 + ACT).isoformat()
    assert proof.facts["standbyAgent"] == "dc-b@agent" and proof.facts["peerLastHeardAt"] == T0.isoformat()
    assert proof.summary.startswith(
        "dc-a's lease expired (last renewed at 03:00:00) and dc-b's agent has not heard dc-a"
    )


def test_the_lease_proof_holds_at_t_plus_m_exactly_and_not_a_moment_before():
    report = lost_peer(T0 + ACT)
    assert lease_proof("dc-a", "dc-b", lease(), report, FENCING, T0 + ACT).proof is not None
    early = lease_proof("dc-a", "dc-b", lease(), report, FENCING, T0 + ACT - timedelta(milliseconds=1))
    assert early.proof is None
    assert early.reason == (
        "dc-a's lease was renewed at 03:00:00 by dc-a@agent: it may serve until 03:00:40 (lease_ttl_s 30 + margin_s 10)"
    )


def test_a_standby_report_sent_before_t_plus_m_after_its_last_contact_proves_nothing_yet():
    # dc-b heard dc-a at T0 + 5 (after dc-a's last renewal): dc-a may have kept its peer majority until then
    report = lost_peer(T0 + ACT + timedelta(seconds=4), last_heard_at=s(5))
    verdict = lease_proof("dc-a", "dc-b", lease(), report, FENCING, s(60))
    assert verdict.proof is None and "is older than 03:00:45, when dc-a must have fenced itself" in verdict.reason
    assert act_after(lease(), report, FENCING) == s(45)
    later = lease_proof("dc-a", "dc-b", lease(), lost_peer(s(45), last_heard_at=s(5)), FENCING, s(60))
    assert later.proof is not None


def test_a_standby_that_still_hears_the_failed_site_is_no_proof_however_long_its_lease_is_expired():
    # AWS lost dc-a (lease, probes), dc-b did not: dc-a keeps its majority with its peer and keeps serving
    still_hears = agent_report("dc-b", "dc-a", s(300), reached=True)
    verdict = lease_proof("dc-a", "dc-b", lease(), still_hears, FENCING, s(300))
    assert verdict.proof is None and verdict.reason == "dc-b's agent still reaches dc-a (its report of 03:05:00)"


def test_without_a_lease_or_a_standby_report_there_is_no_lease_proof():
    assert lease_proof("dc-a", "dc-b", None, lost_peer(s(60)), FENCING, s(60)).reason == (
        "no lease of dc-a on record: its agent never renewed one"
    )
    missing = lease_proof("dc-a", "dc-b", lease(), None, FENCING, s(60))
    assert missing.proof is None and missing.reason == "no report from dc-b's agent on record to confirm it lost dc-a"


def test_while_the_lease_could_still_expire_the_workflow_waits_until_then_and_the_next_report():
    # At T0 + 10: 30 s to the lease's expiry by the margin, plus the standby's next report (renew_s + 2 s)
    proof = proof_at(s(10), lost_peer(s(10)))
    assert not proof.proven and proof.wait_seconds == 30 + 7 and proof.attempts == 1
    assert proof.summary.startswith("cannot prove dc-a is fenced: its vCenter did not power dc-a's VMs off")


def test_the_waits_are_bounded_then_the_reasons_go_to_a_human():
    # An agent that keeps renewing dc-a's lease: the lease never expires, so after proof_waits waits the gate asks
    renewing = lease(s(100))
    proof = proof_at(s(101), lost_peer(s(101)), renewing, attempts=3)
    assert not proof.proven and proof.wait_seconds == 0 and proof.attempts == 4
    assert proof.summary == (
        "cannot prove dc-a is fenced: its vCenter did not power dc-a's VMs off (VcenterUnreachable: vCenter "
        "https://vc-a/sdk unreachable: timed out); dc-a's lease was renewed at 03:01:40 by dc-a@agent: it may serve "
        "until 03:02:20 (lease_ttl_s 30 + margin_s 10); no storage proof configured (sites[dc-b].storage.fenced_when), "
        "approve to proceed anyway"
    )


def test_without_agents_a_dead_vcenter_leaves_no_proof_and_nothing_to_wait_for():
    no_agents = Fencing.model_validate({})
    for fencing in (None, no_agents):
        proof = proof_at(s(60), None, fencing=fencing)
        assert not proof.proven and proof.wait_seconds == 0
        assert proof.reasons[1] == "no site agents configured (fencing.agents): no lease of dc-a to expire"


STORAGE = "[BODY].mirror.peer_state == offline"


def test_the_standbys_storage_showing_the_failed_sides_volumes_offline_is_a_proof_of_its_own():
    offline = StorageOutcome("storage mirror mirror-b at dc-b", STORAGE, ok=True)
    proof = proof_at(s(5), lost_peer(s(5)), storage=offline)
    assert proof.proven and proof.kind == "storage"
    assert proof.facts == {"check": "storage mirror mirror-b at dc-b", "condition": STORAGE}


def test_storage_that_still_shows_the_failed_side_online_is_named_among_the_reasons():
    online = StorageOutcome("storage mirror mirror-b at dc-b", STORAGE, ok=False, reason=f"{STORAGE}: got online")
    proof = proof_at(s(200), agent_report("dc-b", "dc-a", s(200)), storage=online, attempts=3)
    assert not proof.proven
    assert proof.reasons[-1] == (
        "storage mirror mirror-b at dc-b does not show dc-a's volumes offline ([BODY].mirror.peer_state == offline: "
        "got online)"
    )


@pytest.mark.parametrize(
    "fencing", [Fencing.model_validate({"trust_quorum": True}), FENCING.model_copy(update={"trust_quorum": True})]
)
def test_trust_quorum_stands_in_for_a_missing_proof_at_once_and_says_so(fencing):
    proof = proof_at(s(1), agent_report("dc-b", "dc-a", s(1)), fencing=fencing)
    assert proof.proven and proof.kind == "trust_quorum" and proof.wait_seconds == 0
    assert proof.summary.startswith("not proven fenced (its vCenter did not power dc-a's VMs off")
    assert proof.summary.endswith("promoted on the quorum verdict, as fencing.trust_quorum says")


def test_trust_quorum_still_takes_a_real_proof_when_there_is_one():
    trusting = FENCING.model_copy(update={"trust_quorum": True})
    assert proof_at(T0 + ACT, lost_peer(T0 + ACT), fencing=trusting).kind == "lease"
