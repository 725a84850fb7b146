"""Every recovery mode end to end: the same ASL in Step Functions (moto), the real handlers, two vcsims,
Route 53, the CLI answering the approval gate, a loopback server for the hooks.

One pipeline for the module; the tests run in order, as an operator would: bad inputs and dry runs
first, then drills (on clones of the standby, on an isolated network), a planned migration to `south`, and the
failback to `north` behind its approval.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlparse

import pytest
import yaml
from pyVmomi import vim

from dcwatch.adapters.vsphere import vcenter_session
from dcwatch.local.pipeline import LocalPipeline
from dcwatch.local.schedule import DrillSchedule
from dcwatch.local.services import wait_until
from dcwatch.model import AutomationSwitch
from dcwatch.recovery import scheduled
from tests.configs import write_pair_config
from tests.helpers import answer_by_cli, approval_request, load_event, site_power
from tests.hook_server import HookServer

pytestmark = pytest.mark.integration

DRILL_RECORD = "drill-webshop.example.test."
DRILL_ADDRESS = "127.0.33.1"  # the drill network, where the clones answer
DRILL_NETWORK = "drill-isolated"
APPROVAL_TIMEOUT_S = 4
RECORD_TTL_S = 3
POWERED_ON: list[tuple[str, str]] = []
_lock = threading.Lock()


def _powered(site: str, vm: str) -> None:
    with _lock:
        POWERED_ON.append((site, vm))


@pytest.fixture(scope="module")
def hooks() -> Iterator[HookServer]:
    server = HookServer().start()
    server.answers["present-snapshot"] = {"datastore": "LocalDS_0"}
    yield server
    server.stop()


def hook(server: HookServer, name: str, **extra) -> dict:
    return {"name": name, "url": server.url(f"/hook/{name}"), "timeout_s": 5, **extra}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, hooks) -> Iterator[LocalPipeline]:
    path = write_pair_config(tmp_path_factory.mktemp("modes"), name="modes")
    doc = yaml.safe_load(path.read_text())
    webshop_port = urlparse(doc["services"][0]["sites"]["south"]["checks"][0]["url"]).port
    check = {"name": "webshop-up", "url": f"http://{DRILL_ADDRESS}:{webshop_port}/", "body_contains": "OK"}
    doc["drill"] = {
        "services": [
            {
                "name": "webshop",
                "dns": {"zone": "example.test.", "name": DRILL_RECORD, "ttl": 10},
                "dns_values": [DRILL_ADDRESS],
                "checks": [check | {"timeout_s": 0.5}],
            }
        ],
        "network": DRILL_NETWORK,
        "schedule": {"expression": "rate(1 minute)", "reason": "drill of the modes suite's schedule"},
        "snapshot_hook": hook(hooks, "present-snapshot", modes=["drill"]),
        "snapshot_cleanup_hook": hook(hooks, "remove-snapshot", modes=["drill"]),
    }
    # At the standby: the production load balancer's hook (never in a drill), and a drill-only gate on group 2.
    doc["sites"][1]["groups"] = [
        {"group": 1, "post_power_on": [hook(hooks, "open-lb")]},
        {"group": 2, "pre_power_on": [hook(hooks, "drill-gate", modes=["drill"])]},
    ]
    doc["workflow"] |= {"shutdown_timeout_s": 10, "approval": {"modes": ["failback"], "timeout_s": APPROVAL_TIMEOUT_S}}
    for service in doc["services"]:
        service["dns"]["ttl"] = RECORD_TTL_S  # short, so that waiting out the old TTL stays short
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with LocalPipeline(path, on_power_on=_powered) as running:
        yield running


def request(mode: str, **overrides):
    sites = {"from": "south", "to": "north"} if mode == "failback" else {"from": "north", "to": "south"}
    return {"mode": mode, **sites, "reason": f"{mode} of the modes suite", **overrides}


def states_entered(pipeline: LocalPipeline, arn: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in pipeline.history(arn) if e["type"].endswith("StateEntered")]


def new_notifications(pipeline: LocalPipeline, before: int, count: int = 1) -> list[dict]:
    assert wait_until(lambda: len(pipeline.notifications) >= before + count, 10), "notification did not arrive"
    return pipeline.notifications[before:]


def drill_record(pipeline: LocalPipeline) -> list[str]:
    return pipeline.dns.values("example.test.", DRILL_RECORD, "A")


def snapshot(pipeline: LocalPipeline) -> dict:
    """Everything a refused or dry-run request, or a drill once done, must leave as it was: DNS, the active site,
    the lock, and every VM of both vCenters (no clone left) with its power, NICs' networks, notes, datastores."""
    return {
        "dns": pipeline.dns_values(),
        "drill": drill_record(pipeline),
        "north": vm_configs(pipeline, "north"),
        "south": vm_configs(pipeline, "south"),
        "active": pipeline.store.active_site("north"),
        "lock": pipeline.leases.holder(),
    }


