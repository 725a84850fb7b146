"""The workflow's steps, driven in the order the ASL runs them, against in-memory ports."""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from dcwatch.config import parse_config
from dcwatch.detection.checks import Outcome, run_round
from dcwatch.errors import (
    FencingIncomplete,
    GroupTimeout,
    LeaseHeld,
    LeaseLost,
    PowerOnFailed,
    ServiceNotVerified,
    StandbyNotReady,
    Superseded,
    TransientError,
    VcenterRefused,
    VcenterUnreachable,
)
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.model import LastFailover, StoredStatus
from dcwatch.recovery import messages, steps
from dcwatch.recovery.state import WorkflowState
from tests.helpers import demo_config
from tests.unit.fakes import Clock, FakeDns, FakeInventory, FakeLeases, FakeNotifier, FakeStore

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
STANDBY_VMS = ["shop-db-b", "transit-db-b", "radio-stream-b", "shop-web-b1", "shop-web-b2", "transit-app-b"]


def request(**extra):
    return {"action": "failover", "from": "dc-a", "to": "dc-b", "reason": "dc-a lost power", **extra}


def as_json(state: WorkflowState) -> WorkflowState:
    """Step Functions passes JSON between states; every step must survive the round trip."""
    return WorkflowState.model_validate(state.dump())


def power_on_all_groups(state, inventory, clock):
    while not state.progress.all_groups_up:
        state = as_json(steps.start_group(state, inventory, timeout_s=60, clock=clock))
        state = as_json(steps.check_group(state, inventory, clock=clock))
    return state


def probe_with(outcome_of):
    """A probe that runs the real engine with a runner answering `outcome_of(check)`."""

    async def runner(check):
        return outcome_of(check)

    return lambda checks, round_id: run_round(checks, runner, vantage="workflow", round_id=round_id)


ALL_PASS = probe_with(lambda check: Outcome(True))


def run_to_the_end(state, inventory, dns, notifier, store, clock, probe=ALL_PASS):
    config = demo_config()
    state = as_json(steps.check_standby(state, inventory, clock))
    state = power_on_all_groups(state, inventory, clock)
    state = as_json(steps.verify_services(state, config, probe, clock))
    state = as_json(steps.switch_dns(state, dns, 60, clock))
    while not state.progress.dns_in_sync:
        state = as_json(steps.check_dns(state, dns, clock))
    state = as_json(steps.record_audit(state, store, clock))
    return as_json(steps.notify(state, notifier, clock))


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def inventory():
    return FakeInventory({vm: "poweredOff" for vm in STANDBY_VMS})


def test_a_failover_powers_on_group_after_group_switches_dns_notifies_once_and_records_the_new_active_site(
    inventory, clock
):
    dns, notifier, store = FakeDns(pending_polls=2), FakeNotifier(), FakeStore()
    state = steps.validate_request(request(incidentId="manual-inc-1"), demo_config(), clock)

    state = run_to_the_end(state, inventory, dns, notifier, store, clock)

    assert inventory.power_on_calls == [
        ["shop-db-b", "transit-db-b"],
        ["radio-stream-b", "shop-web-b1", "shop-web-b2"],
        ["transit-app-b"],
    ]
    assert state.progress.powered_on == [vm for call in inventory.power_on_calls for vm in call]
    assert dns.records["shop.hosting.example."] == ("127.0.20.1",)
    assert len(notifier.sent) == 1
    subject, body = notifier.sent[0]
    assert subject == "[dcwatch] OK: FAILOVER DONE dc-a -> dc-b, services run at dc-b; no action needed"
    assert (
        "Reason: dc-a lost power" in body
        and "SwitchDns (0.0 s): UPSERT" in body
        and "CheckGroup (0.0 s): group 3 up" in body
    )
    assert store.active == "dc-b"
    assert [r["outcome"] for r in store.audits["manual-inc-1"]] == ["succeeded"]


def test_a_rerun_of_a_group_does_not_power_on_what_is_already_on(inventory, clock):
    state = steps.validate_request(request(), demo_config(), clock)
    inventory.vms["shop-db-b"] = "poweredOn"
    state = steps.start_group(state, inventory, 60, clock)
    assert inventory.power_on_calls == [["transit-db-b"]]
    state = steps.start_group(state, inventory, 60, clock)
    assert inventory.power_on_calls == [["transit-db-b"]], "a retried step powers on nothing twice"
    assert "already on" in state.timeline[-1].detail


