"""The partition matrix's pieces: the links a partition cuts, its scenario steps, and how a run is judged on
both-serving time, self-fences and what the lease cost."""

from __future__ import annotations

import pytest

from dcwatch.config import load_config
from dcwatch.local.agents import agent_config
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.local.links import Link, SiteLink, between
from dcwatch.local.matrix import table
from dcwatch.local.report import lease_cost, probe_detection
from dcwatch.local.scenario import ScenarioError, Seen, check_against, judge
from tests.unit.test_links import scenario

SITES = ("dc-a", "dc-b")


@pytest.fixture(scope="module")
def demo():
    return load_config(DEMO_CONFIG)


def test_aws_and_a_site_share_every_aws_path_to_it_and_its_agents_uplink(demo):
    cut = between(demo.topology, SITES, "aws", "dc-a")
    assert sorted(str(link) for link in cut) == sorted(
        str(link)
        for link in [
            Link("home", "dc-a", "public"),
            Link("vpc", "dc-a", "public"),
            Link("vpc", "dc-a", "private"),
            SiteLink("dc-a", "uplink"),
        ]
    )
    assert len(between(demo.topology, SITES, "all", "aws")) == 8, "both sites: four links each"


def test_the_two_sites_share_the_inter_site_link_both_ways_and_customers_their_own_path(demo):
    assert between(demo.topology, SITES, "dc-a", "dc-b") == [
        SiteLink("dc-a", "inter-site"),
        SiteLink("dc-b", "inter-site"),
    ]
    assert between(demo.topology, SITES, "customers", "dc-b") == [SiteLink("dc-b", "customers")]


@pytest.mark.parametrize(
    ("one", "other", "problem"),
    [
        ("aws", "aws", "two different parties"),
        ("aws", "customers", "share no link"),
        ("dc-a", "all", "names both of them"),
        ("aws", "dc-z", "unknown party 'dc-z'"),
    ],
)
def test_a_partition_between_parties_that_share_no_link_is_refused(demo, one, other, problem):
    with pytest.raises(ValueError, match=problem):
        between(demo.topology, SITES, one, other)


def test_the_partition_steps_are_faults_and_name_their_parties_in_the_operators_words(tmp_path, demo):
    spec = scenario(
        tmp_path,
        "  - at: 0\n    partition: {between: [aws, active]}\n  - at: 0\n    partition: {between: [active, standby]}\n"
        "  - {at: 1, kill_agent: standby}\n  - {at: 2, uplink_down: all}\n  - {at: 3, vcenter_refuses_login: active}\n"
        "  - at: 4\n    heal: {between: [customers, active]}\n",
        "{failover: true, self_fenced: [active], lease_within_ttl: true}",
    )
    check_against(spec, demo)
    assert [(s.action, s.is_fault) for s in spec.steps] == [
        ("partition", True),
        ("partition", True),
        ("kill_agent", True),
        ("uplink_down", True),
        ("vcenter_refuses_login", True),
        ("heal", False),
    ]


def test_a_partition_that_cuts_nothing_and_agent_steps_without_agents_are_refused_naming_the_step(tmp_path, demo):
    spec = scenario(
        tmp_path,
        "  - at: 0\n    partition: {between: [aws, customers]}\n  - {at: 1, kill_agent: active}\n",
        "{failover: false, self_fenced: [active]}",
    )
    without_agents = demo.model_copy(update={"fencing": None})
    with pytest.raises(ScenarioError) as err:
        check_against(spec, without_agents)
    text = str(err.value)
    assert "steps[0].partition.between: aws and customers share no link" in text
    assert "steps[1].kill_agent: this config runs no site agents" in text
    assert "expect: self_fenced and lease_within_ttl need site agents" in text


def test_heal_names_a_vantage_point_or_a_partition_never_both(tmp_path):
    with pytest.raises(ScenarioError, match="either `from`.*or `between`"):
        scenario(tmp_path, "  - at: 0\n    heal: {from: aws-vpc, between: [aws, active]}\n")


CALM = dict(down=[], alerts={}, failovers=0, active_site="dc-a", detection_s=None, errors=[])


def test_any_time_both_sites_served_customers_at_once_fails_the_scenario(tmp_path, demo):
    spec = scenario(tmp_path, "  - {at: 0, kill_agent: active}\n")
    assert judge(spec, demo, Seen(**CALM)).passed
    split = judge(spec, demo, Seen(**CALM, both_serving_s=0.4))
    assert not split.decision_passed and split.both_serving_s == 0.4
    assert "both sites served customers at once for 0.4 s" in split.problems


