"""The evaluator and the site agents' reports: a site whose agent says it serves is never failed over, an
agent's "not serving" counts like a vantage point, a silent agent is announced once, and an agent reports
on its own site only."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dcwatch.agent.report import SiteAgentReportEvent, agent_source
from dcwatch.config import Fencing
from dcwatch.detection.agent_watch import receive_agent_report
from dcwatch.events import probe_source
from dcwatch.model import AutomationSwitch
from dcwatch.wiring import RULES
from tests.helpers import agent_report, load_event
from tests.unit.test_evaluator import ALL_OF_A, CONFIG, THRESHOLD, World

FENCING = Fencing.model_validate(
    {
        "renew_s": 1,
        "lease_ttl_s": 6,
        "margin_s": 2,
        "secret_file": "/etc/dcwatch/agent.key",
        "agents": {"dc-a": {"listen": "10.1.0.5:7440"}, "dc-b": {"listen": "10.2.0.5:7440"}},
    }
)
AGENTS = CONFIG.model_copy(update={"fencing": FENCING})
SERVICES_OF_A = ALL_OF_A - {("dc-a", "vcenter")}


class AgentWorld(World):
    def __init__(self) -> None:
        super().__init__(AGENTS)

    def report(self, site: str, *, serving: bool = True, reached: bool = True, source: str | None = None):
        peer = "dc-b" if site == "dc-a" else "dc-a"
        report = agent_report(site, peer, self.now, reached=reached, serving=serving, ttl_s=FENCING.lease_ttl_s)
        return self.receive(report, source or agent_source(site))

    def receive(self, report, source: str):
        return receive_agent_report(source, report, self.config, self.store, self.notifier, clock=lambda: self.now)

    def with_reports(self, failing=frozenset(), *, a_serving: bool | None = True, **kwargs) -> None:
        """One probe round, both agents reporting first (dc-a's only when `a_serving` is not None)."""
        if a_serving is not None:
            self.report("dc-a", serving=a_serving)
        self.report("dc-b", serving=False)  # the standby's services are off: that is no news
        self.probe_round(failing, **kwargs)


def test_a_site_cut_off_from_aws_whose_agent_reports_it_serving_is_never_failed_over():
    # Given every path from AWS to dc-a cut, while its agent renews its lease and reports it serving
    world = AgentWorld()
    world.with_reports()
    for _ in range(THRESHOLD + 3):
        world.with_reports(ALL_OF_A)

    # Then no DOWN, no failover, one PARTITIONED alert
    assert world.publisher.site_changes == [] and world.workflows.started == {}
    assert world.subjects() == [
        "[dcwatch] PARTITIONED dc-a: AWS cannot reach dc-a; its agent reports it alive and serving"
    ]
    assert world.store.condition("site/dc-a", "UP").status == "UP"

    # And when the paths are back: one PARTITION OVER alert
    for _ in range(3):
        world.with_reports()
    assert world.subjects()[1:] == ["[dcwatch] PARTITION OVER dc-a: AWS reaches dc-a again after 5 s"]
    assert [r["status"] for r in world.store.records("partition")] == ["PARTITIONED", "OK"]


def test_a_partitioned_site_whose_agent_falls_silent_is_failed_over_and_its_agent_announced_silent():
    # Given dc-a partitioned from AWS, its agent serving; then its agent stops reporting (dc-a dies entirely)
    world = AgentWorld()
    world.with_reports()
    for _ in range(THRESHOLD):
        world.with_reports(ALL_OF_A)
    assert world.workflows.started == {}
    for _ in range(int(FENCING.act_after_s) + 2):
        world.with_reports(ALL_OF_A, a_serving=None)

    # Then, its lease run out, the site goes DOWN and fails over; the agent's silence is announced once
    assert [c.status for c in world.publisher.site_changes] == ["DOWN"]
    assert len(world.workflows.started) == 1
    subjects = world.subjects()
    assert subjects[0].startswith("[dcwatch] PARTITIONED dc-a")
    assert "[dcwatch] DOWN dc-a (active): failover started" in subjects
    assert [s for s in subjects if "AGENT SILENT" in s] == ["[dcwatch] AGENT SILENT dc-a: no report since 03:00:03"]
    assert not any("PARTITION OVER" in s for s in subjects), "the paths are not back: the DOWN alert speaks"


def dying(a_serving: bool) -> AgentWorld:
    """dc-a's services die; aws-public sees them fail a round before aws-vpc does (quorum 2)."""
    world = AgentWorld()
    world.with_reports(a_serving=a_serving)
    for n in range(THRESHOLD):
        world.report("dc-a", serving=a_serving)
        world.probe_round(SERVICES_OF_A, vantages=["aws-public"])
        world.probe_round(SERVICES_OF_A if n else frozenset(), vantages=["aws-vpc"])
    return world


def test_an_agent_reporting_its_site_not_serving_completes_the_quorum_of_one_vantage_point():
    # Given aws-public sees dc-a DOWN, aws-vpc not yet: one vantage point is no quorum
    assert dying(a_serving=True).publisher.site_changes == []

    # When dc-a's own agent reports its services failing at the site, then that completes the quorum
    world = dying(a_serving=False)
    assert [c.status for c in world.publisher.site_changes] == ["DOWN"]
    assert "agent-dc-a 1/1" in world.publisher.site_changes[0].explanation
    assert len(world.workflows.started) == 1


def test_an_agents_not_serving_while_a_recovery_holds_the_lock_is_its_fencing_and_completes_no_quorum():
    # Given a planned move holding the failover lock: its Fence step powers dc-a's service VMs off, so both vantage
    # points see dc-a's services fail and dc-a's own agent reports it not serving; aws-vpc still sees its vCenter
    world = AgentWorld()
    world.with_reports()
    world.leases.acquire("manual-dc-a-1", 600, world.now)
    for _ in range(THRESHOLD + 2):
        world.with_reports(SERVICES_OF_A, a_serving=False)

    # Then no DOWN and no second failover: the recovery's own fencing is not an outage
    assert world.publisher.site_changes == [] and world.workflows.started == {}


def test_a_site_down_on_its_agents_word_stays_down_while_its_own_failover_holds_the_lock():
    # Given dc-a DOWN with its agent's word completing the quorum, and its failover holding the lock
    world = dying(a_serving=False)
    (incident,) = world.workflows.started
    assert world.leases.holder().owner == incident

    # When the next rounds come as before: aws-public sees dc-a's services fail, aws-vpc still its vCenter
    for _ in range(3):
        world.report("dc-a", serving=False)
        world.probe_round(SERVICES_OF_A, vantages=["aws-public"])
        world.probe_round(SERVICES_OF_A, vantages=["aws-vpc"])

    # Then it never flaps back UP while its own failover runs
    assert [c.status for c in world.publisher.site_changes] == ["DOWN"]


def test_an_agent_alone_never_makes_a_site_down():
    world = AgentWorld()
    for _ in range(THRESHOLD + 2):
        world.with_reports(a_serving=False)
    assert world.publisher.site_changes == [] and world.workflows.started == {}


def test_a_silent_agent_is_announced_once_and_its_return_once():
    world = AgentWorld()
    world.with_reports()
    for _ in range(int(FENCING.act_after_s) + 4):
        world.report("dc-b", serving=False)
        world.probe_round()
    world.with_reports()
    world.with_reports()
    assert world.subjects() == [
        "[dcwatch] AGENT SILENT dc-a: no report since 03:00:00",
        "[dcwatch] AGENT BACK dc-a: its agent reports again after 4 s silent",
    ]
    assert [r["status"] for r in world.store.records("agent")] == ["SILENT", "OK"]


def test_an_agent_never_heard_is_announced_silent_counting_from_the_evaluators_first_look():
    world = AgentWorld()
    for _ in range(int(FENCING.act_after_s) + 3):
        world.report("dc-b", serving=False)
        world.probe_round()
    assert world.subjects() == ["[dcwatch] AGENT SILENT dc-a: no report since 03:00:01"]


def test_a_report_about_another_site_than_its_source_is_refused_and_changes_nothing():
    world = AgentWorld()
    outcome = world.report("dc-b", source=agent_source("dc-a"))
    assert not outcome.kept and outcome.refused == (
        "a report about dc-b from dcwatch.agent.dc-a: an agent reports on its own site only"
    )
    assert world.store.agent_report("dc-b") is None


def test_a_report_delivered_late_never_replaces_a_newer_one():
    world = AgentWorld()
    late = agent_report("dc-b", "dc-a", world.now, reached=False)
    world.round += 5
    assert world.report("dc-b").kept
    outcome = world.receive(late, agent_source("dc-b"))
    assert not outcome.kept and not outcome.refused
    assert world.store.agent_report("dc-b").peer.reached, "the newer report stays"


def test_without_agents_in_the_config_a_report_is_refused():
    world = World()
    report = agent_report("dc-a", "dc-b", world.now)
    outcome = receive_agent_report(
        agent_source("dc-a"), report, world.config, world.store, world.notifier, clock=lambda: world.now
    )
    assert outcome.refused == "the config names no site agents (fencing.agents)"


@pytest.mark.parametrize(
    ("sent", "replay", "why"),
    [
        (timedelta(days=365 * 73), None, "sent future-dated"),  # 2099: it would stand as the latest for good
        (-timedelta(hours=2), None, "sent too old"),
        (timedelta(0), "incident-review", "an archive replay"),
    ],
)
def test_a_report_from_the_future_or_the_past_or_an_archive_is_refused_and_changes_nothing(sent, replay, why):
    world = AgentWorld()
    report = agent_report("dc-b", "dc-a", world.now + sent, ttl_s=FENCING.lease_ttl_s)
    outcome = receive_agent_report(
        agent_source("dc-b"), report, world.config, world.store, world.notifier, lambda: world.now, replay
    )
    assert not outcome.kept and outcome.refused.startswith(why), outcome.refused
    assert world.store.agent_report("dc-b") is None
    assert world.report("dc-b").kept, "the agent's next genuine report is kept"


def test_a_held_back_failover_waits_while_the_sites_agent_reports_it_serving():
    # Given dc-a DOWN by quorum with automation off: its failover is held back, re-judged on each result
    world = AgentWorld()
    world.store.switch = AutomationSwitch(enabled=False, reason="maintenance")
    world.probe_round()
    for _ in range(THRESHOLD):
        world.with_reports(ALL_OF_A, a_serving=None)
    assert [c.status for c in world.publisher.site_changes] == ["DOWN"]

    # When automation is back on but dc-a's agent now reports it alive and serving
    world.store.switch = AutomationSwitch(enabled=True)
    world.with_reports(ALL_OF_A)

    # Then the failover still waits, naming why
    assert world.workflows.started == {}
    held = world.store.condition("site/dc-a", "UP").blocked.text
    assert held.startswith("partitioned: AWS cannot reach dc-a; its agent reports it alive and serving")


def test_the_agent_reports_rule_takes_every_sites_agent_and_its_handler_the_canonical_report():
    (rule,) = [r for r in RULES if r.name == "agent-reports"]
    sample = load_event("samples/SiteAgentReport.json")
    (prefix,) = rule.pattern["source"]
    assert rule.target == "AgentReports" and rule.pattern["detail-type"] == [sample["detail-type"]]
    assert all(agent_source(site).startswith(prefix["prefix"]) for site in ("dc-a", "dc-b"))
    assert not probe_source("aws-public").startswith(prefix["prefix"]), "probe results go to Evaluate only"
    parsed = SiteAgentReportEvent.model_validate(sample)
    assert (parsed.source, parsed.detail.site) == ("dcwatch.agent.dc-a", "dc-a")