def test_a_group_waits_until_every_task_is_done(inventory, clock):
    inventory.instant = False
    state = steps.start_group(steps.validate_request(request(), demo_config(), clock), inventory, 60, clock)
    state = steps.check_group(state, inventory, clock)
    assert state.progress.group_ready is False and state.progress.group == 0
    for task in list(inventory.tasks):
        inventory.finish(task)
    state = steps.check_group(state, inventory, clock)
    assert state.progress.group_ready is True and state.progress.group == 1 and not state.progress.all_groups_up


def test_a_failed_power_on_task_stops_the_workflow_naming_the_vm(inventory, clock):
    inventory.fail["transit-db-b"] = "insufficient resources"
    state = steps.start_group(steps.validate_request(request(), demo_config(), clock), inventory, 60, clock)
    with pytest.raises(PowerOnFailed, match="transit-db-b: insufficient resources"):
        steps.check_group(state, inventory, clock)


def test_a_group_not_up_by_its_deadline_fails_naming_what_it_waited_for(inventory, clock):
    inventory.instant = False
    state = steps.start_group(steps.validate_request(request(), demo_config(), clock), inventory, 30, clock)
    clock.now += timedelta(seconds=31)
    with pytest.raises(GroupTimeout, match=r"group 1 .*shop-db-b \(poweredOff\), transit-db-b \(poweredOff\)"):
        steps.check_group(state, inventory, clock)


def test_a_standby_missing_vms_is_not_ready_and_names_them(clock):
    inventory = FakeInventory({"shop-db-b": "poweredOff"})
    state = steps.validate_request(request(), demo_config(), clock)
    with pytest.raises(StandbyNotReady, match="transit-db-b"):
        steps.check_standby(state, inventory, clock)


def test_a_service_that_does_not_answer_at_the_standby_is_named(inventory, clock):
    state = power_on_all_groups(steps.validate_request(request(), demo_config(), clock), inventory, clock)

    radio_down = probe_with(lambda check: Outcome(check.name != "radio-stream", "connection refused"))

    with pytest.raises(ServiceNotVerified, match="radio/radio-stream: connection refused"):
        steps.verify_services(state, demo_config(), radio_down, clock)


def test_a_dry_run_announces_the_plan_and_leaves_the_active_site_alone(clock):
    notifier, store = FakeNotifier(), FakeStore()
    state = steps.validate_request(request(dryRun=True, incidentId="manual-dry"), demo_config(), clock)
    state = steps.notify(steps.record_audit(state, store, clock), notifier, clock)
    subject, body = notifier.sent[0]
    assert subject.startswith("[dcwatch] OK: DRY RUN dc-a -> dc-b")
    assert "group 2: radio-stream-b, shop-web-b1, shop-web-b2" in body
    assert store.active is None
    assert store.audits["manual-dry"][0]["outcome"] == "dry-run"


def test_a_failure_notice_says_where_it_stopped_why_and_what_was_already_done(inventory, clock):
    notifier, store = FakeNotifier(), FakeStore()
    state = steps.validate_request(request(incidentId="manual-inc-9"), demo_config(), clock)
    state = steps.check_group(steps.start_group(state, inventory, 60, clock), inventory, clock)
    failed = as_json(state).model_copy(
        update={
            "failed_step": "SwitchDns",
            "error": {"Error": "TransientError", "Cause": '{"errorMessage": "Throttling"}'},
        }
    )
    steps.notify_failure(failed, notifier, store, clock)
    subject, body = notifier.sent[0]
    assert subject.startswith("[dcwatch] ACTION NEEDED: failover dc-a -> dc-b failed at SwitchDns")
    assert "Cause: Throttling" in body
    assert "Up at dc-b: shop-db-b, transit-db-b" in body
    assert "Not powered on: radio-stream-b, shop-web-b1, shop-web-b2, transit-app-b" in body
    assert (
        "DNS: not switched; shop.hosting.example., radio.hosting.example., transit.hosting.example. still at dc-a"
        in body
    )
    assert store.audits["manual-inc-9"][0]["outcome"] == "failed"


def test_a_standby_without_vms_to_power_on_goes_on_to_verify_its_services(clock):
    # Given services the standby already serves without VMs of ours to start
    doc = yaml.safe_load(DEMO_CONFIG.read_text())
    for service in doc["services"]:
        for at_site in service["sites"].values():
            at_site["vms"] = []
    config, inventory = parse_config(doc), FakeInventory({})

    # When the workflow runs its power-on loop as the ASL does
    state = steps.check_standby(steps.validate_request(request(), config, clock), inventory, clock)
    state = as_json(steps.start_group(state, inventory, 60, clock))
    state = as_json(steps.check_group(state, inventory, clock))

    # Then nothing is powered on and the loop ends
    assert state.progress.all_groups_up and inventory.power_on_calls == []


