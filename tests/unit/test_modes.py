"""Recovery modes: what each asks of the sites, and what it promises not to touch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from dcwatch.config import ConfigError, parse_config
from dcwatch.errors import InvalidRequest, ShutdownIncomplete
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.ports import RecordValues
from dcwatch.recovery import messages, steps
from dcwatch.recovery.plan import build_plan, describe_plan
from dcwatch.recovery.request import Origin, parse_request
from dcwatch.recovery.state import WorkflowState
from dcwatch.recovery.steps.approval import approval_answer
from tests.helpers import demo_config
from tests.unit.fakes import Clock, FakeDns, FakeInventory, FakeLeases, FakeNotifier, FakeOnce, FakeStore

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
ACTIVE_VMS = ["shop-db-a", "transit-db-a", "radio-stream-a", "shop-web-a1", "shop-web-a2", "transit-app-a"]
DRILL_VMS = ["shop-db-b", "transit-db-b", "shop-web-b1", "shop-web-b2", "transit-app-b"]


class GuestInventory(FakeInventory):
    """VMs whose guests shut down when asked, unless they have no Tools or hang."""

    def __init__(self, vms: dict[str, str]):
        super().__init__(vms)
        self.no_tools: set[str] = set()
        self.hanging: set[str] = set()
        self.stuck: set[str] = set()  # not even power-off works
        self.shutdown_calls: list[list[str]] = []

    def shutdown_guest(self, vm_names: Sequence[str]) -> dict[str, str]:
        self.shutdown_calls.append(list(vm_names))
        refused = {vm: "VMware Tools not running" for vm in vm_names if vm in self.no_tools}
        for vm in vm_names:
            if vm not in refused and vm not in self.hanging:
                self.vms[vm] = "poweredOff"
        return refused

    def power_off(self, vm_names: Sequence[str]) -> dict[str, str]:
        return super().power_off([vm for vm in vm_names if vm not in self.stuck])


def request(mode: str, **extra):
    sites = ("dc-b", "dc-a") if mode == "failback" else ("dc-a", "dc-b")
    return {"mode": mode, "from": sites[0], "to": sites[1], "reason": f"{mode} of the demo pair", **extra}


def config_with(**changes):
    doc = yaml.safe_load(DEMO_CONFIG.read_text())
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return parse_config(doc)


@pytest.fixture
def clock():
    return Clock(T0)


def test_every_mode_is_a_valid_request_and_the_old_action_failover_reads_as_disaster():
    for mode in ("disaster", "migration", "drill", "failback"):
        assert parse_request(request(mode), demo_config()).mode == mode
    old = {"action": "failover", "from": "dc-a", "to": "dc-b", "reason": "the input before modes"}
    assert parse_request(old, demo_config()).mode == "disaster"


@pytest.mark.parametrize(
    ("raw", "active", "message"),
    [
        (request("explode"), None, "mode: Input should be 'disaster', 'migration', 'drill' or 'failback'"),
        ({"from": "dc-a", "to": "dc-b", "reason": "no mode"}, None, "mode: Field required"),
        (request("failback", trigger="automatic"), None, "a failback is only ever started by hand"),
        (request("failback", **{"from": "dc-a", "to": "dc-b"}), None, "returns to the original site dc-a, not dc-b"),
        (request("failback"), "dc-a", "from: a failback leaves the active site, which is dc-a, not dc-b"),
        (request("migration"), "dc-b", "from: a migration leaves the active site, which is dc-b, not dc-a"),
        (request("drill"), "dc-b", "to: dc-b is the active site; a drill never touches production"),
        (request("drill", action="failover"), None, "action: 'failover' is the old name of mode disaster"),
    ],
)
def test_a_request_a_mode_cannot_carry_out_is_refused_naming_why(raw, active, message):
    with pytest.raises(InvalidRequest, match=message):
        parse_request(raw, demo_config(), active)


def test_a_drill_needs_the_config_to_name_its_services():
    with pytest.raises(InvalidRequest, match="mode: drill needs a `drill:` section"):
        parse_request(request("drill"), config_with(drill=None))


def test_a_migration_shuts_the_leaving_site_down_last_group_first_and_fences_nothing():
    plan = build_plan(demo_config(), "dc-a", "dc-b", "migration")
    assert plan.shutdown == [
        ["transit-app-a"],
        ["radio-stream-a", "shop-web-a1", "shop-web-a2"],
        ["shop-db-a", "transit-db-a"],
    ]
    assert plan.fence == [] and plan.groups[0] == ["shop-db-b", "transit-db-b"]
    assert describe_plan(plan)[:2] == [
        "shut down dc-a gracefully, last group first (power off after the timeout):",
        "  shutdown 1: transit-app-a",
    ]


def test_the_lock_must_outlast_the_approval_wait():
    with pytest.raises(ConfigError, match="lease_s 900 must be at least"):
        config_with(workflow={"lease_s": 900, "approval": {"modes": ["migration"], "timeout_s": 1800}})


def migration(clock, inventory, timeout_s=60):
    state = steps.validate_request(request("migration"), demo_config(), clock, active_site="dc-a")
    state = steps.shutdown_group(state, inventory, timeout_s, clock)
    return state


def test_a_migration_asks_every_guest_of_a_group_to_shut_down_and_records_how_each_vm_went_down(clock):
    inventory = GuestInventory({vm: "poweredOn" for vm in ACTIVE_VMS})
    inventory.no_tools.add("shop-web-a1")
    state = migration(clock, inventory)
    state = steps.check_shutdown(state, inventory, 60, clock)
    while not state.shutdown.all_off:
        state = steps.shutdown_group(state, inventory, 60, clock)
        state = steps.check_shutdown(state, inventory, 60, clock)
    assert inventory.shutdown_calls == [
        ["transit-app-a"],
        ["radio-stream-a", "shop-web-a1", "shop-web-a2"],
        ["shop-db-a", "transit-db-a"],
    ]
    assert state.shutdown.how["shop-web-a1"] == "powered off: guest shutdown refused (VMware Tools not running)"
    assert state.shutdown.how["shop-db-a"] == "guest shutdown"
    assert set(inventory.vms.values()) == {"poweredOff"}


def test_a_guest_that_outlasts_the_group_timeout_is_powered_off_and_the_next_group_waits_until_then(clock):
    inventory = GuestInventory({vm: "poweredOn" for vm in ACTIVE_VMS})
    inventory.hanging.add("transit-app-a")
    state = steps.check_shutdown(migration(clock, inventory, timeout_s=30), inventory, 30, clock)
    assert state.shutdown.group_done is False and inventory.vms["transit-app-a"] == "poweredOn"
    clock.now += timedelta(seconds=31)
    state = steps.check_shutdown(state, inventory, 30, clock)
    assert inventory.vms["transit-app-a"] == "poweredOff" and state.shutdown.group == 0
    state = steps.check_shutdown(state, inventory, 30, clock)
    assert state.shutdown.group == 1 and state.shutdown.how["transit-app-a"] == "powered off: guest still up after 30 s"


def test_a_vm_that_neither_shuts_down_nor_powers_off_stops_the_migration_for_a_human(clock):
    inventory = GuestInventory({vm: "poweredOn" for vm in ACTIVE_VMS})
    inventory.hanging.add("transit-app-a")
    inventory.stuck.add("transit-app-a")
    state = migration(clock, inventory, timeout_s=30)
    for _ in range(2):
        clock.now += timedelta(seconds=31)
        try:
            state = steps.check_shutdown(state, inventory, 30, clock)
        except ShutdownIncomplete as exc:
            assert "transit-app-a" in str(exc)
            return
    pytest.fail("the migration went on with a VM still running at the leaving site")


def test_the_modes_the_config_names_wait_for_approval_and_the_request_carries_the_commands_that_answer(clock):
    config = config_with(
        workflow={"poll_s": 1, "lease_s": 1000, "approval": {"modes": ["migration"], "timeout_s": 600}}
    )
    state = steps.validate_request(request("migration"), config, clock)
    assert (state.approval.required, state.approval.timeout_seconds) == (True, 600)
    assert not steps.validate_request(request("disaster"), config, clock).approval.required

    notifier = FakeNotifier()
    steps.request_approval(state, "tok-123", notifier, clock)
    ((subject, body),) = notifier.sent
    assert subject == "[dcwatch] APPROVAL NEEDED: planned migration dc-a -> dc-b"
    assert "dcwatch approve --token tok-123" in body and "dcwatch deny --token tok-123" in body
    assert "from\nthe console: the control function" in body, "operators without a shell answer there"
    assert "without an answer by 2026-11-25 03:10:00 UTC it stops" in body and "shutdown 1: transit-app-a" in body

    leases = FakeLeases()
    leases.acquire(state.owner, 60, clock())
    state.approval.decision = approval_answer(True, "alice", "change CHG-1 approved", clock())
    state = steps.approved(state, leases, 900, clock)
    assert state.timeline[-1].detail == "approved by alice: change CHG-1 approved"


def test_a_forced_request_waits_for_approval_and_the_message_says_data_may_be_lost(clock):
    state = steps.validate_request(request("disaster", force=True), demo_config(), clock)
    assert state.approval.required, "the demo config asks approval for no mode: force alone does"
    notifier = FakeNotifier()
    steps.request_approval(state, "tok-9", notifier, clock)
    ((subject, body),) = notifier.sent
    assert subject == "[dcwatch] APPROVAL NEEDED: failover dc-a -> dc-b"
    assert "FORCED: dc-b is promoted even beyond the storage mirror's data-loss window" in body

    leases = FakeLeases()
    leases.acquire(state.owner, 60, clock())
    caller = "arn:aws:sts::123456789012:assumed-role/Operators/alice"
    state.approval.decision = approval_answer(True, "alice", "CHG-9: loss accepted", clock(), caller)
    state = steps.approved(state, leases, 900, clock)
    assert state.timeline[-1].detail == f"approved by alice ({caller}): CHG-9: loss accepted"


def test_a_denied_or_unanswered_approval_says_nothing_was_changed(clock):
    state = steps.validate_request(request("failback"), demo_config(), clock)
    state.failed_step = "RequestApproval"
    state.approval.decision = approval_answer(False, "bob", "not tonight", clock())
    subject, body = messages.failure_message(state)
    assert subject == "[dcwatch] OK: NOT APPROVED failback dc-b -> dc-a, nothing was changed"
    assert "not approved: denied by bob: not tonight" in body
    state.approval.decision, state.error = None, {"Error": "States.Timeout", "Cause": ""}
    state.approval.timeout_seconds = 600
    assert "not approved: no answer within 600 s" in messages.failure_message(state)[1]


def test_a_migration_lowers_the_ttl_of_its_records_first_and_waits_out_the_old_ttl(clock):
    # Given production records at dc-a with the config's TTLs (60 s for shop and transit, 30 s for radio)
    dns = FakeDns()
    for name, ttl in (("shop", 60), ("radio", 30), ("transit", 60)):
        record = RecordValues("hosting.example.", f"{name}.hosting.example.", "A", ttl, ("127.0.10.1",))
        dns.sets[(record.name, None)], dns.records[record.name] = record, record.values
    state = steps.validate_request(request("migration", lowerTtlSeconds=30), demo_config(), clock, active_site="dc-a")

    # When the TTL is lowered to 30 s
    state = steps.lower_ttl(state, dns, state.request.lower_ttl_s, clock)

    # Then the values stay, the TTL drops where it was longer, and the workflow waits the longest old TTL
    (lowered,) = dns.upserts
    assert {(r.name, r.ttl, r.values) for r in lowered} == {
        ("shop.hosting.example.", 30, ("127.0.10.1",)),
        ("transit.hosting.example.", 30, ("127.0.10.1",)),
    }
    assert state.progress.ttl_wait_s == 60 and state.progress.ttl_expires_at == T0 + timedelta(seconds=60)
    # And a failure before the switch says DNS was not switched (the TTL change is no UPSERT of the standby)
    assert state.progress.dns_changes == [] and state.progress.ttl_changes == ["change-1"]
    state.failed_step, state.error = "ShutdownGroup", {"Error": "ShutdownIncomplete", "Cause": "still on"}
    _, body = messages.failure_message(state, clock)
    assert "DNS: not switched; shop.hosting.example." in body and "UPSERT sent" not in body
    assert "DNS TTL lowered to 30 s (values unchanged): restore it by hand" in body


@pytest.mark.parametrize(
    ("mode", "extra", "message"),
    [
        ("disaster", {"lowerTtlSeconds": 30}, "only a planned migration or a failback lowers the TTL first"),
        ("drill", {"lowerTtlSeconds": 30}, "only a planned migration or a failback lowers the TTL first"),
        ("migration", {"lowerTtlSeconds": 0}, "lowerTtlSeconds: Input should be greater than or equal to 1"),
    ],
)
def test_a_ttl_lowering_where_it_does_not_belong_is_refused(mode, extra, message):
    with pytest.raises(InvalidRequest, match=message):
        parse_request(request(mode, **extra), demo_config(), "dc-a")


def test_a_ttl_wait_that_would_outlast_the_lock_is_refused_before_anything_moves():
    doc = yaml.safe_load(DEMO_CONFIG.read_text())
    doc["services"][0]["dns"]["ttl"] = 3600
    config = parse_config(doc)
    with pytest.raises(InvalidRequest, match=r"TTL of 3600 s would outlast the lock \(workflow.lease_s 900 less 60"):
        parse_request(request("migration", lowerTtlSeconds=10), config, "dc-a")


def test_a_retried_approval_request_sends_one_message(clock):
    state = steps.validate_request(request("failback"), demo_config(), clock)
    notifier, once = FakeNotifier(), FakeOnce()
    first = steps.request_approval(state, "tok-1", notifier, clock, once=once)
    again = steps.request_approval(WorkflowState.model_validate(state.dump()), "tok-1", notifier, clock, once=once)
    assert len(notifier.sent) == 1 and again == first


@pytest.mark.parametrize("status", ["DOWN", "FLAPPING"])
def test_a_failback_to_a_site_the_evaluator_does_not_record_as_up_is_refused(status):
    recorded = {"dc-a": status, "dc-b": "UP"}
    with pytest.raises(InvalidRequest, match=f"to: dc-a is {status} by the evaluator's record; a failback returns"):
        parse_request(request("failback"), demo_config(), "dc-b", recorded.__getitem__)


def test_a_failback_to_a_site_up_again_is_accepted():
    request_ = parse_request(request("failback"), demo_config(), "dc-b", {"dc-a": "UP"}.__getitem__)
    assert request_.to == "dc-a"


def test_only_the_evaluators_own_start_is_automatic_and_a_manual_one_keeps_to_its_own_incidents(clock):
    store, leases = FakeStore(), FakeLeases()
    automatic = request("disaster", trigger="automatic", incidentId="dc-a-down-1")
    # Not started by the evaluator: no DOWN recorded under that incident, no lock held for it
    with pytest.raises(InvalidRequest, match="the evaluator records no incident for dc-a, the lock is held by nobody"):
        parse_request(automatic, demo_config(), origin=Origin("dc-a-down-1", store, leases))
    # The evaluator's start: dc-a DOWN under the incident, the lock under it, the execution named after it
    up = store.condition("site/dc-a", "UP")
    store.change_condition("site/dc-a", up, replace(up, status="DOWN", incident_id="dc-a-down-1", version=1))
    leases.acquire("dc-a-down-1", 900, clock())
    assert parse_request(automatic, demo_config(), origin=Origin("dc-a-down-1", store, leases)).trigger == "automatic"
    with pytest.raises(InvalidRequest, match="execution console-1 with incidentId dc-a-down-1 is not"):
        parse_request(automatic, demo_config(), origin=Origin("console-1", store, leases))
    # By hand, the evaluator's incident is out of reach
    with pytest.raises(InvalidRequest, match="incidentId: a recovery started by hand has its own incident"):
        parse_request(request("disaster", incidentId="dc-a-down-1"), demo_config())
    assert parse_request(request("disaster", incidentId="manual-1"), demo_config()).incident_id == "manual-1"


def test_a_disaster_leaves_the_recorded_active_site_only():
    with pytest.raises(InvalidRequest, match="from: a disaster leaves the active site, which is dc-b, not dc-a"):
        parse_request(request("disaster"), demo_config(), "dc-b")
