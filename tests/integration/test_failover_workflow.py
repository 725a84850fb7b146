"""The failover workflow as Step Functions (moto) runs it: same ASL, real handlers, vcsim, Route 53.

One pipeline per test module (two vcsims, moto, demo services) built from a config whose names,
counts and groups differ from the demo's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pyVmomi import vim

from dcwatch.adapters.vsphere import vcenter_session
from dcwatch.local.pipeline import LocalPipeline
from dcwatch.local.services import wait_until
from tests.configs import write_pair_config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Iterator[LocalPipeline]:
    path = write_pair_config(tmp_path_factory.mktemp("wf"), name="wf")
    with LocalPipeline(path) as running:
        yield running


def request(**overrides):
    return {"action": "failover", "from": "north", "to": "south", "reason": "drill of the workflow", **overrides}


def task_states_entered(pipeline: LocalPipeline, arn: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in pipeline.history(arn) if e["type"] == "TaskStateEntered"]


def standby_power(pipeline: LocalPipeline) -> dict[str, str]:
    site = pipeline.config.site("south")
    names = [vm.name for _, at in pipeline.config.services_at("south") for vm in at.vms]
    with vcenter_session(site.vcenter, pipeline.credentials["south"]) as si:
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
        try:
            return {vm.name: vm.runtime.powerState for vm in view.view if vm.name in names}
        finally:
            view.Destroy()


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


def test_a_dry_run_announces_the_plan_and_changes_nothing(pipeline):
    dns_before, notes_before = pipeline.dns_values(), len(pipeline.notifications)
    arn = pipeline.start_failover(request(dryRun=True, incidentId="dry-1"), name="dry-1")
    assert pipeline.wait_execution(arn)["status"] == "SUCCEEDED"
    assert "StartGroup" not in task_states_entered(pipeline, arn)
    assert pipeline.dns_values() == dns_before
    assert set(standby_power(pipeline).values()) == {"poweredOff"}
    note = notifications_after(pipeline, notes_before + 1)[-1]
    assert note["Subject"].startswith("[dcwatch] DRY RUN north -> south")
    assert "group 1: webshop-g1-0-south" in note["Message"]
    assert pipeline.store.active_site("north") == "north"
    assert [r["outcome"] for r in pipeline.store.audit("dry-1")] == ["dry-run"]


def test_a_missing_standby_vm_stops_the_workflow_and_the_alert_names_the_step_and_cause(pipeline):
    site = pipeline.config.site("south")
    with vcenter_session(site.vcenter, pipeline.credentials["south"]) as si:
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
        vm = next(v for v in view.view if v.name == "portal-g3-0-south")
        view.Destroy()
        vm.Rename_Task("portal-renamed")
        try:
            notes_before = len(pipeline.notifications)
            arn = pipeline.start_failover(request(incidentId="broken-1"), name="broken-1")
            described = pipeline.wait_execution(arn)
        finally:
            vm.Rename_Task("portal-g3-0-south")
    assert described["status"] == "FAILED"
    note = notifications_after(pipeline, notes_before + 1)[-1]
    assert note["Subject"].startswith("[dcwatch] ACTION NEEDED: failover north -> south failed at CheckStandby")
    assert "portal-g3-0-south" in note["Message"]
    assert set(standby_power(pipeline).values()) == {"poweredOff"}, "nothing was powered on"
    assert [r["outcome"] for r in pipeline.store.audit("broken-1")] == ["failed"]


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
    assert note["Subject"] == "[dcwatch] FAILOVER DONE north -> south: services run at south"
    assert "SwitchDns" in note["Message"] and "Recovery time" in note["Message"]
    assert [r["outcome"] for r in pipeline.store.audit("manual-1")] == ["succeeded"]

    steps = task_states_entered(pipeline, arn)
    assert steps.index("VerifyServices") > max(i for i, s in enumerate(steps) if s == "CheckGroup")
    assert steps[-2:] == ["Notify", "RecordAudit"]