def vm_configs(pipeline: LocalPipeline, site: str) -> dict[str, tuple]:
    """Each VM of the site as vCenter holds it: power state, the networks of its NICs, its notes, datastores."""
    with vcenter_session(pipeline.config.site(site).vcenter, pipeline.credentials[site]) as si:
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
        try:
            return {
                vm.name: (
                    vm.runtime.powerState,
                    tuple(sorted(n.name for n in vm.network)),
                    vm.config.annotation,
                    tuple(sorted(d.name for d in vm.datastore)),
                )
                for vm in view.view
            }
        finally:
            view.Destroy()


def record_ttls(pipeline: LocalPipeline) -> dict[str, int]:
    """The TTL Route 53 (moto) holds for each production record."""
    route53 = pipeline.cloud.client("route53")
    (zone,) = route53.list_hosted_zones_by_name(DNSName="example.test.")["HostedZones"][:1]
    sets = route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    return {r["Name"]: r["TTL"] for r in sets if r["Name"] in ("webshop.example.test.", "portal.example.test.")}


def run(pipeline: LocalPipeline, raw: dict, name: str, timeout_s: float = 90) -> tuple[str, dict]:
    arn = pipeline.start_failover(raw, name=name)
    return arn, pipeline.wait_execution(arn, timeout_s=timeout_s)


@pytest.mark.parametrize(
    ("bad", "cause"),
    [
        (request("explode"), "mode: Input should be 'disaster', 'migration', 'drill' or 'failback'"),
        (request("migration", to="west"), "to: unknown site 'west'"),
        (request("drill", to="north"), "from and to are both 'north'"),
        ({k: v for k, v in request("drill").items() if k != "reason"}, "reason: Field required"),
        (
            request("migration", **{"from": "south", "to": "north"}),
            "a migration leaves the active site, which is north",
        ),
        (request("drill", **{"from": "south", "to": "north"}), "north is the active site; a drill never touches"),
        (request("failback"), "a failback leaves the active site, which is north, not south"),
    ],
)
def test_a_bad_request_of_any_mode_fails_at_validation_with_a_readable_cause_and_changes_nothing(pipeline, bad, cause):
    before, notes = snapshot(pipeline), len(pipeline.notifications)
    arn, described = run(pipeline, bad, name=f"bad-{abs(hash(json.dumps(bad, sort_keys=True)))}")
    assert (described["status"], described["error"]) == ("FAILED", "InvalidRequest")
    assert cause in json.loads(described["cause"])["errorMessage"]
    assert states_entered(pipeline, arn) == ["ValidateRequest", "RequestRefused"], "no lock taken, nothing touched"
    assert snapshot(pipeline) == before
    assert len(pipeline.notifications) == notes


@pytest.mark.parametrize("mode", ["migration", "drill"])
def test_a_dry_run_of_a_mode_announces_its_plan_and_changes_nothing(pipeline, mode):
    before, notes = snapshot(pipeline), len(pipeline.notifications)
    arn, described = run(
        pipeline, request(mode, dryRun=True, incidentId=f"manual-dry-{mode}"), name=f"manual-dry-{mode}"
    )
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert snapshot(pipeline) == before
    (note,) = new_notifications(pipeline, notes)
    assert note["Subject"] == "[dcwatch] OK: DRY RUN north -> south, nothing changed; no action needed"
    if mode == "migration":
        assert "shutdown 1: portal-g3-0-north" in note["Message"]
    else:
        assert f"switch {DRILL_RECORD} (A) to {DRILL_ADDRESS}" in note["Message"]
        assert "switch webshop.example.test." not in note["Message"]
    assert not {"ShutdownGroup", "PrepareDrill", "StartGroup"} & set(states_entered(pipeline, arn))