FAILED_SITE_VMS = ["radio-stream-a", "shop-db-a", "shop-web-a1", "shop-web-a2", "transit-app-a", "transit-db-a"]


def started(clock, **extra) -> WorkflowState:
    # As the evaluator starts it: the execution is named after the incident.
    return steps.validate_request(
        request(incidentId="dc-a-down-1", trigger="automatic", **extra), demo_config(), clock, execution="dc-a-down-1"
    )


def test_the_workflow_takes_the_lock_of_its_incident_and_stops_when_another_failover_holds_it(clock):
    leases = FakeLeases()
    state = as_json(steps.acquire_lease(started(clock), leases, ttl_s=900, clock=clock))
    assert leases.holder().owner == "dc-a-down-1" and "lock held by dc-a-down-1" in state.timeline[-1].detail
    rival = steps.validate_request(request(incidentId="manual-dc-a-1"), demo_config(), clock, execution="console-1")
    with pytest.raises(LeaseHeld, match="another failover holds the lock: dc-a-down-1"):
        steps.acquire_lease(rival, leases, ttl_s=900, clock=clock)
    steps.release_lease(rival, leases, clock)
    assert leases.holder().owner == "dc-a-down-1", "only the owner releases"
    steps.renew_lease(state, leases, ttl_s=900, clock=clock)
    steps.release_lease(state, leases, clock)
    assert leases.holder() is None


def test_two_executions_of_the_same_request_without_incident_id_never_both_hold_the_lock(clock):
    # Given two console executions of the same request started in the same second
    leases = FakeLeases()
    first, second = (steps.validate_request(request(), demo_config(), clock, execution=f"console-{n}") for n in (1, 2))
    assert (first.incident_id, second.incident_id) == ("manual-console-1", "manual-console-2"), "each its own"

    # When both reach AcquireLease, then only the first holds the lock; the second stops touching nothing
    steps.acquire_lease(first, leases, ttl_s=900, clock=clock)
    with pytest.raises(LeaseHeld, match="another failover holds the lock: console-1"):
        steps.acquire_lease(second, leases, ttl_s=900, clock=clock)
    with pytest.raises(LeaseLost):
        steps.renew_lease(second, leases, ttl_s=900, clock=clock)
    steps.release_lease(second, leases, clock)
    assert leases.holder().owner == "console-1" and leases.acquired == ["console-1"]


def test_a_request_accepted_before_another_recovery_moved_production_changes_nothing_and_says_so(clock):
    # Given a console request to fail dc-a over, accepted while dc-a was active, and a recovery that moved
    # production to dc-b and gave the lock back before this request reached AcquireLease
    leases, state = FakeLeases(), started(clock)
    with pytest.raises(Superseded, match="production already runs at dc-b, not at dc-a") as superseded:
        steps.acquire_lease(state, leases, ttl_s=900, clock=clock, active_site=lambda: "dc-b")
    assert leases.holder() is None, "the lock is given back at once"
    # Then its alert says no action is needed, like a refusal for a held lock
    state.failed_step = "AcquireLease"
    state.error = {"Error": "Superseded", "Cause": json.dumps({"errorMessage": str(superseded.value)})}
    subject, body = messages.failure_message(state)
    assert subject == "[dcwatch] OK: REFUSED dc-a -> dc-b, production already moved; no action needed"
    assert "production already runs at dc-b" in body


def test_the_lock_says_which_site_a_recovery_moves_production_away_from(clock):
    leases = FakeLeases()
    steps.acquire_lease(started(clock), leases, ttl_s=900, clock=clock, active_site=lambda: "dc-a")
    assert leases.holder().leaving == "dc-a"


def test_without_an_execution_name_each_validated_request_still_owns_the_lock_alone(clock):
    first, second = (steps.validate_request(request(), demo_config(), clock) for _ in range(2))
    assert first.owner != second.owner and first.owner.startswith(first.incident_id)


def test_a_workflow_whose_lease_was_taken_over_stops_before_the_next_step(clock):
    leases = FakeLeases()
    state = steps.acquire_lease(started(clock), leases, ttl_s=60, clock=clock)
    leases.acquire("manual-dc-a-2", 60, clock() + timedelta(seconds=61))
    with pytest.raises(LeaseLost, match="no longer held by dc-a-down-1 but by manual-dc-a-2"):
        steps.renew_lease(state, leases, ttl_s=60, clock=clock)


