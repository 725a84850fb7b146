"""Two real site agents (`python -m dcwatch.cli agent` processes) on loopback, against moto and vcsim:
they heartbeat each other with the real HMAC, refuse a peer with the wrong key, and an agent cut off
from AWS and from its peer powers its site's service VMs off in time, auditing it once AWS is back."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from jsonschema import Draft202012Validator
from moto.server import ThreadedMotoServer
from pyVmomi import vim

from dcwatch.adapters.agent_aws import DynamoSiteLeases
from dcwatch.adapters.vsphere import vcenter_session
from dcwatch.agent.runner import AgentSettings, SiteAgent
from dcwatch.agent.state import load
from dcwatch.config import parse_config
from dcwatch.local.cloud import create_tables, free_port
from tests.configs import write_pair_config
from tests.helpers import load_event

pytestmark = pytest.mark.integration
REGION = "eu-west-1"
FENCING = {"renew_s": 0.5, "lease_ttl_s": 4, "margin_s": 1.5, "max_skew_s": 2}  # fences 2.5 s after last contact
START_S = 20.0  # an agent process is up (imports, first renewal) within this, even on a busy machine
RUN_FOR_S = 90  # every agent process ends by itself after this


class Aws:
    """A moto server on loopback that can go away and come back on the same port with the same data
    (moto's backends live in this process)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server: ThreadedMotoServer | None = None

    def start(self) -> Aws:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION)


@pytest.fixture
def aws(monkeypatch) -> Iterator[tuple[Aws, dict[str, str]]]:
    for key, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    cloud = Aws().start()
    requests_reset = cloud.client("dynamodb")  # moto's backends are process-wide: start from empty tables
    for name in requests_reset.list_tables()["TableNames"]:
        requests_reset.delete_table(TableName=name)
    tables = create_tables(cloud.client("dynamodb"), f"agent{cloud.port}")
    bus = f"dcwatch-agent{cloud.port}"
    cloud.client("events").create_event_bus(Name=bus)
    yield cloud, {"locks": tables["Locks"], "audit": tables["Audit"], "bus": bus}
    cloud.stop()


@pytest.fixture
def agent_config(tmp_path: Path, vcsim_site) -> tuple[Path, dict[str, Any], Any]:
    """The pair config with a fencing section, north's vCenter a running vcsim with north's service VMs on."""
    path = write_pair_config(tmp_path, sites=("north", "south"))
    doc = yaml.safe_load(path.read_text())
    north_vms = [vm["name"] for s in doc["services"] for vm in s["sites"]["north"]["vms"]]
    site = vcsim_site([(name, True) for name in north_vms] + [("not-a-service-vm", True)], name="north")
    doc["sites"][0]["vcenter"]["url"] = site.vcenter.url
    key = tmp_path / "agent.key"
    key.write_text(secrets.token_hex(32))
    credentials = tmp_path / "north-vcenter.json"
    credentials.write_text(json.dumps({"username": site.credentials.username, "password": site.credentials.password}))
    doc["fencing"] = {
        **FENCING,
        "secret_file": str(key),
        "agents": {
            "north": {"listen": f"127.0.0.1:{free_port()}", "vcenter_credentials_file": str(credentials)},
            "south": {"listen": f"127.0.0.1:{free_port()}", "power_off_vms": False, "fence_hook": None},
        },
    }
    # south fences through a hook nobody answers: the test never lets it fence
    doc["fencing"]["agents"]["south"]["fence_hook"] = {"name": "south-fence", "url": f"http://127.0.0.1:{free_port()}/"}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path, doc, site