def test_a_drill_proves_clones_on_the_drill_network_then_destroys_them_without_touching_the_standby(pipeline, hooks):
    before, notes = snapshot(pipeline), len(pipeline.notifications)
    POWERED_ON.clear()
    arn, described = run(pipeline, request("drill", incidentId="manual-drill-1"), name="manual-drill-1")
    assert described["status"] == "SUCCEEDED", described.get("cause")

    assert not [vm for _, vm in POWERED_ON if vm in before["south"] or vm in before["north"]], "no standby VM on"
    assert snapshot(pipeline) == before, "no clone left; the standby VMs, production DNS and the lock as before"

    (audit,) = pipeline.store.audit("manual-drill-1")
    assert audit["outcome"] == "drill-passed"
    run_id = audit["drill"]["run"]
    clones = [f"{vm}-drill-{run_id}" for vm in ("webshop-g1-0-south", "webshop-g2-0-south", "webshop-g2-1-south")]
    timeline = {e["step"]: e["detail"] for e in audit["timeline"]}
    assert timeline["CheckClones"] == f"3 clones ready, off, every NIC on {DRILL_NETWORK}: {', '.join(clones)}"
    assert timeline["SwitchDns"] == f"UPSERT {DRILL_RECORD} -> {DRILL_ADDRESS}"
    assert timeline["VerifyServices"] == "1 checks pass at the drill clones at south"
    assert timeline["CleanUpDrill"].startswith("destroyed 3 clones (") and timeline["CleanUpDrill"].endswith(
        f"{DRILL_RECORD} removed"
    )
    assert list(audit["drill"]["measured"]) == [
        "snapshot presented",
        "clones ready",
        "powered on",
        "verified",
        "drill records in sync",
        "cleaned up",
    ]
    assert "open-lb" not in hooks.calls, "a production hook never runs in a drill"
    (gate,) = hooks.payloads["drill-gate"][-1:]
    assert (gate["mode"], gate["when"]) == ("drill", "pre-power-on")
    (snapshot_call,) = hooks.payloads["present-snapshot"][-1:]
    assert snapshot_call["mode"] == "drill" and snapshot_call["run"] == run_id
    assert hooks.payloads["remove-snapshot"][-1]["datastore"] == "LocalDS_0"
    (note,) = new_notifications(pipeline, notes)
    assert note["Subject"].startswith("[dcwatch] OK: DRILL PASSED north -> south, clones proven in")
    assert f"came up on the isolated network {DRILL_NETWORK}" in note["Message"]
    assert not {"Fence", "ShutdownGroup"} & set(states_entered(pipeline, arn))


def test_the_drill_schedule_runs_a_drill_from_the_active_site_and_a_firing_held_back_is_recorded_as_skipped(pipeline):
    schedule = DrillSchedule(pipeline, period_s=1.0)
    before, notes = snapshot(pipeline), len(pipeline.notifications)
    first = schedule.fire()
    assert pipeline.wait_execution(first, timeout_s=90)["status"] == "SUCCEEDED"
    assert snapshot(pipeline) == before, "cleaned up: no clone left, DNS and the lock as before"
    name = first.rsplit(":", 1)[-1]
    (passed,) = pipeline.store.audit(f"manual-{name}")
    assert passed["outcome"] == "drill-passed"
    assert passed["request"] | {"dryRun": None} == passed["request"] | {
        "mode": "drill",
        "trigger": "scheduled",
        "from": "north",
        "to": "south",
        "reason": "drill of the modes suite's schedule",
        "dryRun": None,
    }
    (note,) = new_notifications(pipeline, notes)
    assert note["Subject"].startswith("[dcwatch] OK: DRILL PASSED north -> south")

    store = pipeline.store
    store.set_automation(AutomationSwitch(enabled=False, reason="storage upgrade", changed_by="modes suite"))
    try:
        held_back = schedule.fire()
        described = pipeline.wait_execution(held_back, timeout_s=30)
    finally:
        store.set_automation(AutomationSwitch(enabled=True, reason="done", changed_by="modes suite"))
    assert described["status"] == "SUCCEEDED", "a skipped drill is no failed execution"
    assert states_entered(pipeline, held_back) == ["ValidateRequest", "DrillSkipped", "Skipped"]
    (skipped,) = pipeline.store.audit(f"manual-{held_back.rsplit(':', 1)[-1]}")
    assert skipped["outcome"] == "skipped"
    assert skipped["reason"] == "automation is off by modes suite: storage upgrade"
    (notice,) = new_notifications(pipeline, notes + 1)
    assert (
        notice["Subject"] == "[dcwatch] OK: scheduled drill skipped, automation is off by modes suite: storage upgrade"
    )
    assert snapshot(pipeline) == before, "nothing changed"