@contextmanager
def reachable(inventory):
    yield inventory


@contextmanager
def unreachable():
    raise VcenterUnreachable("vCenter http://127.0.0.1:18989/sdk unreachable: [Errno 111] Connection refused")
    yield


def test_fencing_powers_off_the_failed_sites_vms_where_its_vcenter_answers(clock):
    failed_site = FakeInventory({vm: "poweredOn" for vm in FAILED_SITE_VMS[1:]} | {FAILED_SITE_VMS[0]: "poweredOff"})
    state = as_json(steps.fence(started(clock), lambda: reachable(failed_site), clock))
    assert set(failed_site.vms.values()) == {"poweredOff"}
    assert state.fencing == f"fenced dc-a: powered off {', '.join(FAILED_SITE_VMS[1:])}; already off: radio-stream-a"


def test_fencing_records_proof_a_with_the_vms_its_vcenter_powered_off(clock):
    failed_site = FakeInventory({vm: "poweredOn" for vm in FAILED_SITE_VMS[1:]} | {FAILED_SITE_VMS[0]: "poweredOff"})
    state = as_json(steps.fence(started(clock), lambda: reachable(failed_site), clock))
    assert state.fence_proof.proven and state.fence_proof.kind == "vcenter"
    assert state.fence_proof.facts == {
        "poweredOff": FAILED_SITE_VMS[1:],
        "alreadyOff": ["radio-stream-a"],
        "notFound": [],
    }
    assert messages.audit_record(state, "succeeded", clock)["fenceProof"]["kind"] == "vcenter"


def test_fencing_that_leaves_vms_running_is_retried_and_never_reported_as_done(clock):
    stuck = FakeInventory({vm: "poweredOn" for vm in FAILED_SITE_VMS})
    stuck.instant = False
    with pytest.raises(FencingIncomplete, match="still powered on at dc-a: radio-stream-a"):
        steps.fence(started(clock), lambda: reachable(stuck), clock)


def test_the_fence_waits_within_its_step_for_the_power_offs_vcenter_is_still_running(clock):
    # Given a vCenter whose power-off tasks take 3 s
    failed_site = FakeInventory({vm: "poweredOn" for vm in FAILED_SITE_VMS}, clock)
    failed_site.power_off_s = 3
    begun = clock()

    # When fencing may wait 20 s, then it ends once they are off, not at its deadline and not with a retry
    state = steps.fence(started(clock), lambda: reachable(failed_site), clock, wait_until=begun + timedelta(seconds=20))
    assert set(failed_site.vms.values()) == {"poweredOff"}
    assert state.fencing == f"fenced dc-a: powered off {', '.join(FAILED_SITE_VMS)}"
    assert clock() == begun + timedelta(seconds=3)


def test_the_fence_that_sees_vms_still_on_at_its_deadline_is_retried(clock):
    failed_site = FakeInventory({vm: "poweredOn" for vm in FAILED_SITE_VMS}, clock)
    failed_site.power_off_s = 30
    with pytest.raises(FencingIncomplete, match="still powered on at dc-a: radio-stream-a, shop-db-a"):
        steps.fence(started(clock), lambda: reachable(failed_site), clock, wait_until=clock() + timedelta(seconds=20))


class DropsMidPowerOff(FakeInventory):
    """A vCenter that answers and lists its VMs, then loses the connection while powering them off."""

    def power_off(self, vm_names):
        super().power_off(vm_names[:1])
        raise TransientError("vCenter http://127.0.0.1:18989/sdk: connection reset during PowerOffVM_Task")


def test_a_vcenter_that_answers_but_fails_mid_fencing_is_retried_never_recorded_as_unreachable(clock):
    # Given the failed site's vCenter accepts the login, then fails after one VM was powered off
    failed_site = DropsMidPowerOff({vm: "poweredOn" for vm in FAILED_SITE_VMS})
    state = started(clock)

    # When fencing runs, then it raises TransientError (the ASL retries it, then escalates) and records nothing
    with pytest.raises(TransientError, match="vCenter of dc-a answered but fencing failed midway.*may still be on"):
        steps.fence(state, lambda: reachable(failed_site), clock)
    assert state.fencing is None
    assert "poweredOn" in failed_site.vms.values(), "VMs still run: proceeding would run both sites"