class AgentProcess:
    def __init__(self, config: Path, site: str, names: dict[str, str], endpoint: str, directory: Path):
        self.site, self.log = site, directory / f"{site}.log"
        command = [sys.executable, "-m", "dcwatch.cli", "agent", "--config", str(config), "--site", site]
        command += ["--locks-table", names["locks"], "--audit-table", names["audit"], "--bus", names["bus"]]
        command += ["--state-file", str(directory / f"{site}-state.json"), "--run-for", str(RUN_FOR_S)]
        env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "POWERTOOLS_LOG_LEVEL": "INFO"}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)

    def lines(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return int(self.process.returncode)


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    started: list[AgentProcess] = []

    def start(config: Path, site: str, names: dict[str, str], endpoint: str) -> AgentProcess:
        agent = AgentProcess(config, site, names, endpoint, tmp_path)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


def until(condition: Callable[[], Any], timeout_s: float, what: str, poll_s: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if value := condition():
                return value
        except Exception:  # noqa: BLE001 - not there yet (moto away, item missing)
            pass
        time.sleep(poll_s)
    raise AssertionError(f"not within {timeout_s:g} s: {what}")


def lease_of(aws: Aws, names: dict[str, str], site: str):
    return DynamoSiteLeases(names["locks"], site, aws.client("dynamodb")).read()


def power(site, names: list[str]) -> dict[str, str]:
    with vcenter_session(site.vcenter, site.credentials) as si:
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
        try:
            return {vm.name: str(vm.runtime.powerState) for vm in view.view if vm.name in names}
        finally:
            view.Destroy()


def test_two_agents_heartbeat_each_other_hold_their_leases_and_report_on_the_bus(aws, agent_config, agents):
    cloud, names = aws
    config, _, _ = agent_config
    events = cloud.client("events")
    sqs = cloud.client("sqs")
    queue = sqs.create_queue(QueueName="agent-reports")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="reports", EventBusName=names["bus"], EventPattern=json.dumps({"source": ["dcwatch.agent.north"]})
    )
    events.put_targets(Rule="reports", EventBusName=names["bus"], Targets=[{"Id": "q", "Arn": queue_arn}])

    # Given both agents running, each with the shared key
    north = agents(config, "north", names, cloud.endpoint)
    agents(config, "south", names, cloud.endpoint)

    # Then both hold their lease, and each records that it sees its peer
    for site in ("north", "south"):
        lease = until(
            lambda s=site: (
                (lease := lease_of(cloud, names, s)) and lease.sees_peer and lease.state == "SERVING" and lease
            ),
            START_S,
            f"{site}'s lease renewed with its peer seen",
        )
        assert lease.agent_id.startswith(f"{site}@")

    # And north's report reached the bus, fitting the contract: north's own vCenter login passes from inside
    validator = Draft202012Validator(load_event("schemas/SiteAgentReport.json"))

    def report():
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            detail = json.loads(message["Body"])["detail"]
            if detail["peer"]["reached"] and detail["vcenter"] is not None:
                return detail
        return None

    detail = until(report, 15, "a report of north with its peer reached and its vCenter checked")
    assert [e.message for e in validator.iter_errors(detail)] == []
    assert (detail["site"], detail["state"], detail["vcenter"]["ok"]) == ("north", "SERVING", True)
    assert not [line for line in north.lines() if line.get("message") == "heartbeat refused"]


def test_a_peer_with_the_wrong_key_is_refused_and_never_counts_as_contact(aws, agent_config, agents, tmp_path):
    cloud, names = aws
    config, doc, _ = agent_config
    # Given south's agent with another key than north's
    wrong = copy_config(doc, tmp_path / "south-wrong.yaml")
    north = agents(config, "north", names, cloud.endpoint)
    south = agents(wrong, "south", names, cloud.endpoint)

    # Then each refuses the other's heartbeats as badly signed, logged structured
    refused = until(
        lambda: [line for line in north.lines() if line.get("message") == "heartbeat refused"],
        START_S,
        "north logging south's refused heartbeat",
    )
    assert (
        refused[0]["reason"] == "bad signature"
        and refused[0]["peer"] == "south"
        and refused[0]["source"] == "127.0.0.1"
    )
    until(lambda: any(line.get("message") == "heartbeat refused" for line in south.lines()), 10, "south refusing north")
    # And neither counts the other: both keep serving on their AWS majority, without the peer
    for site in ("north", "south"):
        lease = until(
            lambda s=site: (lease := lease_of(cloud, names, s)) and lease.state == "DEGRADED" and lease,
            START_S,
            f"{site} degraded: AWS only",
        )
        assert lease.sees_peer is False


def copy_config(doc: dict[str, Any], path: Path) -> Path:
    other = json.loads(json.dumps(doc))
    key = path.with_suffix(".key")
    key.write_text(secrets.token_hex(32))
    other["fencing"]["secret_file"] = str(key)
    path.write_text(yaml.safe_dump(other, sort_keys=False))
    return path


def test_an_agent_cut_off_from_aws_and_its_peer_powers_its_sites_vms_off_in_time_and_audits_it_later(
    aws, agent_config, agents
):
    cloud, names = aws
    config, doc, vcenter = agent_config
    service_vms = [vm["name"] for s in doc["services"] for vm in s["sites"]["north"]["vms"]]

    # Given both agents serving
    north = agents(config, "north", names, cloud.endpoint)
    south = agents(config, "south", names, cloud.endpoint)
    until(lambda: lease_of(cloud, names, "north").state == "SERVING", START_S, "north serving with its peer")

    # When the peer goes (north keeps serving with AWS), then AWS goes too
    south.stop()
    until(lambda: lease_of(cloud, names, "north").state == "DEGRADED", 10, "north degraded: AWS only")
    assert set(power(vcenter, service_vms).values()) == {"poweredOn"}
    last_renewal = lease_of(cloud, names, "north").renewed_at
    cloud.stop()
    cut = time.monotonic()

    # Then north powers its service VMs off by its own hand, after lease_ttl - margin and well before ttl + margin
    until(lambda: set(power(vcenter, service_vms).values()) == {"poweredOff"}, 15, "north's service VMs off")
    fenced_after_s = time.monotonic() - cut
    fenced = until(lambda: [line for line in north.lines() if line.get("message") == "site fenced"], 5, "fence logged")
    assert power(vcenter, ["not-a-service-vm"]) == {"not-a-service-vm": "poweredOn"}
    assert sorted(fenced[0]["powered_off"]) == sorted(service_vms) and fenced[0]["errors"] == []
    fence_id = fenced[0]["fence_id"]
    fence_line = next(line for line in north.lines() if line.get("message") == "fencing the site")
    fenced_at = datetime.strptime(fence_line["timestamp"], "%Y-%m-%d %H:%M:%S,%f%z")
    since_renewal = (fenced_at - last_renewal).total_seconds()
    print(
        f"fence started {since_renewal:.2f} s after the last renewal read; VMs off {fenced_after_s:.2f} s after the cut"
    )
    assert FENCING["lease_ttl_s"] - FENCING["margin_s"] <= since_renewal < FENCING["lease_ttl_s"] + FENCING["margin_s"]

    # When AWS is back (same endpoint, same tables)
    cloud.start()

    # Then the fence is audited once, and north reports it while it keeps running, fenced for good
    def audit():
        items = cloud.client("dynamodb").scan(TableName=names["audit"])["Items"]
        return [json.loads(i["record"]["S"]) for i in items if i["pk"]["S"] == fence_id]

    (record,) = until(audit, 15, "the fence's audit record")
    assert (record["kind"], record["site"], record["fenceId"]) == ("site fenced", "north", fence_id)
    assert sorted(record["vmsPoweredOff"]) == sorted(service_vms)
    until(lambda: lease_of(cloud, names, "north").state == "DEGRADED", 10, "north renewing again")
    time.sleep(2 * FENCING["renew_s"])
    assert len(audit()) == 1
    assert set(power(vcenter, service_vms).values()) == {"poweredOff"}  # no un-fence by itself
    assert north.process.poll() is None


def test_an_agent_that_cannot_read_its_key_secret_still_runs_and_fences_on_time_when_it_reaches_nobody(
    agent_config, tmp_path, monkeypatch
):
    _, doc, vcenter = agent_config
    # Given the heartbeat key in Secrets Manager, and AWS out of reach from the start (nothing listens)
    for key, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    doc = json.loads(json.dumps(doc))
    doc["fencing"].pop("secret_file")
    doc["fencing"]["secret_id"] = "itest/agent-key"
    config = parse_config(doc)
    t0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    now = [t0]
    state_file = tmp_path / "north-state.json"
    settings = AgentSettings("locks", "audit", "bus", "north@test", state_file)
    agent = SiteAgent(config, "north", settings, clock=lambda: now[0])

    # When it runs its rounds on a fake clock, one second apart
    states = []
    for n in range(1, 5):
        now[0] = t0 + timedelta(seconds=n)
        states.append(agent.tick().state)

    # Then it counted down from its start and fenced at lease_ttl - margin (2.5 s): its service VMs are off
    assert states == ["ISOLATED", "ISOLATED", "FENCED", "FENCED"]
    service_vms = [vm["name"] for s in doc["services"] for vm in s["sites"]["north"]["vms"]]
    assert set(power(vcenter, service_vms).values()) == {"poweredOff"}
    (pending,) = load(state_file).pending_audit
    assert pending.fence_id == "north-fenced-20261125T030003Z" and sorted(pending.vms_powered_off) == sorted(
        service_vms
    )