def test_a_scheduled_drill_that_finds_the_lock_taken_after_validation_is_skipped_through_the_real_asl(
    pipeline, monkeypatch
):
    """A recovery takes the lock between ValidateRequest's look and AcquireLease: the drill gives way, recorded
    as skipped, and the recovery's lock stays its own."""
    schedule = DrillSchedule(pipeline, period_s=1.0)
    before, notes = snapshot(pipeline), len(pipeline.notifications)
    # ValidateRequest looks before the recovery takes the lock: it sees nothing that holds the drill back.
    monkeypatch.setattr(scheduled.HoldBack, "reasons", lambda self, now: [])
    pipeline.leases.acquire("south-down-race", 900, datetime.now(UTC), "north")
    try:
        drill = schedule.fire()
        described = pipeline.wait_execution(drill, timeout_s=30)
        assert pipeline.leases.holder().owner == "south-down-race", "the recovery's lock stays its own"
    finally:
        pipeline.leases.release("south-down-race")
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert states_entered(pipeline, drill) == ["ValidateRequest", "AcquireLease", "DrillSkipped", "Skipped"]
    (skipped,) = pipeline.store.audit(f"manual-{drill.rsplit(':', 1)[-1]}")
    assert skipped["outcome"] == "skipped"
    assert skipped["reason"].startswith("a recovery holds the failover lock (south-down-race until ")
    (notice,) = new_notifications(pipeline, notes)
    assert notice["Subject"].startswith("[dcwatch] OK: scheduled drill skipped, a recovery holds the failover lock")
    assert snapshot(pipeline) == before, "nothing changed, the lock given back by its holder"


def test_a_drill_killed_mid_way_leaves_clones_that_the_next_drill_removes_first(pipeline):
    before = snapshot(pipeline)
    arn = pipeline.start_failover(request("drill", incidentId="manual-drill-killed"), name="manual-drill-killed")
    assert wait_until(lambda: "StartGroup" in states_entered(pipeline, arn), 60), "the clones were not made"
    sfn = pipeline.cloud.client("stepfunctions")
    sfn.stop_execution(executionArn=arn, error="Killed", cause="operator")
    # EventBridge delivers the status change to ExecutionEnded (moto emits none: the test delivers it), which
    # gives the stopped drill's lock back.
    stopped = sfn.describe_execution(executionArn=arn)
    event = load_event("samples/StepFunctionsExecutionStatusChange.json")
    event["detail"] |= {
        "executionArn": arn,
        "stateMachineArn": stopped["stateMachineArn"],
        "name": stopped["name"],
        "input": stopped["input"],
        "status": "ABORTED",
    }
    pipeline.invoke("ExecutionEnded", event)
    assert pipeline.leases.holder() is None, "the stopped drill's lock was given back"
    left = sorted(vm for vm in vm_configs(pipeline, "south") if "-drill-" in vm)
    assert left, "a killed drill leaves its clones"

    _, described = run(pipeline, request("drill", incidentId="manual-drill-after"), name="manual-drill-after")

    assert described["status"] == "SUCCEEDED", described.get("cause")
    (audit,) = pipeline.store.audit("manual-drill-after")
    assert sorted(audit["drill"]["leftovers"]) == left
    assert snapshot(pipeline) == before, "the leftovers and its own clones are gone"


def test_a_drill_that_fails_mid_way_destroys_its_clones_first_and_says_so(pipeline, hooks):
    before, notes = snapshot(pipeline), len(pipeline.notifications)
    hooks.behaviour["drill-gate"] = "fail"  # group 2 of the drill may not start: its clones of group 1 are up
    try:
        arn, described = run(pipeline, request("drill", incidentId="manual-drill-2"), name="manual-drill-2")
    finally:
        hooks.behaviour.pop("drill-gate")
    assert described["status"] == "FAILED"
    assert snapshot(pipeline) == before, "cleanup destroyed the clones and left the drill record as it was"
    steps = states_entered(pipeline, arn)
    assert steps.index("CleanUpDrillAfterFailure") < steps.index("NotifyFailure") < steps.index("Failed")
    (note,) = new_notifications(pipeline, notes)
    assert (
        note["Subject"] == "[dcwatch] ACTION NEEDED: DRILL FAILED at StartGroup, production untouched, drill cleaned up"
    )
    assert "pre-power-on hook drill-gate" in note["Message"] and "Cleanup: destroyed 3 clones" in note["Message"]
    assert [r["outcome"] for r in pipeline.store.audit("manual-drill-2")] == ["failed"]


