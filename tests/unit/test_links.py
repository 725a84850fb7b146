"""The local network is the deployed one: links by placement from the topology, and scenario faults named by link."""

from __future__ import annotations

import pytest

from dcwatch.config import load_config
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.local.links import Link, describe, link_for, links, placements, select, vpc_vantage
from dcwatch.local.scenario import ScenarioError, Seen, alert_kind, check_against, judge, load_scenario
from dcwatch.topology import HOME, IN_VPC

SITES = ("dc-a", "dc-b")


@pytest.fixture(scope="module")
def demo():
    return load_config(DEMO_CONFIG)


def test_only_the_vpc_has_a_private_path_and_every_placement_has_the_internet():
    assert link_for(IN_VPC, "dc-a", "private") == Link("vpc", "dc-a", "private")
    assert link_for(IN_VPC, "dc-a", "public") == Link("vpc", "dc-a", "public")
    assert link_for(HOME, "dc-a", "public") == Link("home", "dc-a", "public")
    assert link_for(HOME, "dc-a", "private") is None, "outside the VPC a private vCenter has no path at all"


def test_the_demo_deploys_three_links_per_site_shared_by_probe_and_functions(demo):
    topology = demo.topology
    assert list(placements(topology)) == ["home", "vpc"]
    assert sorted(links(topology, SITES)) == sorted(
        [Link("home", s, "public") for s in SITES] + [Link("vpc", s, p) for s in SITES for p in ("public", "private")]
    )
    # The probe at aws-vpc and the Fence step are at the same placement: one set of links for both.
    assert topology.vantage("aws-vpc").placement == topology.placement("Fence") == IN_VPC
    assert topology.placement("SwitchDns") == HOME


def test_a_fault_named_in_the_operators_words_selects_the_links_it_means(demo):
    topology = demo.topology
    assert select(topology, SITES, vantage="aws-vpc", site="dc-b", path="private") == [Link("vpc", "dc-b", "private")]
    assert select(topology, SITES, vantage="aws-public") == [Link("home", s, "public") for s in SITES]
    assert len(select(topology, SITES, vantage="aws-vpc", site="dc-a")) == 2
    assert len(select(topology, SITES)) == 6
    assert vpc_vantage(topology) == "aws-vpc"


def test_the_demo_header_names_each_vantage_point_with_its_placement_and_check_count(demo):
    first, second = describe(demo.topology)
    assert "aws-public (home region, outside any VPC) 6 checks" in first
    assert "aws-vpc (home region, inside the VPC) 14 checks" in first
    assert "vcenter@dc-a, vcenter@dc-b" in second
    assert "the drill checks shop-home, transit-portal (at the standby's clones)" in second


def scenario(tmp_path, steps: str, expect: str = "{failover: false}"):
    path = tmp_path / "s.yaml"
    path.write_text(f"name: s\ndescription: d\nproves: p\nsteps:\n{steps}expect: {expect}\n")
    return load_scenario(path)


def test_cut_vpn_down_vantage_down_and_heal_are_steps_and_only_heal_is_no_fault(tmp_path, demo):
    spec = scenario(
        tmp_path,
        "  - at: 0\n    cut: {from: aws-vpc, site: standby, path: private}\n"
        "  - {at: 1, vpn_down: active}\n  - {at: 2, vantage_down: aws-public}\n"
        "  - {at: 3, services_down: active}\n  - at: 4\n    heal: {from: aws-public}\n  - at: 5\n    heal: {}\n",
    )
    check_against(spec, demo)
    assert [(s.action, s.is_fault) for s in spec.steps] == [
        ("cut", True),
        ("vpn_down", True),
        ("vantage_down", True),
        ("services_down", True),
        ("heal", False),
        ("heal", False),
    ]
    assert spec.steps[0].cut is not None and spec.steps[0].cut.mode == "refuse"


def test_a_private_path_from_outside_the_vpc_is_refused_naming_the_step(tmp_path, demo):
    spec = scenario(tmp_path, "  - at: 0\n    cut: {from: aws-public, site: active, path: private}\n")
    with pytest.raises(ScenarioError) as err:
        check_against(spec, demo)
    assert "steps[0].cut.path: aws-public runs in the home region, outside any VPC: it has no private path" in str(
        err.value
    )


def test_a_vpn_fault_needs_a_config_with_a_network(tmp_path, demo):
    flat = demo.model_copy(update={"network": None})
    flat.__dict__.pop("topology", None)  # computed per config: this one has no VPC
    spec = scenario(tmp_path, "  - {at: 0, vpn_down: standby}\n")
    with pytest.raises(ScenarioError) as err:
        check_against(spec, flat)
    assert "steps[0].vpn_down: this config deploys nothing inside a VPC, so there is no VPN" in str(err.value)


def test_a_vantage_point_seeing_the_sites_again_is_its_own_alert_kind():
    assert alert_kind("[dcwatch] vantage point aws-public sees the sites again") == "VANTAGE"
    assert alert_kind("[dcwatch] ISOLATED vantage point aws-public: its view is not counted") == "ISOLATED"


def test_a_failover_on_another_fencing_proof_than_the_expected_one_fails_the_scenario(tmp_path, demo):
    spec = scenario(tmp_path, "  - {at: 0, vpn_down: active}\n", "{failover: true, fencing: lease}")
    moved = dict(down=["dc-a"], alerts={}, failovers=1, active_site="dc-b", detection_s=4.5, errors=[])
    lease = "proven fenced: dc-a's lease expired (last renewed at 10:00:00) and dc-b's agent has not heard dc-a"
    assert judge(spec, demo, Seen(**moved, fencing=[lease], proofs={"dc-a-down-1": "lease"})).passed
    vcenter = Seen(**moved, fencing=["fenced dc-a: powered off shop-db-a"], proofs={"dc-a-down-1": "vcenter"})
    fenced = judge(spec, demo, vcenter)
    assert not fenced.decision_passed and "expected lease" in fenced.problems[0]
    assert not judge(spec, demo, Seen(**moved)).decision_passed, "no proof recorded: nothing proven"