def test_an_agent_that_fences_its_site_unexpectedly_or_too_late_fails_the_scenario(tmp_path, demo):
    quiet = scenario(tmp_path, "  - {at: 0, kill_agent: active}\n")
    assert "agents fenced ['dc-b'], expected none" in judge(quiet, demo, Seen(**CALM, self_fenced={"dc-b": 3})).problems
    cut = scenario(
        tmp_path, "  - at: 0\n    partition: {between: [aws, active]}\n", "{failover: false, self_fenced: [active]}"
    )
    assert judge(cut, demo, Seen(**CALM, self_fenced={"dc-a": 3.9})).passed
    ttl = demo.fencing.lease_ttl_s
    late = judge(cut, demo, Seen(**CALM, self_fenced={"dc-a": ttl + 1}))
    assert any("later than lease_ttl_s" in p for p in late.problems)


def test_the_lease_cost_beyond_detection_is_measured_and_bounded_by_one_ttl(tmp_path, demo):
    spec = scenario(tmp_path, "  - {at: 0, kill_site: active}\n", "{failover: false, lease_within_ttl: true}")
    # the lease last renewed before the probes had the site DOWN: AWS may act lease_ttl_s + margin_s after it
    lease = {"renewed_at": 10.0, "may_act_at": 16.2}
    assert lease_cost(lease, detected_at=15.0) == 1.2
    assert lease_cost(lease, detected_at=17.0) == 0.0, "expired by the time of the detection: no cost"
    assert lease_cost(lease, detected_at=9.0) is None, "renewed after the detection: no lease proof was possible"
    assert judge(spec, demo, Seen(**CALM, lease_cost_s=1.2)).passed
    assert not judge(spec, demo, Seen(**CALM, lease_cost_s=demo.fencing.lease_ttl_s + 0.5)).passed
    assert not judge(spec, demo, Seen(**CALM)).passed, "expected and not measured"


def test_the_probes_detect_a_site_after_failures_to_down_rounds_in_a_row_from_the_quorum(demo):
    site_checks = {v.name: {c for c in v.checks if c[0] == "dc-a"} for v in demo.topology.vantage_points}
    every = dict(site_checks)
    one_only = {"aws-vpc": site_checks["aws-vpc"]}
    rounds = [(1.0, every), (3.0, every), (5.0, one_only), (7.0, every), (9.0, every), (11.0, every)]
    # before the fault nothing counts; a round seen DOWN from one vantage point only breaks the streak
    assert probe_detection(demo, rounds, "dc-a", fault_at=2.0) == 9.0
    assert probe_detection(demo, rounds[:5], "dc-a", fault_at=8.0) is None
    assert probe_detection(demo, rounds, "dc-a", fault_at=None) is None


def test_the_matrix_table_has_a_both_serving_column_and_prints_the_lease_cost_next_to_the_detection(tmp_path, demo):
    spec = scenario(tmp_path, "  - {at: 0, kill_site: active}\n", "{failover: true}")
    seen = Seen(down=["dc-a"], alerts={}, failovers=1, active_site="dc-b", detection_s=4.4, errors=[])
    report = {"verdict": judge(spec, demo, seen).row(), "summary": {"lease_cost_s": 1.6, "probe_detection_s": 3.9}}
    header, _, row = table([report])
    columns = [c.strip() for c in header.split(" | ")]
    assert columns[3:5] == ["detection", "both serving (s)"]
    cells = [c.strip() for c in row.split(" | ")]
    assert cells[3] == "4.40 s (floor 4 s; probes 3.9 s, lease +1.6 s)" and cells[4] == "0.00"


def test_each_agent_reads_the_key_and_its_credentials_from_files_and_reaches_its_peer_over_the_link(demo, tmp_path):
    data = demo.model_dump(mode="json")
    routed = agent_config(data, "dc-a", tmp_path, "http://127.0.0.1:4711", tmp_path / "dc-a-vcenter.json")
    fencing = routed["fencing"]
    assert fencing["secret_file"] == str(tmp_path / "dcwatch-agent.key") and fencing["secret_id"] is None
    assert fencing["agents"]["dc-b"]["url"] == "http://127.0.0.1:4711"
    assert fencing["agents"]["dc-a"]["url"] is None, "its own listen address stays as configured"
    assert fencing["agents"]["dc-a"]["vcenter_credentials_file"] == str(tmp_path / "dc-a-vcenter.json")
    assert data["fencing"]["agents"]["dc-b"]["url"] is None, "the deployed config is left as it is"