def test_a_planned_migration_shuts_the_active_site_down_last_group_first_then_serves_from_the_other(pipeline):
    notes = len(pipeline.notifications)
    raw = request("migration", incidentId="manual-move-1", lowerTtlSeconds=1)
    arn, described = run(pipeline, raw, name="manual-move-1", timeout_s=120)
    assert described["status"] == "SUCCEEDED", described.get("cause")

    assert set(site_power(pipeline, "north").values()) == {"poweredOff"}
    assert set(site_power(pipeline, "south").values()) == {"poweredOn"}
    assert pipeline.dns_values() == {"webshop.example.test.": ["127.0.32.1"], "portal.example.test.": ["127.0.32.1"]}
    assert pipeline.store.active_site("north") == "south"

    (audit,) = pipeline.store.audit("manual-move-1")
    off = [e["detail"] for e in audit["timeline"] if e["step"] == "CheckShutdown"]
    assert [re.findall(r"(\S+-north) \(", line) for line in off] == [
        ["portal-g3-0-north"],
        ["portal-g2-0-north", "webshop-g2-0-north", "webshop-g2-1-north"],
        ["webshop-g1-0-north"],
    ]
    # vcsim has no VMware Tools: govmomi 0.24 powers the guest off on ShutdownGuest, newer ones refuse.
    assert set(audit["shutdown"].values()) <= {
        "guest shutdown",
        "powered off: guest shutdown refused (VMware Tools not running)",
    }
    steps = states_entered(pipeline, arn)
    assert "Fence" not in steps
    assert max(i for i, s in enumerate(steps) if s == "CheckShutdown") < steps.index("StartGroup")

    # The TTL was lowered first, its old value waited out before the shutdown, and the switch restored it
    assert steps.index("LowerTtl") < steps.index("WaitForTtl") < steps.index("ShutdownGroup")
    (lowered,) = [e["detail"] for e in audit["timeline"] if e["step"] == "LowerTtl"]
    assert lowered.startswith("TTL of webshop.example.test., portal.example.test. lowered to 1 s")
    assert lowered.endswith(f"waiting {RECORD_TTL_S} s before the shutdown")
    output = json.loads(described["output"])
    assert output["progress"]["ttlChanges"], "kept apart from the switch's dnsChanges (moto gives both one change id)"
    assert record_ttls(pipeline) == {"webshop.example.test.": RECORD_TTL_S, "portal.example.test.": RECORD_TTL_S}
    note = new_notifications(pipeline, notes)[-1]
    assert (
        note["Subject"]
        == "[dcwatch] OK: PLANNED MIGRATION DONE north -> south, services run at south; no action needed"
    )
    assert "Shut down at north: portal-g3-0-north:" in note["Message"]


def test_an_automatic_failback_is_refused(pipeline):
    before = snapshot(pipeline)
    arn, described = run(pipeline, request("failback", trigger="automatic"), name="auto-back")
    assert described["error"] == "InvalidRequest"
    assert "a failback is only ever started by hand" in json.loads(described["cause"])["errorMessage"]
    assert snapshot(pipeline) == before


def test_a_failback_to_a_site_the_evaluator_still_records_down_is_refused_with_the_reason(pipeline):
    # Given the evaluator's record says north is DOWN (written as the evaluator writes a change)
    store = pipeline.store
    up = store.condition("site/north", "UP")
    assert store.change_condition("site/north", up, replace(up, status="DOWN", version=up.version + 1))
    try:
        before = snapshot(pipeline)
        arn, described = run(pipeline, request("failback", incidentId="manual-back-early"), name="manual-back-early")
        # Then the failback fails at validation, naming the site and what to wait for, and changes nothing
        assert (described["status"], described["error"]) == ("FAILED", "InvalidRequest")
        assert "to: north is DOWN by the evaluator's record" in json.loads(described["cause"])["errorMessage"]
        assert states_entered(pipeline, arn) == ["ValidateRequest", "RequestRefused"] and snapshot(pipeline) == before
    finally:
        down = store.condition("site/north", "UP")
        store.change_condition("site/north", down, replace(down, status="UP", version=down.version + 1))


