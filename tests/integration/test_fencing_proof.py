"""The fencing proof in the workflow as Step Functions (moto) runs it: the failed site's vCenter gone, its
lease in the locks table as its agent's adapter writes it, the standby agent's reports put on the bus as the
agent puts them (the evaluator's agent-reports rule keeps the latest). A dead site is promoted once its lease
expired and the standby lost it too; anything less asks a human.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import yaml

from dcwatch.adapters.agent_aws import AgentReportPublisher, DynamoSiteLeases
from dcwatch.agent.report import SITE_AGENT_REPORT, SiteAgentReport, agent_source
from dcwatch.cli import main
from dcwatch.local.pipeline import LocalPipeline
from dcwatch.local.services import wait_until
from tests.configs import write_pair_config
from tests.helpers import agent_report

pytestmark = pytest.mark.integration

# Short on purpose: north fences itself 3 s after its last contact, AWS may act 5 s after it.
FENCING = {
    "renew_s": 1,
    "lease_ttl_s": 4,
    "margin_s": 1,
    "proof_waits": 2,
    "secret_file": "/etc/dcwatch/agent.key",
    "agents": {"north": {"listen": "127.0.0.1:17441"}, "south": {"listen": "127.0.0.1:17442"}},
}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Iterator[LocalPipeline]:
    path = write_pair_config(tmp_path_factory.mktemp("fencing"), name="fence")
    doc = yaml.safe_load(path.read_text())
    doc["fencing"] = FENCING
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with LocalPipeline(path, run_agents=False) as running:  # the tests write the agents' leases and reports
        running.vcsims["north"].stop()  # every failover here meets a failed site whose vCenter is gone
        yield running


def north_renewed(pipeline: LocalPipeline, at: datetime) -> None:
    """North's lease as its agent writes it (the agent's own adapter), last renewed at `at`."""
    leases = DynamoSiteLeases(pipeline.resources.locks_table_name, "north", pipeline.cloud.client("dynamodb"))
    leases.renew("north@agent", FENCING["lease_ttl_s"], at, sees_peer=True, serving=True, state="SERVING")


def put_on_the_bus(pipeline: LocalPipeline, report: SiteAgentReport, source: str) -> None:
    entry = {"Source": source, "DetailType": SITE_AGENT_REPORT, "Detail": report.model_dump_json(by_alias=True)}
    pipeline.cloud.client("events").put_events(Entries=[entry | {"EventBusName": pipeline.resources.bus_name}])


def south_reports(pipeline: LocalPipeline, *, reached: bool, last_heard_at: datetime | None) -> None:
    """South's agent reports on the bus (its own adapter); returns once the evaluator keeps it as south's latest."""
    report = agent_report("south", "north", datetime.now(UTC), reached=reached, last_heard_at=last_heard_at)
    AgentReportPublisher(pipeline.resources.bus_name, pipeline.cloud.client("events")).publish(report)

    def kept() -> bool:
        latest = pipeline.store.agent_report("south")
        return latest is not None and latest.sent_at >= report.sent_at

    assert wait_until(kept, 10), "the agent-reports rule did not keep the report"


def states_entered(pipeline: LocalPipeline, arn: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in pipeline.history(arn) if e["type"].endswith("StateEntered")]


@pytest.fixture(autouse=True)
def north_serves(pipeline):
    """Each test fails north over afresh: production is recorded at north again (as a failback leaves it),
    else the workflow finds production already at south and stops, Superseded."""
    pipeline.store.set_active_site("north", "before-this-test")


def request(incident: str) -> dict:
    return {"mode": "disaster", "from": "north", "to": "south", "reason": "north DOWN", "incidentId": incident}


def test_a_dead_site_whose_lease_expired_and_whose_peer_lost_it_is_failed_over_without_asking(pipeline):
    # Given north died 10 s ago: its lease last renewed then, south's agent has not heard it since
    died = datetime.now(UTC) - timedelta(seconds=10)
    north_renewed(pipeline, died)
    south_reports(pipeline, reached=False, last_heard_at=died)

    # When the failover runs, then proof (b) holds and the standby serves
    arn = pipeline.start_failover(request("manual-lease-1"), name="manual-lease-1")
    described = pipeline.wait_execution(arn, timeout_s=90)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    steps = states_entered(pipeline, arn)
    assert steps.index("Fence") < steps.index("ProveFenced") < steps.index("StartGroup")
    assert "RequestApprovalForFencing" not in steps and "WaitForFenceProof" not in steps
    (audit,) = pipeline.store.audit("manual-lease-1")
    proof = audit["fenceProof"]
    assert (proof["kind"], proof["facts"]["leaseAgent"], proof["facts"]["standbyAgent"]) == (
        "lease",
        "north@agent",
        "south@agent",
    )
    assert audit["fencing"].startswith("proven fenced: north's lease expired")
    assert proof["reasons"][0].startswith("its vCenter did not power north's VMs off (")


def entered(pipeline: LocalPipeline, arn: str, state: str) -> datetime | None:
    return next(
        (
            e["timestamp"]
            for e in pipeline.history(arn)
            if e["type"].endswith("StateEntered") and e["stateEnteredEventDetails"]["name"] == state
        ),
        None,
    )


def test_a_lease_renewed_moments_ago_is_waited_out_then_the_site_is_failed_over(pipeline):
    # Given north's agent renews its lease until the workflow starts proving, then falls silent; south's agent
    # reports north lost all along
    since = datetime.now(UTC)
    stop = threading.Event()
    renewals: list[datetime] = []

    def agents(arn: str) -> None:
        while not stop.wait(0.3):
            if entered(pipeline, arn, "ProveFenced") is None:
                renewals.append(datetime.now(UTC))
                north_renewed(pipeline, renewals[-1])
            south_reports(pipeline, reached=False, last_heard_at=since)

    north_renewed(pipeline, since)
    arn = pipeline.start_failover(request("manual-lease-2"), name="manual-lease-2")
    thread = threading.Thread(target=agents, args=(arn,), daemon=True)
    thread.start()
    try:
        described = pipeline.wait_execution(arn, timeout_s=90)
    finally:
        stop.set()
        thread.join(timeout=5)

    # Then the workflow waited (Wait/Choice, bounded), and promoted the standby only once the lease had expired
    assert described["status"] == "SUCCEEDED", described.get("cause")
    steps = states_entered(pipeline, arn)
    assert steps.count("ProveFenced") == 2 and steps.count("WaitForFenceProof") == 1
    last_renewal = max([since, *renewals])
    assert entered(pipeline, arn, "StartGroup") >= last_renewal + timedelta(seconds=5), "not before t + m"
    assert pipeline.store.audit("manual-lease-2")[0]["fenceProof"]["attempts"] == 2


def test_a_site_its_peer_still_hears_is_not_promoted_until_a_human_approves(pipeline):
    # Given the paths from AWS to north are cut: its lease is long expired, but south's agent still reaches it
    north_renewed(pipeline, datetime.now(UTC) - timedelta(seconds=60))
    south_reports(pipeline, reached=True, last_heard_at=None)
    notes = len(pipeline.notifications)

    # When the failover runs, then after its bounded waits it asks, with the reasons
    arn = pipeline.start_failover(request("manual-peer-1"), name="manual-peer-1")
    assert wait_until(lambda: len(pipeline.notifications) > notes, 60), "the approval request did not arrive"
    note = pipeline.notifications[notes]
    assert note["Subject"] == "[dcwatch] APPROVAL NEEDED: failover north -> south, not proven fenced"
    first = note["Message"].split("\n")[0]
    assert first.startswith("cannot prove north is fenced: its vCenter did not power north's VMs off")
    assert "south's agent still reaches north" in first and first.endswith(", approve to proceed anyway")
    assert states_entered(pipeline, arn).count("WaitForFenceProof") == FENCING["proof_waits"]

    # And an operator's approval promotes the standby, recorded by name
    token = re.search(r"dcwatch approve --token (\S+)", note["Message"]).group(1)
    tables = ["--table", pipeline.store.table, "--audit-table", pipeline.store.audit_table]
    assert (
        main(["approve", "--token", token, "--reason", "north is off, checked on site", "--by", "carol", *tables]) == 0
    )
    described = pipeline.wait_execution(arn, timeout_s=90)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert "ApprovedWithoutFenceProof" in states_entered(pipeline, arn)
    (audit,) = pipeline.store.audit("manual-peer-1")
    assert audit["fencingApprovedBy"] == "carol" and audit["fenceProof"]["proven"] is False
    caller = boto3.client("sts").get_caller_identity()["Arn"]  # who the CLI ran as, recorded beside --by
    assert audit["fencing"].endswith(f"promoted as approved by carol ({caller}): north is off, checked on site")


def agent_report_deliveries(pipeline: LocalPipeline) -> int:
    return sum(1 for name, _ in pipeline.lambdas.invocations if name == pipeline.function("AgentReports"))


def test_a_report_put_on_the_bus_under_another_sites_source_is_refused_and_never_kept(pipeline):
    # Given south's agent reporting that it reaches north
    south_reports(pipeline, reached=True, last_heard_at=None)
    kept_before, delivered = pipeline.store.agent_report("south"), agent_report_deliveries(pipeline)

    # When north's agent (its source) puts a later report that claims to be south's, saying north is lost
    forged = agent_report("south", "north", datetime.now(UTC), reached=False, last_heard_at=None)
    put_on_the_bus(pipeline, forged, agent_source("north"))

    # Then the evaluator gets it and refuses it: south's latest report stays the one south's agent sent
    assert wait_until(lambda: agent_report_deliveries(pipeline) > delivered, 10), "the rule did not deliver it"
    assert pipeline.store.agent_report("south") == kept_before
