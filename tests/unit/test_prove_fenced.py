"""The workflow after a Fence that did not power the failed site off: ProveFenced, its waits, the approval
gate, and what the alerts and the audit record say. Driven in the order the ASL runs them, in memory."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from dcwatch.config import parse_config
from dcwatch.detection.checks import Outcome
from dcwatch.errors import StandbyNotReady, VcenterUnreachable
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.ports import SiteLease
from dcwatch.recovery import messages, steps
from dcwatch.recovery.state import WorkflowState
from dcwatch.recovery.steps.approval import approval_answer
from tests.helpers import agent_report
from tests.unit.fakes import Clock, FakeInventory, FakeLeases, FakeNotifier, FakeSiteLeases, FakeStore
from tests.unit.test_agent_config import FENCING
from tests.unit.test_workflow import ALL_PASS, STANDBY_VMS, probe_with

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
# The demo config without the agents it runs: each test gives its own fencing section, or none.
DEMO = {key: value for key, value in yaml.safe_load(DEMO_CONFIG.read_text()).items() if key != "fencing"}
AGENTS = FENCING
GONE = VcenterUnreachable("vCenter https://vcenter-a.example/sdk unreachable: [Errno 111] Connection refused")


def config(fencing=None, storage=None):
    doc = copy.deepcopy(DEMO)
    if fencing is not None:
        doc["fencing"] = fencing
    if storage is not None:
        doc["sites"][1]["checks"] = [{"name": "san-mirror", "url": "http://127.0.0.1:1/mirror", "conditions": []}]
        doc["sites"][1]["storage"] = {"check": "san-mirror", "max_lag_s": 30, **storage}
    return parse_config(doc)


@pytest.fixture
def clock():
    return Clock(T0)


def after_the_fence(cfg, clock, error: Exception = GONE) -> WorkflowState:
    """The state ProveFenced gets: the Fence step raised, and Step Functions caught it into $.fenceError."""
    request = {
        "mode": "disaster",
        "from": "dc-a",
        "to": "dc-b",
        "reason": "dc-a DOWN",
        "incidentId": "dc-a-down-1",
        "trigger": "automatic",
    }
    state = steps.validate_request(request, cfg, clock, execution="dc-a-down-1")
    cause = {"errorMessage": str(error), "errorType": type(error).__name__}
    state.fence_error = {"Error": type(error).__name__, "Cause": json.dumps(cause)}
    return WorkflowState.model_validate(state.dump())


def prove(state, cfg, clock, leases=None, store=None, probe=ALL_PASS) -> WorkflowState:
    state = steps.prove_fenced(state, cfg, leases or FakeSiteLeases(), store or FakeStore(), probe, clock)
    return WorkflowState.model_validate(state.dump())


def died_at(at: datetime) -> tuple[FakeSiteLeases, FakeStore]:
    """dc-a's agent renewed its lease at `at` for the last time; dc-b's agent has not heard dc-a since."""
    leases = FakeSiteLeases({"dc-a": SiteLease("dc-a", "dc-a@agent", at, at + timedelta(seconds=30), True, True)})
    return leases, FakeStore()


def test_a_dead_vcenter_without_agents_stops_at_the_approval_gate_with_the_reasons(clock):
    # Given no fencing section: no lease to expire, no storage proof
    cfg = config()
    state = prove(after_the_fence(cfg, clock), cfg, clock)

    # Then nothing proves dc-a cannot serve, and there is nothing to wait for: the gate asks a human
    assert not state.fence_proof.proven and state.fence_proof.wait_seconds == 0
    assert state.fencing == (
        "cannot prove dc-a is fenced: its vCenter did not power dc-a's VMs off (VcenterUnreachable: vCenter "
        "https://vcenter-a.example/sdk unreachable: [Errno 111] Connection refused); no site agents configured "
        "(fencing.agents): no lease of dc-a to expire; no storage proof configured (sites[dc-b].storage.fenced_when), "
        "approve to proceed anyway"
    )
    notifier = FakeNotifier()
    steps.request_approval(state, "tok-9", notifier, clock, gate="fencing")
    ((subject, body),) = notifier.sent
    assert subject == "[dcwatch] APPROVAL NEEDED: failover dc-a -> dc-b, not proven fenced"
    assert body.startswith(state.fencing) and "dcwatch approve --token tok-9" in body
    assert "both sites write the mirrored data" in body


def test_an_approved_unproven_promotion_names_who_approved_it_in_the_alert_and_the_audit(clock):
    cfg = config()
    state = prove(after_the_fence(cfg, clock), cfg, clock)
    leases = FakeLeases()
    leases.acquire(state.owner, 60, clock())

    state.fence_approval.decision = approval_answer(True, "alice", "dc-a is powered off, checked on site", clock())
    state = steps.approved(state, leases, 900, clock)

    assert state.timeline[-1].step == "ApprovedWithoutFenceProof"
    assert state.fencing.startswith("not proven fenced (its vCenter did not power dc-a's VMs off")
    assert state.fencing.endswith("promoted as approved by alice: dc-a is powered off, checked on site")
    record = messages.audit_record(state, "succeeded", clock)
    assert record["fencingApprovedBy"] == "alice" and record["fenceProof"]["proven"] is False
    assert "Fencing: not proven fenced" in messages.success_message(state, clock)[1]


def test_a_denied_or_unanswered_fencing_gate_says_the_standby_was_not_promoted(clock):
    cfg = config()
    state = prove(after_the_fence(cfg, clock), cfg, clock)
    state.failed_step = "RequestApproval"
    state.fence_approval.decision = approval_answer(False, "bob", "dc-a still answers on site", clock())
    subject, body = messages.failure_message(state)
    assert subject == "[dcwatch] ACTION NEEDED: NOT APPROVED failover dc-a -> dc-b, dc-a not proven fenced"
    assert "The promotion of dc-b was not approved: denied by bob: dc-a still answers on site" in body
    assert body.startswith("cannot prove dc-a is fenced:") and "Nothing was powered on at dc-b" in body
    assert messages.audit_record(state, "failed", clock)["fencingApprovedBy"] is None
    state.fence_approval.decision, state.error = None, {"Error": "States.Timeout", "Cause": ""}
    assert f"not approved: no answer within {cfg.workflow.approval.timeout_s} s" in messages.failure_message(state)[1]


def test_a_dead_site_is_promoted_once_its_lease_expired_and_the_standbys_agent_lost_it_too(clock):
    # Given dc-a died at T0, 25 s before the workflow reached ProveFenced
    cfg = config(AGENTS)
    leases, store = died_at(T0)
    clock.advance(25)
    store.put_agent_report(agent_report("dc-b", "dc-a", clock(), reached=False, last_heard_at=T0))

    # When ProveFenced looks: the lease could still be renewed until T0 + 40, so it waits until then
    state = prove(after_the_fence(cfg, clock), cfg, clock, leases, store)
    assert not state.fence_proof.proven and state.fence_proof.wait_seconds == 15 + 7
    assert "looking again in 22 s" in state.timeline[-1].detail

    # And after the wait, with dc-b's agent still reporting dc-a lost, proof (b) holds
    clock.advance(22)
    store.put_agent_report(agent_report("dc-b", "dc-a", clock(), reached=False, last_heard_at=T0))
    state = prove(state, cfg, clock, leases, store)
    assert state.fence_proof.proven and (state.fence_proof.kind, state.fence_proof.attempts) == ("lease", 2)
    assert state.fencing.startswith("proven fenced: dc-a's lease expired (last renewed at 03:00:00)")
    assert messages.audit_record(state, "succeeded", clock)["fenceProof"]["facts"]["standbyAgent"] == "dc-b@agent"


def test_a_site_whose_peer_still_hears_it_is_not_promoted_however_long_the_workflow_waits(clock):
    # Given the paths from AWS to dc-a are cut, dc-a <-> dc-b is up: its lease expires, dc-b still hears it
    cfg = config(AGENTS)
    leases, store = died_at(T0)
    state = after_the_fence(cfg, clock)
    for _ in range(cfg.fencing.proof_waits + 1):
        clock.advance(60)
        store.put_agent_report(agent_report("dc-b", "dc-a", clock(), reached=True))
        state = prove(state, cfg, clock, leases, store)
        if not state.fence_proof.wait_seconds:
            break

    # Then after proof_waits waits, the human gets the facts
    assert not state.fence_proof.proven and state.fence_proof.attempts == cfg.fencing.proof_waits + 1
    assert "dc-b's agent still reaches dc-a (its report of 03:07:00)" in state.fencing


def test_trust_quorum_promotes_without_a_proof_and_says_so_in_the_alert(clock):
    cfg = config({"trust_quorum": True})
    state = prove(after_the_fence(cfg, clock), cfg, clock)
    assert state.fence_proof.proven and state.fence_proof.kind == "trust_quorum"
    assert state.fencing.endswith("promoted on the quorum verdict, as fencing.trust_quorum says")
    assert f"Fencing: {state.fencing}" in messages.success_message(state, clock)[1]


def test_the_standbys_storage_can_prove_the_failed_side_offline(clock):
    # Given dc-b's mirror check says so: its SAN's own quorum witness took dc-a's volumes offline
    cfg = config(storage={"fenced_when": "[BODY].mirror.peer_state == offline"})
    seen = []
    offline = probe_with(lambda check: seen.append(check.spec.conditions) or Outcome(True))

    state = prove(after_the_fence(cfg, clock), cfg, clock, probe=offline)

    assert seen == [["[BODY].mirror.peer_state == offline"]]
    assert state.fence_proof.proven and state.fence_proof.kind == "storage"
    assert state.fencing == (
        "proven fenced: storage mirror san-mirror at dc-b shows dc-a's volumes offline or demoted "
        "([BODY].mirror.peer_state == offline)"
    )


# CheckStandby: the standby's own agent must still reach AWS, or it fences what the failover starts.


def standby_lease(renewed_ago_s: float, state: str = "DEGRADED") -> FakeSiteLeases:
    renewed = T0 - timedelta(seconds=renewed_ago_s)
    return FakeSiteLeases(
        {"dc-b": SiteLease("dc-b", "dc-b@agent", renewed, renewed + timedelta(seconds=30), False, True, state)}
    )


def standby_inventory():
    return FakeInventory({vm: "poweredOff" for vm in STANDBY_VMS})


def check_standby(clock, leases, **request):
    cfg = config(AGENTS)
    wanted = {"mode": "disaster", "from": "dc-a", "to": "dc-b", "reason": "dc-a DOWN", **request}
    state = steps.validate_request(wanted, cfg, clock, execution="dc-a-down-1")
    return steps.check_standby(state, standby_inventory(), clock, fencing=cfg.fencing, leases=leases)


def test_a_standby_whose_agent_renewed_its_lease_lately_is_promoted(clock):
    # fence_after_s = lease_ttl_s 30 - margin_s 10 = 20: renewed 19 s ago, it has not fenced.
    state = check_standby(clock, standby_lease(19))
    assert state.timeline[-1].detail.endswith("dc-b's agent reaches AWS")


def test_a_standby_whose_agent_lost_aws_longer_than_it_waits_before_fencing_is_not_promoted(clock):
    with pytest.raises(StandbyNotReady) as refused:
        check_standby(clock, standby_lease(21, "DEGRADED"))
    message = str(refused.value)
    assert "dc-b's agent last renewed its lease 21.0 s ago" in message
    assert "lease_ttl_s - margin_s (20 s)" in message
    assert "Nothing was changed" in message and "force: true" in message


def test_a_forced_failover_promotes_a_standby_whose_agent_went_quiet_and_says_so(clock):
    state = check_standby(clock, standby_lease(60), force=True)
    assert "promoted anyway as the request forced it" in state.timeline[-1].detail


def test_a_dry_run_reports_that_a_quiet_standby_agent_would_refuse_the_failover(clock):
    state = check_standby(clock, standby_lease(60), dryRun=True)
    assert "a failover would be refused (unless forced)" in state.timeline[-1].detail


def test_a_standby_whose_agent_never_ran_has_nothing_that_could_fence_it(clock):
    state = check_standby(clock, FakeSiteLeases())
    assert state.timeline[-1].detail.endswith(
        "no lease of dc-b on record: its agent never ran, nothing there fences it"
    )
