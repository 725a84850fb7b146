"""The disaster path under faults, as Step Functions (moto) runs it against vcsim: the storage window,
hooks on a real loopback HTTP server (answering, failing, hanging), a VM vCenter refuses to power on,
Route 53 throttling (a real botocore error response) and a step Lambda that dies after its work.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
import yaml
from botocore.awsrequest import AWSResponse
from pyVmomi import vim

from dcwatch.adapters.vsphere import vcenter_session
from dcwatch.local.lambdas import running_step
from dcwatch.local.pipeline import LocalPipeline
from dcwatch.local.services import wait_until
from tests.configs import write_pair_config
from tests.helpers import answer_by_cli, approval_request
from tests.hook_server import HookServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hooks() -> Iterator[HookServer]:
    server = HookServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, hooks: HookServer) -> Iterator[LocalPipeline]:
    path = write_pair_config(tmp_path_factory.mktemp("faults"), name="faults")
    doc = yaml.safe_load(path.read_text())
    south = doc["sites"][1]
    south["checks"] = [
        {"name": "san-mirror", "url": hooks.url("/mirror"), "conditions": ["[BODY].mirror.state == in-sync"]}
    ]
    south["storage"] = {
        "check": "san-mirror",
        "max_lag_s": 30,
        "promote_hook": {"name": "promote", "url": hooks.url("/hook/promote"), "timeout_s": 2},
    }
    hook = {"timeout_s": 1, "on_failure": "stop"}
    south["groups"] = [{"group": 2, "pre_power_on": [{**hook, "name": "open-lb", "url": hooks.url("/hook/open-lb")}]}]
    webshop = doc["services"][0]["sites"]["south"]["vms"]
    next(vm for vm in webshop if vm["name"] == "webshop-g2-1-south")["after"] = ["webshop-g2-0-south"]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with LocalPipeline(path) as running:
        yield running


@pytest.fixture
def fresh(pipeline: LocalPipeline, hooks: HookServer) -> LocalPipeline:
    pipeline.reset()
    hooks.behaviour.clear()
    hooks.calls.clear()
    hooks.mirror = {"state": "in-sync", "lag_seconds": 2}
    return pipeline


def request(name: str, **extra: Any) -> dict[str, Any]:
    return {"action": "failover", "from": "north", "to": "south", "reason": "fault drill", "incidentId": name, **extra}


def run(pipeline: LocalPipeline, name: str, **extra: Any) -> dict[str, Any]:
    return finish(pipeline, request(name, **extra), name)


def finish(pipeline: LocalPipeline, raw: dict[str, Any], name: str) -> dict[str, Any]:
    """Start, approve when forced (a forced request waits for a human's approval), wait for its end notice."""
    notes = len(pipeline.notifications)
    arn = pipeline.start_failover(raw, name=name)
    if raw.get("force"):
        _, token = approval_request(pipeline, notes)
        assert answer_by_cli(pipeline, "approve", token, "data loss accepted, CHG-9", "alice") == 0
        notes += 1
    described = pipeline.wait_execution(arn, timeout_s=120)
    assert wait_until(lambda: len(pipeline.notifications) > notes, 10), "no notification"
    return described


def standby_power(pipeline: LocalPipeline) -> dict[str, str]:
    site = pipeline.config.site("south")
    with vcenter_session(site.vcenter, pipeline.credentials["south"]) as si:
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
        try:
            return {vm.name: vm.runtime.powerState for vm in view.view if vm.name.endswith("-south")}
        finally:
            view.Destroy()


def power_on_events(pipeline: LocalPipeline, since: datetime) -> dict[str, int]:
    """How often vCenter started each standby VM since `since` (its VmStartingEvents)."""
    site = pipeline.config.site("south")
    counts: dict[str, int] = {}
    with vcenter_session(site.vcenter, pipeline.credentials["south"]) as si:
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
        try:
            for vm in [v for v in view.view if v.name.endswith("-south")]:
                spec = vim.event.EventFilterSpec(
                    eventTypeId=["VmStartingEvent"],
                    entity=vim.event.EventFilterSpec.ByEntity(entity=vm, recursion="self"),
                    time=vim.event.EventFilterSpec.ByTime(beginTime=since),
                )
                counts[vm.name] = len(si.content.eventManager.QueryEvents(spec))
        finally:
            view.Destroy()
    return counts


def history(pipeline: LocalPipeline, name: str) -> list[dict[str, Any]]:
    arn = next(e["executionArn"] for e in pipeline.executions() if e["name"] == name)
    return pipeline.history(arn)


def entered(pipeline: LocalPipeline, name: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in history(pipeline, name) if e["type"] == "TaskStateEntered"]


def test_a_mirror_beyond_the_data_loss_window_refuses_the_failover_and_touches_nothing(fresh, hooks):
    hooks.mirror = {"state": "in-sync", "lag_seconds": 900}
    dns_before = fresh.dns_values()
    described = run(fresh, "manual-lagging-1")
    assert described["status"] == "FAILED"
    assert entered(fresh, "manual-lagging-1")[:5] == [
        "ValidateRequest",
        "AcquireLease",
        "CheckStandby",
        "CheckStorage",
        "NotifyFailure",
    ]
    note = fresh.notifications[-1]
    assert note["Subject"].startswith("[dcwatch] ACTION NEEDED: failover north -> south failed at CheckStorage")
    assert "[BODY].mirror.lag_seconds <= 30: got 900" in note["Message"] and "force: true" in note["Message"]
    assert set(standby_power(fresh).values()) == {"poweredOff"} and fresh.dns_values() == dns_before
    assert hooks.calls == [], "nothing promoted"


def test_a_forced_failover_survives_a_crashed_step_and_route53_throttling_acting_once_each(fresh, hooks):
    hooks.mirror = {"state": "in-sync", "lag_seconds": 900}
    since = datetime.now(UTC)
    fresh.lambdas.crashes["StartGroup"] = 1  # dies after powering group 1 on, before answering
    throttled = {"left": 2}

    def throttle(**kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if running_step() != "SwitchDns" or throttled["left"] <= 0:
            return None
        throttled["left"] -= 1
        error = {
            "Error": {"Code": "Throttling", "Message": "Rate exceeded"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return AWSResponse(kwargs["params"]["url"], 400, {}, None), error

    events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
    events.register("before-call.route53.ChangeResourceRecordSets", throttle)
    fresh.lambdas.cold_start()  # new clients, which carry the hook
    try:
        described = run(fresh, "manual-forced-1", force=True)
    finally:
        events.unregister("before-call.route53.ChangeResourceRecordSets", throttle)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert throttled["left"] == 0
    steps = entered(fresh, "manual-forced-1")
    failures = [e for e in history(fresh, "manual-forced-1") if e["type"] == "LambdaFunctionFailed"]
    assert [f["lambdaFunctionFailedEventDetails"]["error"] for f in failures] == [
        "Lambda.Unknown",
        "TransientError",
        "TransientError",
    ]
    assert "NotifyFailure" not in steps, "each failed attempt was retried by the state's Retry, none caught"
    assert set(power_on_events(fresh, since).values()) == {1}, "no VM was powered on twice"
    assert hooks.calls.count("promote") == 1 and hooks.calls.count("open-lb") == 1
    output = json.loads(described["output"])
    powered = output["progress"]["poweredOn"]
    assert powered.index("webshop-g2-0-south") < powered.index("webshop-g2-1-south"), "dependency order"
    assert "promoted anyway as the request forced it" in output["storage"]
    note = fresh.notifications[-1]
    assert note["Subject"] == "[dcwatch] OK: FAILOVER DONE north -> south, services run at south; no action needed"
    done = [n for n in fresh.notifications if "manual-forced-1" in n["Message"] and "APPROVAL" not in n["Subject"]]
    assert len(done) == 1, "one notification"
    (audit,) = fresh.store.audit("manual-forced-1")
    check_dns = next(e for e in audit["timeline"] if e["step"] == "CheckDns")
    assert "verified: webshop.example.test. answers 127.0.32.1" in check_dns["detail"]
    assert all(e["started"] <= e["at"] and e["duration_s"] >= 0 for e in audit["timeline"]), "every step's timing"


def test_a_hook_that_hangs_past_its_timeout_stops_the_workflow_and_the_alert_says_what_is_up_and_what_is_not(
    fresh, hooks
):
    hooks.behaviour["open-lb"] = "hang"
    described = run(fresh, "manual-hung-1")
    assert described["status"] == "FAILED"
    message = fresh.notifications[-1]["Message"]
    assert "failed at StartGroup" in fresh.notifications[-1]["Subject"]
    # Called over the VPC's link to south (dcwatch.local.links.hook_link): the URL is that link's proxy.
    hook = r"pre-power-on hook open-lb \(group 2\): POST http://127\.0\.0\.1:\d+/hook/open-lb: timeout after 1 s"
    assert re.search(hook, message), message
    assert "Up at south: webshop-g1-0-south" in message
    assert "Not powered on: portal-g2-0-south, webshop-g2-0-south, webshop-g2-1-south, portal-g3-0-south" in message
    assert "DNS: not switched" in message
    power = standby_power(fresh)
    assert power["webshop-g1-0-south"] == "poweredOn", "the working part of the standby is not undone"
    assert power["webshop-g2-0-south"] == "poweredOff"


def test_a_vm_vcenter_refuses_to_power_on_stops_the_workflow_naming_it(fresh):
    site = fresh.config.site("south")
    with vcenter_session(site.vcenter, fresh.credentials["south"]) as si:
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
        vm = next(v for v in view.view if v.name == "portal-g3-0-south")
        view.Destroy()
        vm.MarkAsTemplate()
        try:
            described = run(fresh, "manual-refused-1")
        finally:
            cluster = next(c for c in si.content.rootFolder.childEntity[0].hostFolder.childEntity)
            vm.MarkAsVirtualMachine(pool=cluster.resourcePool)
    assert described["status"] == "FAILED"
    note = fresh.notifications[-1]
    assert "failed at StartGroup" in note["Subject"]
    assert "vCenter refused to power on portal-g3-0-south" in note["Message"]
    assert "Up at south: webshop-g1-0-south" in note["Message"]


def migrate(pipeline: LocalPipeline, name: str, **extra: Any) -> dict[str, Any]:
    raw = {"mode": "migration", "from": "north", "to": "south", "reason": "planned move", "incidentId": name, **extra}
    return finish(pipeline, raw, name)


def test_a_planned_migration_is_refused_when_the_mirror_has_not_caught_up_after_the_shutdown_even_forced(fresh, hooks):
    # Given a mirror 2 s behind: inside the data-loss window, so the migration shuts north down
    hooks.mirror = {"state": "in-sync", "lag_seconds": 2}
    described = migrate(fresh, "manual-move-lagging", force=True)

    # Then it stops before promoting: south stays off, DNS unchanged, the promote hook never ran
    assert described["status"] == "FAILED"
    steps = entered(fresh, "manual-move-lagging")
    assert steps.index("CheckShutdown") < steps.index("CheckMirrorSynced") and "StartGroup" not in steps
    note = fresh.notifications[-1]
    assert note["Subject"].startswith("[dcwatch] ACTION NEEDED: planned migration north -> south failed at Check")
    assert "has not caught up after north was shut down: [BODY].mirror.lag_seconds == 0: got 2" in note["Message"]
    assert "force does not apply" in note["Message"]
    assert set(standby_power(fresh).values()) == {"poweredOff"} and hooks.calls == []


def test_a_planned_migration_promotes_the_mirror_once_it_shows_no_lag(fresh, hooks):
    hooks.mirror = {"state": "in-sync", "lag_seconds": 0}
    described = migrate(fresh, "manual-move-synced")
    assert described["status"] == "SUCCEEDED", described.get("cause")
    output = json.loads(described["output"])
    assert output["storage"].endswith("caught up (lag 0) after north was shut down")
    assert hooks.calls.count("promote") == 1, "promoted once the mirror had caught up"