def approval_token(pipeline: LocalPipeline, before: int) -> str:
    note, token = approval_request(pipeline, before)
    assert note["Subject"] == "[dcwatch] APPROVAL NEEDED: failback south -> north"
    return token


answer = answer_by_cli


def test_a_denied_failback_stops_before_anything_changes(pipeline, capsys):
    before, notes = snapshot(pipeline), len(pipeline.notifications)
    arn = pipeline.start_failover(request("failback", incidentId="manual-back-denied"), name="manual-back-denied")
    token = approval_token(pipeline, notes)
    assert answer(pipeline, "deny", token, "not tonight", "bob") == 0
    denial = pipeline.store.audit("approval")[-1]
    assert (denial["approved"], denial["by"], denial["reason"]) == (False, "bob", "not tonight")
    assert token not in json.dumps(denial), "the token is audited by its fingerprint only"
    described = pipeline.wait_execution(arn)
    assert described["status"] == "FAILED"
    assert {**snapshot(pipeline), "lock": None} == before
    note = new_notifications(pipeline, notes, 2)[-1]
    assert note["Subject"] == "[dcwatch] OK: NOT APPROVED failback south -> north, nothing was changed"
    assert "denied by bob: not tonight" in note["Message"]
    assert pipeline.leases.holder() is None


def test_an_unanswered_failback_times_out_cleanly_and_its_token_is_refused_afterwards(pipeline, capsys):
    before, notes = snapshot(pipeline), len(pipeline.notifications)
    arn = pipeline.start_failover(request("failback", incidentId="manual-back-late"), name="manual-back-late")
    token = approval_token(pipeline, notes)
    described = pipeline.wait_execution(arn, timeout_s=APPROVAL_TIMEOUT_S + 30)
    assert described["status"] == "FAILED"
    assert snapshot(pipeline) == before
    note = new_notifications(pipeline, notes, 2)[-1]
    assert note["Subject"] == "[dcwatch] OK: NOT APPROVED failback south -> north, nothing was changed"
    assert f"not approved: no answer within {APPROVAL_TIMEOUT_S} s" in note["Message"]
    assert "States.Timeout" in json.dumps(pipeline.store.audit("manual-back-late")[0]["error"])
    capsys.readouterr()
    audited = len(pipeline.store.audit("approval"))
    assert answer(pipeline, "approve", token, "too late", "alice") == 1
    assert "no workflow waits for this token" in capsys.readouterr().err
    assert len(pipeline.store.audit("approval")) == audited, "an answer that reached no workflow is not recorded"


def test_an_approved_failback_returns_to_the_original_site_in_the_planned_manner(pipeline):
    notes = len(pipeline.notifications)
    arn = pipeline.start_failover(request("failback", incidentId="manual-back-1"), name="manual-back-1")
    token = approval_token(pipeline, notes)
    assert answer(pipeline, "approve", token, "north repaired, CHG-7", "alice") == 0
    described = pipeline.wait_execution(arn, timeout_s=120)
    assert described["status"] == "SUCCEEDED", described.get("cause")

    assert set(site_power(pipeline, "north").values()) == {"poweredOn"}
    assert set(site_power(pipeline, "south").values()) == {"poweredOff"}, "south was shut down, not left running"
    assert pipeline.dns_values() == {"webshop.example.test.": ["127.0.31.1"], "portal.example.test.": ["127.0.31.1"]}
    assert pipeline.store.active_site("north") == "north"
    (audit,) = pipeline.store.audit("manual-back-1")
    assert audit["approval"]["by"] == "alice" and audit["mode"] == "failback"
    steps = states_entered(pipeline, arn)
    assert steps.index("RequestApproval") < steps.index("Approved") < steps.index("ShutdownGroup")
    assert "Fence" not in steps
    note = new_notifications(pipeline, notes, 2)[-1]
    assert note["Subject"] == "[dcwatch] OK: FAILBACK DONE south -> north, services run at north; no action needed"
