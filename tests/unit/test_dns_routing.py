"""Weighted and failover records: the config names what is missing, the switch writes every record set."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime

import pytest
import yaml

from dcwatch.adapters.route53 import resource_record_set
from dcwatch.config import ConfigError, parse_config
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.ports import RecordValues
from dcwatch.recovery import steps
from dcwatch.recovery.plan import build_plan, describe_plan
from dcwatch.routing import answered_values, pick
from tests.unit.fakes import Clock, FakeDns

DEMO = yaml.safe_load(DEMO_CONFIG.read_text())
SHOP = "shop.hosting.example."
WEIGHTED = {"dc-a": {"set_identifier": "shop-a", "weight": 100}, "dc-b": {"set_identifier": "shop-b", "weight": 50}}
FAILOVER = {"primary": "shop-primary", "secondary": "shop-secondary"}


def with_shop_dns(**dns) -> dict:
    doc = copy.deepcopy(DEMO)
    doc["services"][0]["dns"].update(dns)
    return doc


def problems_of(doc) -> dict[str, str]:
    with pytest.raises(ConfigError) as refused:
        parse_config(doc, "sites.yaml")
    return dict(refused.value.problems)


def shop_record(doc, source="dc-a", target="dc-b"):
    return next(r for r in build_plan(parse_config(doc), source, target).records if r.name == SHOP)


def test_a_record_is_simple_unless_it_says_otherwise():
    record = shop_record(DEMO)
    assert (record.routing, record.record_sets()) == (
        "simple",
        [RecordValues("hosting.example.", SHOP, "A", 60, ("127.0.20.1",))],
    )


def test_a_weighted_record_without_its_record_sets_is_refused_naming_the_field():
    problems = problems_of(with_shop_dns(routing="weighted"))
    assert list(problems) == ["services[0].dns.weighted"]
    assert "set_identifier and weight" in problems["services[0].dns.weighted"]


def test_a_weighted_record_needs_one_record_set_per_site_each_with_its_own_identifier():
    problems = problems_of(with_shop_dns(routing="weighted", weighted={"dc-a": WEIGHTED["dc-a"]}))
    assert problems == {"services[0].dns.weighted": "needs exactly the sites ['dc-a', 'dc-b'], got ['dc-a']"}
    same = {site: {"set_identifier": "shop", "weight": 10} for site in ("dc-a", "dc-b")}
    problems = problems_of(with_shop_dns(routing="weighted", weighted=same))
    assert "its own set_identifier" in problems["services[0].dns.weighted"]


def test_a_serving_weight_of_zero_is_refused_as_it_would_send_nobody():
    weighted = copy.deepcopy(WEIGHTED)
    weighted["dc-b"]["weight"] = 0
    problems = problems_of(with_shop_dns(routing="weighted", weighted=weighted))
    assert list(problems) == ["services[0].dns.weighted.dc-b.weight"]


def test_a_failover_record_needs_two_different_set_identifiers():
    assert list(problems_of(with_shop_dns(routing="failover"))) == ["services[0].dns.failover"]
    problems = problems_of(with_shop_dns(routing="failover", failover={"primary": "x", "secondary": "x"}))
    assert problems == {"services[0].dns.failover": "primary and secondary are both 'x'"}


def test_record_sets_of_another_routing_are_refused():
    problems = problems_of(with_shop_dns(failover=FAILOVER))
    assert problems == {
        "services[0].dns.failover": "only a failover record has failover record sets, this one is routing simple"
    }


def test_a_drill_record_is_always_a_simple_record():
    doc = copy.deepcopy(DEMO)
    doc["drill"]["services"][0]["dns"].update(routing="failover", failover=FAILOVER)
    problems = problems_of(doc)
    assert list(problems) == ["drill.services[0].dns.routing"]


def test_the_switch_of_a_weighted_record_gives_the_target_its_weight_and_the_failed_site_zero():
    record = shop_record(with_shop_dns(routing="weighted", weighted=WEIGHTED))
    assert record.values == ["127.0.20.1"]
    assert [(s.set_identifier, s.weight, s.values) for s in record.record_sets()] == [
        ("shop-b", 50, ("127.0.20.1",)),
        ("shop-a", 0, ("127.0.10.1",)),
    ]
    back = shop_record(with_shop_dns(routing="weighted", weighted=WEIGHTED), "dc-b", "dc-a")
    assert [(s.set_identifier, s.weight) for s in back.record_sets()] == [("shop-a", 100), ("shop-b", 0)]


def test_the_switch_of_a_failover_record_makes_the_target_the_primary():
    record = shop_record(with_shop_dns(routing="failover", failover=FAILOVER))
    assert [(s.set_identifier, s.failover, s.values) for s in record.record_sets()] == [
        ("shop-primary", "PRIMARY", ("127.0.20.1",)),
        ("shop-secondary", "SECONDARY", ("127.0.10.1",)),
    ]


def test_the_change_batch_names_the_set_and_its_weight_or_role():
    weighted = RecordValues("hosting.example.", SHOP, "A", 60, ("127.0.20.1",), "shop-b", 50)
    primary = RecordValues("hosting.example.", SHOP, "A", 60, ("127.0.20.1",), "shop-primary", failover="PRIMARY")
    simple = RecordValues("hosting.example.", SHOP, "A", 60, ("127.0.20.1",))
    assert resource_record_set(weighted) == {
        "Name": SHOP,
        "Type": "A",
        "TTL": 60,
        "SetIdentifier": "shop-b",
        "Weight": 50,
        "ResourceRecords": [{"Value": "127.0.20.1"}],
    }
    assert resource_record_set(primary)["Failover"] == "PRIMARY" and "Weight" not in resource_record_set(primary)
    assert set(resource_record_set(simple)) == {"Name", "Type", "TTL", "ResourceRecords"}


def test_a_weighted_name_answers_only_from_its_non_zero_weights_and_a_failover_name_from_its_primary():
    def at(values, **routing):
        return RecordValues("z.", SHOP, "A", 60, values, routing.pop("set_identifier", "s"), **routing)

    weighted = [at(("10.0.0.1",), set_identifier="a", weight=0), at(("10.0.0.2",), set_identifier="b", weight=7)]
    rng = random.Random(1)
    assert {pick(weighted, rng).values for _ in range(20)} == {("10.0.0.2",)}
    all_zero = [at(("10.0.0.1",), set_identifier="a", weight=0), at(("10.0.0.2",), set_identifier="b", weight=0)]
    assert answered_values(all_zero) == ["10.0.0.1", "10.0.0.2"], "all weights 0: every set answers"
    failover = [at(("10.0.0.1",), failover="SECONDARY"), at(("10.0.0.2",), failover="PRIMARY")]
    assert answered_values(failover) == ["10.0.0.2"]
    assert pick([]) is None


def test_a_failover_over_weighted_records_switches_and_verifies_the_answers():
    clock = Clock(datetime(2026, 11, 25, 3, 0, tzinfo=UTC))
    dns = FakeDns()
    config = parse_config(with_shop_dns(routing="weighted", weighted=WEIGHTED))
    state = steps.validate_request(
        {"mode": "disaster", "from": "dc-a", "to": "dc-b", "reason": "dc-a lost power"}, config, clock
    )
    state = steps.check_dns(steps.switch_dns(state, dns, 300, clock), dns, clock)
    assert state.progress.dns_in_sync
    assert dns.records[SHOP] == ("127.0.20.1",)
    assert "weights: shop-b 50, shop-a 0" in next(e.detail for e in state.timeline if e.step == "SwitchDns")


def test_the_announced_plan_says_which_weights_and_which_primary_the_switch_writes():
    weighted = build_plan(parse_config(with_shop_dns(routing="weighted", weighted=WEIGHTED)), "dc-a", "dc-b")
    failover = build_plan(parse_config(with_shop_dns(routing="failover", failover=FAILOVER)), "dc-a", "dc-b")
    assert f"switch {SHOP} (A, weighted: shop-b weight 50, shop-a weight 0) to 127.0.20.1" in describe_plan(weighted)
    assert f"switch {SHOP} (A, failover: shop-primary PRIMARY) to 127.0.20.1" in describe_plan(failover)
