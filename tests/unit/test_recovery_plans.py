"""Recovery plans: order inside a group, readiness, group checks, hooks, storage, steps that act once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from dcwatch.config import ConfigError, parse_config
from dcwatch.detection.checks import Outcome, run_round
from dcwatch.errors import GroupTimeout, HookFailed, MirrorNotCaughtUp, StorageNotSafe
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.ports import RecordValues
from dcwatch.recovery import messages, steps
from dcwatch.recovery.state import WorkflowState
from tests.unit.fakes import Clock, FakeDns, FakeHooks, FakeInventory, FakeNotifier, FakeOnce, FakeStore

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def demo_doc() -> dict:
    return yaml.safe_load(DEMO_CONFIG.read_text())


def shop_at_b(doc: dict) -> dict:
    return next(s for s in doc["services"] if s["name"] == "shop")["sites"]["dc-b"]


def with_dependencies(doc: dict) -> dict:
    """shop-web-b2 waits for shop-web-b1 inside group 2."""
    vms = shop_at_b(doc)["vms"]
    next(vm for vm in vms if vm["name"] == "shop-web-b2")["after"] = ["shop-web-b1"]
    return doc


def problems_of(doc: dict) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        parse_config(doc, "sites.yaml")
    return [f"{path}: {msg}" for path, msg in refused.value.problems]


def request(**extra):
    return {"action": "failover", "from": "dc-a", "to": "dc-b", "reason": "dc-a lost power", **extra}


def probe_with(outcome_of):
    async def runner(check):
        return outcome_of(check)

    return lambda checks, round_id: run_round(checks, runner, vantage="workflow", round_id=round_id)


def as_json(state: WorkflowState) -> WorkflowState:
    return WorkflowState.model_validate(state.dump())


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def standby():
    names = ["shop-db-b", "transit-db-b", "radio-stream-b", "shop-web-b1", "shop-web-b2", "transit-app-b"]
    return FakeInventory({vm: "poweredOff" for vm in names})


def test_a_dependency_on_an_unknown_vm_or_one_of_another_group_is_a_config_error_naming_its_path():
    doc = demo_doc()
    vms = shop_at_b(doc)["vms"]
    vms[1]["after"] = ["shop-web-b9"]
    vms[2]["after"] = ["shop-db-b"]
    found = problems_of(doc)
    assert "services[0].sites.dc-b.vms[1].after: unknown VM 'shop-web-b9' at site dc-b" in found
    assert any(
        p.startswith("services[0].sites.dc-b.vms[2].after: 'shop-db-b' is in group 1, not in group 2") for p in found
    )


def test_a_dependency_cycle_is_a_config_error_that_shows_the_cycle():
    doc = with_dependencies(demo_doc())
    next(vm for vm in shop_at_b(doc)["vms"] if vm["name"] == "shop-web-b1")["after"] = ["shop-web-b2"]
    assert any("after: dependency cycle shop-web-b1 -> shop-web-b2 -> shop-web-b1" in p for p in problems_of(doc))


def test_a_hook_must_be_either_http_or_lambda_and_storage_must_name_a_site_check():
    doc = demo_doc()
    doc["sites"][1]["groups"] = [{"group": 1, "pre_power_on": [{"name": "both", "url": "http://x/", "function": "f"}]}]
    doc["sites"][1]["storage"] = {"check": "san-mirror", "max_lag_s": 30}
    found = "\n".join(problems_of(doc))
    assert "sites[1].groups[0].pre_power_on[0]: a hook has exactly one of url (HTTP) or function (Lambda)" in found
    assert "sites[1].storage.check: 'san-mirror' is not a check of site dc-b" in found


def test_hooks_one_step_runs_back_to_back_must_fit_in_the_step_lambda_and_the_error_names_the_field():
    # Given the promote hook (60 s) and a VM pre hook (10 s): both run in the first StartGroup call at dc-b
    doc = with_storage(demo_doc(), promote=True)
    doc["sites"][1]["storage"]["promote_hook"]["timeout_s"] = 60
    shop_at_b(doc)["vms"][0]["pre_power_on"] = [{"name": "db-fence", "url": "http://127.0.0.1:1/f", "timeout_s": 10}]

    found = problems_of(doc)

    # Then the config is refused, naming the longest hook's field, the step, the group and the sum
    (problem,) = [p for p in found if "step Lambda" in p]
    assert problem.startswith(
        "sites[1].storage.promote_hook.timeout_s: the hooks one StartGroup step runs for group 1 at dc-b "
        "may take 70 s together (promote-lun 60 s, db-fence 10 s), more than the 45 s a step Lambda (60 s"
    )


def test_hooks_within_the_step_budget_are_accepted():
    doc = with_storage(demo_doc(), promote=True)
    doc["sites"][1]["storage"]["promote_hook"]["timeout_s"] = 30
    shop_at_b(doc)["vms"][0]["post_power_on"] = [{"name": "replay", "url": "http://127.0.0.1:1/r", "timeout_s": 15}]
    assert parse_config(doc).site("dc-b").storage.promote_hook.timeout_s == 30


def test_inside_a_group_a_vm_powers_on_only_once_its_dependencies_are_up(clock, standby):
    config = parse_config(with_dependencies(demo_doc()))
    state = steps.validate_request(request(), config, clock)
    state.progress.group = 1  # group 1 is up
    state = as_json(steps.start_group(state, standby, clock=clock))
    assert standby.power_on_calls == [["radio-stream-b", "shop-web-b1"]]
    assert "waiting for their dependencies: shop-web-b2" in state.timeline[-1].detail
    state = as_json(steps.check_group(state, standby, clock))
    assert standby.power_on_calls[-1] == ["shop-web-b2"]
    assert not state.progress.group_ready
    state = as_json(steps.check_group(state, standby, clock))
    assert state.progress.group == 2 and state.progress.powered_on == ["radio-stream-b", "shop-web-b1", "shop-web-b2"]


def test_a_vm_that_runs_without_a_tools_heartbeat_or_an_ip_is_not_up_and_the_timeout_says_so(clock, standby):
    config = parse_config(demo_doc())
    standby.no_guest = {"transit-db-b"}
    state = steps.start_group(steps.validate_request(request(), config, clock), standby, clock=clock)
    state = steps.check_group(state, standby, clock)
    assert state.progress.ready == ["shop-db-b"]
    clock.now += timedelta(seconds=config.workflow.group_timeout_s + 1)
    with pytest.raises(GroupTimeout, match=r"transit-db-b \(on, no VMware Tools heartbeat and no IP yet\)"):
        steps.check_group(state, standby, clock)


def test_an_appliance_marked_power_only_is_up_as_soon_as_it_runs(clock, standby):
    doc = demo_doc()
    next(vm for vm in shop_at_b(doc)["vms"] if vm["name"] == "shop-db-b")["ready"] = "power"
    standby.no_guest = {"shop-db-b"}
    state = steps.validate_request(request(), parse_config(doc), clock)
    state = steps.check_group(steps.start_group(state, standby, clock=clock), standby, clock)
    assert state.progress.group == 1


def test_a_group_is_up_only_when_the_checks_of_the_services_it_completes_pass(clock, standby):
    config = parse_config(demo_doc())
    failing = {"shop-home"}
    probe = probe_with(lambda check: Outcome(check.name not in failing, "status 503"))
    state = steps.validate_request(request(), config, clock)
    state.progress.group = 1
    state = steps.start_group(state, standby, clock=clock)
    state = steps.check_group(state, standby, clock, config=config, probe=probe)
    assert state.progress.group == 1, "shop's check fails: group 2, which completes shop, is not up"
    clock.now += timedelta(seconds=config.workflow.group_timeout_s + 1)
    with pytest.raises(GroupTimeout, match="service checks failing: shop/shop-home: status 503"):
        steps.check_group(state, standby, clock, config=config, probe=probe)
    failing.clear()
    clock.now -= timedelta(seconds=config.workflow.group_timeout_s)
    state = steps.check_group(state, standby, clock, config=config, probe=probe)
    assert state.progress.group == 2
    assert "checks of shop, radio pass" in state.timeline[-1].detail


def hooked(on_failure: str = "stop") -> dict:
    doc = demo_doc()
    hook = {"url": "http://127.0.0.1:1/h", "timeout_s": 1, "on_failure": on_failure}
    doc["sites"][1]["groups"] = [
        {"group": 1, "pre_power_on": [{**hook, "name": "open-firewall"}], "post_power_on": [{**hook, "name": "warm"}]}
    ]
    shop_at_b(doc)["vms"][0]["post_power_on"] = [{**hook, "name": "db-replay"}]
    return doc


def test_hooks_run_before_and_after_power_on_once_each_and_land_in_the_timeline(clock, standby):
    hooks, once = FakeHooks(), FakeOnce()
    standby.instant = False  # the power-on tasks still run when StartGroup is retried
    validated = steps.validate_request(request(), parse_config(hooked()), clock)
    first = steps.start_group(as_json(validated), standby, clock=clock, hooks=hooks, once=once)
    retried = steps.start_group(as_json(validated), standby, clock=clock, hooks=hooks, once=once)
    assert standby.power_on_calls == [["shop-db-b", "transit-db-b"]], "the retried StartGroup powered nothing on again"
    assert retried.progress.tasks == first.progress.tasks, "and carries the first attempt's tasks"
    for task in list(standby.tasks):
        standby.finish(task)
    state = steps.check_group(as_json(first), standby, clock, hooks=hooks, once=once)
    assert [name for name, _ in hooks.calls] == ["open-firewall", "db-replay", "warm"]
    assert hooks.calls[1][1]["vm"] == "shop-db-b"
    assert [e.detail for e in state.timeline if e.step == "Hook"][0].startswith("pre-power-on hook open-firewall")


def test_a_failing_stop_hook_stops_the_workflow_and_a_continue_hook_asks_for_action_at_the_end(clock, standby):
    config = parse_config(hooked("stop"))
    state = steps.validate_request(request(), config, clock)
    with pytest.raises(HookFailed, match="pre-power-on hook open-firewall .*timeout after 1 s; stopping"):
        steps.start_group(state, standby, clock=clock, hooks=FakeHooks({"open-firewall": "timeout after 1 s"}))
    assert standby.power_on_calls == [], "nothing powered on after a failed pre hook"

    state = steps.validate_request(request(), parse_config(hooked("continue")), clock)
    hooks = FakeHooks({"warm": "status 500, expected 200"})
    state = steps.check_group(steps.start_group(state, standby, clock=clock, hooks=hooks), standby, clock, hooks=hooks)
    assert state.progress.group == 1
    subject, body = messages.success_message(state, clock)
    assert subject.startswith("[dcwatch] ACTION NEEDED: FAILOVER DONE dc-a -> dc-b, but 1 hook(s) failed")
    assert "post-power-on hook warm (group 1): status 500, expected 200" in body


def with_storage(doc: dict, promote: bool = False) -> dict:
    doc["sites"][1]["checks"] = [{"name": "san-mirror", "url": "http://127.0.0.1:1/mirror", "conditions": []}]
    doc["sites"][1]["storage"] = {"check": "san-mirror", "max_lag_s": 30}
    if promote:
        doc["sites"][1]["storage"]["promote_hook"] = {"name": "promote-lun", "function": "san-promote"}
    return doc


LAGGING = probe_with(lambda check: Outcome(False, "[BODY].mirror.lag_seconds <= 30: got 900"))


def test_a_standby_mirror_beyond_the_data_loss_window_refuses_the_failover_unless_forced(clock):
    config = parse_config(with_storage(demo_doc()))
    seen = []
    probe = probe_with(lambda check: seen.append(check.spec.conditions) or Outcome(False, "... got 900"))
    with pytest.raises(StorageNotSafe, match="got 900; the allowed data-loss window is 30 s. Nothing was changed"):
        steps.check_storage(steps.validate_request(request(), config, clock), config, probe, clock)
    assert seen == [["[BODY].mirror.lag_seconds <= 30"]]
    forced = steps.check_storage(steps.validate_request(request(force=True), config, clock), config, LAGGING, clock)
    assert "promoted anyway as the request forced it: data may be lost" in forced.storage
    dry = steps.check_storage(steps.validate_request(request(dryRun=True), config, clock), config, LAGGING)
    assert "a failover would be refused" in dry.storage


def test_the_promote_hook_runs_once_after_fencing_before_the_first_vm_boots(clock, standby):
    config = parse_config(with_storage(demo_doc(), promote=True))
    hooks, once = FakeHooks(), FakeOnce()
    state = steps.check_storage(
        steps.validate_request(request(), config, clock), config, probe_with(lambda c: Outcome(True))
    )
    assert hooks.calls == [], "checking promotes nothing"
    state = as_json(steps.start_group(state, standby, clock=clock, hooks=hooks, once=once))
    steps.start_group(
        state.model_copy(update={"progress": state.progress.model_copy(update={"promoted": False})}),
        standby,
        clock=clock,
        hooks=hooks,
        once=once,
    )
    assert [(name, p["when"]) for name, p in hooks.calls] == [("promote-lun", "promote")]


def test_a_retried_notify_sends_one_notification_and_a_retried_dns_switch_one_change(clock):
    notifier, dns, once = FakeNotifier(), FakeDns(), FakeOnce()
    state = steps.validate_request(request(), parse_config(demo_doc()), clock)
    for _ in range(2):
        steps.switch_dns(as_json(state), dns, 60, clock, once=once)
        steps.notify(as_json(state), notifier, clock, once=once)
    assert len(dns.upserts) == 1 and len(notifier.sent) == 1
    again = steps.validate_request(request(), parse_config(demo_doc()), clock)
    steps.notify(again, notifier, clock, once=once)
    assert len(notifier.sent) == 2, "a new execution of the same incident acts again"


def test_dns_is_done_only_when_the_answers_are_the_standbys(clock):
    dns = FakeDns()
    state = steps.switch_dns(steps.validate_request(request(), parse_config(demo_doc()), clock), dns, 60, clock)
    dns.records["shop.hosting.example."] = ("127.0.10.1",)  # a stale answer
    assert not steps.check_dns(state, dns, clock).progress.dns_in_sync
    dns.records["shop.hosting.example."] = ("127.0.20.1",)
    state = steps.check_dns(state, dns, clock)
    assert (
        state.progress.dns_in_sync and "verified: shop.hosting.example. answers 127.0.20.1" in state.timeline[-1].detail
    )


def test_lowering_the_ttl_keeps_the_values_and_says_when_old_answers_expire(clock):
    doc = demo_doc()
    for service in doc["services"]:
        service["dns"]["ttl"] = 300
    dns = FakeDns()
    dns.upsert([RecordValues("hosting.example.", "shop.hosting.example.", "A", 300, ("127.0.10.1",))])
    state = steps.lower_ttl(steps.validate_request(request(), parse_config(doc), clock), dns, 30, clock)
    (lowered,) = [r for r in dns.upserts[1] if r.name == "shop.hosting.example."]
    assert (lowered.ttl, lowered.values) == (30, ("127.0.10.1",))
    assert state.progress.ttl_expires_at == T0 + timedelta(seconds=300)


def test_every_step_of_the_timeline_has_its_start_end_and_duration_in_the_audit_record(clock, standby):
    store = FakeStore()
    state = steps.validate_request(request(incidentId="manual-inc-1"), parse_config(demo_doc()), clock)
    state = steps.start_group(state, standby, clock=clock)
    clock.now += timedelta(seconds=7)
    state = steps.check_group(state, standby, clock)
    steps.record_audit(state, store, clock)
    entry = next(e for e in store.audits["manual-inc-1"][0]["timeline"] if e["step"] == "CheckGroup")
    assert (entry["started"], entry["duration_s"]) == (T0.isoformat().replace("+00:00", "Z"), 7.0)


def migrating(config, clock, **extra):
    raw = {"mode": "migration", "from": "dc-a", "to": "dc-b", "reason": "planned move", **extra}
    return steps.validate_request(raw, config, clock, active_site="dc-a")


def test_a_migration_promotes_only_a_mirror_that_caught_up_after_the_shutdown_and_force_changes_nothing(clock):
    # Given a mirror 2 s behind: inside the window, so CheckStorage let the migration shut dc-a down
    config = parse_config(with_storage(demo_doc()))
    seen = []
    behind = probe_with(lambda check: seen.append(check.spec.conditions) or Outcome(False, "... == 0: got 2"))

    # When the mirror is checked with dc-a off, then the standby is not promoted, forced or not
    for extra in ({}, {"force": True}):
        with pytest.raises(MirrorNotCaughtUp, match="has not caught up after dc-a was shut down: .* got 2. A planned"):
            steps.check_mirror_synced(migrating(config, clock, **extra), config, behind, clock)
    assert seen[0] == ["[BODY].mirror.lag_seconds == 0"]

    # And once it shows lag 0 the migration goes on, saying so
    state = steps.check_mirror_synced(migrating(config, clock), config, probe_with(lambda c: Outcome(True)), clock)
    assert state.storage == "storage mirror san-mirror at dc-b in sync, caught up (lag 0) after dc-a was shut down"