@contextmanager
def login_refused():
    raise VcenterRefused("vCenter http://127.0.0.1:18989/sdk refused the login of dcwatch")
    yield


@pytest.mark.parametrize("fault", [unreachable, login_refused], ids=["no connection", "login refused"])
def test_a_vcenter_that_does_not_power_the_site_off_is_never_a_fence(clock, fault):
    # Given the failed site's vCenter cannot be connected to, or refuses us
    state = started(clock)

    # When fencing runs, then it raises (ProveFenced seeks the other proofs) and records no fence and no proof
    with pytest.raises((VcenterUnreachable, VcenterRefused)):
        steps.fence(state, fault, clock)
    assert state.fencing is None and state.fence_proof is None


class SnsDown:
    def publish(self, subject: str, message: str) -> str:
        raise TransientError("sns:Publish: ServiceUnavailable")


def failed_at(state: WorkflowState, step: str) -> WorkflowState:
    return as_json(state).model_copy(update={"failed_step": step, "error": {"Error": "TransientError", "Cause": "x"}})


def test_the_cooldown_starts_when_a_recovery_moves_production_not_when_it_starts(inventory, clock):
    # A failover that ran to the end: its record, the new active site and the cooldown's start, together
    store = FakeStore()
    state = steps.validate_request(request(incidentId="manual-inc-1"), demo_config(), clock)
    run_to_the_end(state, inventory, FakeDns(), FakeNotifier(), store, clock)
    assert store.active == "dc-b" and store.last_failover() == LastFailover("manual-inc-1", T0)

    # One that failed before the DNS switch moved nothing: no cooldown holds the next automatic attempt back
    store = FakeStore()
    state = steps.validate_request(request(incidentId="manual-inc-2"), demo_config(), clock)
    steps.notify_failure(failed_at(state, "CheckStandby"), FakeNotifier(), store, clock)
    assert store.last_failover() is None

    # One that failed after the switch did move production: the cooldown starts with it
    state = steps.switch_dns(state, FakeDns(), 60, clock)
    steps.notify_failure(failed_at(state, "CheckDns"), FakeNotifier(), store, clock)
    assert store.last_failover() == LastFailover("manual-inc-2", T0)


def test_a_failure_is_audited_before_it_is_announced_so_a_failed_announcement_loses_no_record(clock):
    store = FakeStore()
    state = steps.validate_request(request(incidentId="manual-inc-3"), demo_config(), clock)
    with pytest.raises(TransientError):
        steps.notify_failure(failed_at(state, "StartGroup"), SnsDown(), store, clock)
    assert [r["outcome"] for r in store.audits["manual-inc-3"]] == ["failed"]


def test_a_notification_that_failed_every_retry_is_recorded_with_why_and_undoes_nothing(inventory, clock):
    store = FakeStore()
    state = steps.validate_request(request(incidentId="manual-inc-4"), demo_config(), clock)
    state = run_to_the_end(state, inventory, FakeDns(), FakeNotifier(), store, clock)
    unannounced = as_json(state).model_copy(update={"notify_error": {"Error": "TransientError", "Cause": "down"}})
    steps.record_audit(unannounced, store, clock)
    succeeded, failed = store.audits["manual-inc-4"]
    assert succeeded["outcome"] == "succeeded" and store.active == "dc-b"
    assert failed["outcome"] == "notify-failed" and failed["notifyError"] == {
        "Error": "TransientError",
        "Cause": "down",
    }


def test_the_site_production_moves_to_has_its_parts_judged_afresh_not_as_its_last_turn_left_them(clock):
    """A failback returns to the site whose vCenter and services the outage left DOWN: were those conditions to
    stand, status would say "vCenter DOWN" for ever and the vCenter's next real failure would alert nothing
    (DOWN to DOWN is no change)."""
    store = FakeStore()
    down = StoredStatus("DOWN", since=clock(), version=1)
    stale = ["vcenter/dc-b", "service/shop@dc-b", "service/radio@dc-b", "service/transit@dc-b"]
    for key in [*stale, "vcenter/dc-a", "site/dc-a"]:
        store.conditions[key] = down
    state = steps.validate_request(request(), demo_config(), clock)
    steps.record_audit(state, store, clock)
    assert store.active_site("dc-a") == "dc-b"
    assert [key for key in stale if key in store.conditions] == [], "judged afresh, from their checks"
    assert store.conditions["vcenter/dc-a"] == store.conditions["site/dc-a"] == down, "the site left keeps its own"
