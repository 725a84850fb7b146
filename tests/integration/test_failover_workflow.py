"""The failover workflow as Step Functions (moto) runs it: same ASL, real handlers, vcsim, Route 53.

One pipeline per test module (two vcsims, moto, demo services) built from a config whose names,
counts and groups differ from the demo's.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pyVmomi import vim

from dcwatch.adapters.vsphere import vcenter_session
from dcwatch.cli import main
from dcwatch.local.pipeline import LocalPipeline
from dcwatch.local.services import wait_until
from tests.configs import write_pair_config
from tests.helpers import site_power

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Iterator[LocalPipeline]:
    path = write_pair_config(tmp_path_factory.mktemp("wf"), name="wf")
    with LocalPipeline(path) as running:
        yield running


def test_each_vantage_points_probe_runs_in_a_process_of_its_own(pipeline: LocalPipeline):
    """As each is its own Lambda function: its rounds share no interpreter with the evaluator or the workflow,
    and a cold start (new resources) gives it a fresh environment there."""
    processes = {pipeline.lambdas.process_id(name) for name in pipeline.probes.values()}

    assert os.getpid() not in processes
    assert len(processes) == len(pipeline.probes)
    pipeline.lambdas.cold_start()
    for vantage, (payload, error) in pipeline.probe("round-own-process").items():
        assert error is None, f"{vantage}: {payload}"
        assert [r["checks"] for r in payload["rounds"]], f"{vantage} probed nothing"


def request(**overrides):
    return {"action": "failover", "from": "north", "to": "south", "reason": "drill of the workflow", **overrides}


def task_states_entered(pipeline: LocalPipeline, arn: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in pipeline.history(arn) if e["type"] == "TaskStateEntered"]


def standby_power(pipeline: LocalPipeline) -> dict[str, str]:
    return site_power(pipeline, "south")


def notifications_after(pipeline: LocalPipeline, count: int) -> list[dict]:
    assert wait_until(lambda: len(pipeline.notifications) >= count, 10), "notification did not arrive"
    return pipeline.notifications


@pytest.mark.parametrize(
    ("bad", "cause"),
    [
        (request(to="west"), "to: unknown site 'west'"),
        (request(to="north"), "from and to are both 'north'"),
        (request(action="explode"), "action"),
        ({k: v for k, v in request().items() if k != "reason"}, "reason: Field required"),
    ],
)
def test_a_bad_manual_trigger_fails_the_first_state_with_a_readable_cause_and_changes_nothing(pipeline, bad, cause):
    dns_before, notes_before = pipeline.dns_values(), len(pipeline.notifications)
    arn = pipeline.start_failover(bad, name=f"bad-{abs(hash(json.dumps(bad, sort_keys=True)))}")
    described = pipeline.wait_execution(arn)
    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidRequest"
    assert cause in json.loads(described["cause"])["errorMessage"]
    assert task_states_entered(pipeline, arn) == ["ValidateRequest"]
    assert pipeline.dns_values() == dns_before
    assert set(standby_power(pipeline).values()) == {"poweredOff"}
    assert len(pipeline.notifications) == notes_before


def test_a_bad_request_gives_back_the_lock_taken_for_its_execution_and_leaves_anyone_elses(pipeline):
    # Given the lock taken for the execution before its start, as the evaluator and the CLI do
    bad = request(to="west")
    pipeline.leases.acquire("bad-locked-1", 900, datetime.now(UTC))

    # When the request fails validation
    arn = pipeline.start_failover(bad, name="bad-locked-1")
    described = pipeline.wait_execution(arn)

    # Then it fails at the first state with its cause, and the lock is free again at once
    assert (described["status"], described["error"]) == ("FAILED", "InvalidRequest")
    assert "to: unknown site 'west'" in json.loads(described["cause"])["errorMessage"]
    assert task_states_entered(pipeline, arn) == ["ValidateRequest"]
    assert pipeline.leases.holder() is None

    # And a bad request never releases a lock another execution holds
    held = pipeline.leases.acquire("north-down-20261125T040000Z", 120, datetime.now(UTC))
    try:
        arn = pipeline.start_failover(bad, name="bad-locked-2")
        assert pipeline.wait_execution(arn)["error"] == "InvalidRequest"
        assert pipeline.leases.holder() == held
    finally:
        pipeline.leases.release(held.owner)


def test_two_executions_of_the_same_request_without_incident_id_never_both_act(pipeline):
    # Given the same console request twice (no incidentId: each its own), the lock taken for the first
    same = request(dryRun=True)
    pipeline.leases.acquire("console-1", 120, datetime.now(UTC))
    try:
        # When the second execution starts, then it stops at the lock and touches nothing
        second = pipeline.start_failover(same, name="console-2")
        assert pipeline.wait_execution(second)["status"] == "FAILED"
        assert task_states_entered(pipeline, second)[:3] == ["ValidateRequest", "AcquireLease", "NotifyFailure"]
        assert pipeline.leases.holder().owner == "console-1", "the refused one released nothing"

        # And the first, whose name owns the lock, runs to the end
        first = pipeline.start_failover(same, name="console-1")
        described = pipeline.wait_execution(first)
        assert described["status"] == "SUCCEEDED", described.get("cause")
        output = json.loads(described["output"])
        assert output["leaseOwner"] == "console-1"
        assert any(e["detail"].startswith("lock held by console-1") for e in output["timeline"])
        assert pipeline.leases.holder() is None
    finally:
        pipeline.leases.release("console-1")


def test_a_dry_run_announces_the_plan_and_changes_nothing(pipeline):
    dns_before, notes_before = pipeline.dns_values(), len(pipeline.notifications)
    arn = pipeline.start_failover(request(dryRun=True, incidentId="manual-dry-1"), name="manual-dry-1")
    assert pipeline.wait_execution(arn)["status"] == "SUCCEEDED"
    assert "StartGroup" not in task_states_entered(pipeline, arn)
    assert pipeline.dns_values() == dns_before
    assert set(standby_power(pipeline).values()) == {"poweredOff"}
    note = notifications_after(pipeline, notes_before + 1)[-1]
    assert note["Subject"].startswith("[dcwatch] OK: DRY RUN north -> south")
    assert "group 1: webshop-g1-0-south" in note["Message"]
    assert pipeline.store.active_site("north") == "north"
    assert [r["outcome"] for r in pipeline.store.audit("manual-dry-1")] == ["dry-run"]


def test_a_missing_standby_vm_stops_the_workflow_and_the_alert_names_the_step_and_cause(pipeline):
    site = pipeline.config.site("south")
    with vcenter_session(site.vcenter, pipeline.credentials["south"]) as si:
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
        vm = next(v for v in view.view if v.name == "portal-g3-0-south")
        view.Destroy()
        vm.Rename_Task("portal-renamed")
        try:
            notes_before = len(pipeline.notifications)
            arn = pipeline.start_failover(request(incidentId="manual-broken-1"), name="manual-broken-1")
            described = pipeline.wait_execution(arn)
        finally:
            vm.Rename_Task("portal-g3-0-south")
    assert described["status"] == "FAILED"
    note = notifications_after(pipeline, notes_before + 1)[-1]
    assert note["Subject"].startswith("[dcwatch] ACTION NEEDED: failover north -> south failed at CheckStandby")
    assert "portal-g3-0-south" in note["Message"]
    assert set(standby_power(pipeline).values()) == {"poweredOff"}, "nothing was powered on"
    assert [r["outcome"] for r in pipeline.store.audit("manual-broken-1")] == ["failed"]
    assert task_states_entered(pipeline, arn)[-2:] == ["NotifyFailure", "ReleaseLeaseAfterFailure"]
    assert pipeline.leases.holder() is None, "the lock is given back after a failure too"


def test_a_failover_started_while_another_holds_the_lock_stops_at_once_and_touches_nothing(pipeline):
    held = pipeline.leases.acquire("north-down-20261125T030000Z", 120, datetime.now(UTC))
    try:
        notes_before = len(pipeline.notifications)
        arn = pipeline.start_failover(request(incidentId="manual-second-1"), name="manual-second-1")
        described = pipeline.wait_execution(arn)
        assert described["status"] == "FAILED"
        assert task_states_entered(pipeline, arn) == [
            "ValidateRequest",
            "AcquireLease",
            "NotifyFailure",
            "ReleaseLeaseAfterFailure",
        ]
        note = notifications_after(pipeline, notes_before + 1)[-1]
        assert note["Subject"].startswith("[dcwatch] OK: REFUSED north -> south, another recovery holds the lock")
        assert "another failover holds the lock: north-down-20261125T030000Z" in note["Message"]
        assert set(standby_power(pipeline).values()) == {"poweredOff"}
        assert pipeline.leases.holder() == held, "the holder keeps its lock"
    finally:
        pipeline.leases.release(held.owner)


def lock_held(pipeline: LocalPipeline, arn: str) -> tuple[datetime, datetime]:
    """From the lock taken (AcquireLease done) to the lock given back (ReleaseLease entered)."""
    history = pipeline.history(arn)
    taken = next(
        e["timestamp"]
        for e in history
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "AcquireLease"
    )
    released = next(
        e["timestamp"]
        for e in history
        if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"].startswith("ReleaseLease")
    )
    return taken, released


def test_two_manual_triggers_at_once_never_hold_the_lock_together(pipeline):
    arns = [
        pipeline.start_failover(request(dryRun=True, incidentId=f"manual-twin-{i}"), name=f"manual-twin-{i}")
        for i in (1, 2)
    ]
    described = {arn: pipeline.wait_execution(arn) for arn in arns}
    holders = [arn for arn, d in described.items() if d["status"] == "SUCCEEDED"]
    for arn, d in described.items():
        if d["status"] != "SUCCEEDED":
            assert task_states_entered(pipeline, arn)[:3] == ["ValidateRequest", "AcquireLease", "NotifyFailure"]
    assert holders, "one of them runs"
    spans = sorted(lock_held(pipeline, arn) for arn in holders)
    assert all(first[1] <= second[0] for first, second in itertools.pairwise(spans)), f"overlapping holders: {spans}"
    assert pipeline.leases.holder() is None


def test_a_manual_failover_powers_on_group_by_group_switches_dns_and_records_the_new_active_site(pipeline):
    notes_before = len(pipeline.notifications)
    arn = pipeline.start_failover(request(incidentId="manual-1"), name="manual-1")
    described = pipeline.wait_execution(arn, timeout_s=90)
    assert described["status"] == "SUCCEEDED", described.get("cause")

    output = json.loads(described["output"])
    powered = output["progress"]["poweredOn"]
    groups = output["plan"]["groups"]
    assert groups == [
        ["webshop-g1-0-south"],
        ["portal-g2-0-south", "webshop-g2-0-south", "webshop-g2-1-south"],
        ["portal-g3-0-south"],
    ]
    assert [sorted(powered[:1]), sorted(powered[1:4]), powered[4:]] == groups
    assert set(standby_power(pipeline).values()) == {"poweredOn"}
    assert pipeline.dns_values() == {"webshop.example.test.": ["127.0.32.1"], "portal.example.test.": ["127.0.32.1"]}
    assert pipeline.store.active_site("north") == "south"
    note = notifications_after(pipeline, notes_before + 1)[-1]
    assert note["Subject"] == "[dcwatch] OK: FAILOVER DONE north -> south, services run at south; no action needed"
    assert "SwitchDns" in note["Message"] and "Recovery time" in note["Message"]
    assert [r["outcome"] for r in pipeline.store.audit("manual-1")] == ["succeeded"]

    steps = task_states_entered(pipeline, arn)
    assert steps.index("VerifyServices") > max(i for i, s in enumerate(steps) if s == "CheckGroup")
    assert steps[:4] == ["ValidateRequest", "AcquireLease", "CheckStandby", "CheckStorage"]
    assert steps.index("Fence") < steps.index("StartGroup")
    assert steps[-3:] == ["RecordAudit", "Notify", "ReleaseLease"], "recorded before it is announced"

    assert set(site_power(pipeline, "north").values()) == {"poweredOff"}, "the failed site was fenced"
    assert "Fencing: fenced north: powered off" in note["Message"]
    (audit,) = pipeline.store.audit("manual-1")
    assert audit["fenceProof"]["kind"] == "vcenter" and audit["fencingApprovedBy"] is None
    assert "ProveFenced" not in steps, "proof (a) needs no other"
    assert pipeline.leases.holder() is None, "the lock is given back"


def test_a_failover_from_a_site_whose_vcenter_is_gone_without_agents_asks_a_human_and_promotes_nothing_unasked(
    pipeline,
):
    # Runs after the manual failover: south serves. Production is back at north (as a failback leaves it),
    # and north's vCenter now goes away for good; no agent runs
    pipeline.store.set_active_site("north", "failback-before-unfenced-1")
    pipeline.vcsims["north"].stop()
    notes_before = len(pipeline.notifications)
    arn = pipeline.start_failover(request(incidentId="manual-unfenced-1"), name="manual-unfenced-1")

    # Then nothing proves north cannot serve: the workflow asks, with the reasons
    note = notifications_after(pipeline, notes_before + 1)[-1]
    assert note["Subject"] == "[dcwatch] APPROVAL NEEDED: failover north -> south, not proven fenced"
    assert note["Message"].startswith("cannot prove north is fenced: its vCenter did not power north's VMs off")
    assert "no site agents configured (fencing.agents)" in note["Message"]
    assert note["Message"].split("\n")[0].endswith(", approve to proceed anyway")
    assert "StartGroup" not in task_states_entered(pipeline, arn)

    # And a human who says no stops it before anything at the standby moves
    token = re.search(r"dcwatch approve --token (\S+)", note["Message"]).group(1)
    tables = ["--table", pipeline.store.table, "--audit-table", pipeline.store.audit_table]
    assert main(["deny", "--token", token, "--reason", "north may still run", "--by", "bob", *tables]) == 0
    described = pipeline.wait_execution(arn, timeout_s=30)
    assert described["status"] == "FAILED"
    assert "StartGroup" not in task_states_entered(pipeline, arn)
    denied = notifications_after(pipeline, notes_before + 2)[-1]
    assert denied["Subject"] == "[dcwatch] ACTION NEEDED: NOT APPROVED failover north -> south, north not proven fenced"
    (audit,) = pipeline.store.audit("manual-unfenced-1")
    assert audit["fenceProof"]["proven"] is False and audit["fencingApprovedBy"] is None
    assert audit["failedStep"] == "RequestApproval"
