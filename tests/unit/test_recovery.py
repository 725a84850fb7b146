"""Failover requests are checked before anything moves; the plan follows the config."""

from __future__ import annotations

import pytest

from dcwatch.errors import InvalidRequest
from dcwatch.recovery.plan import build_plan, describe_plan
from dcwatch.recovery.request import parse_request
from tests.helpers import demo_config

GOOD = {"action": "failover", "from": "dc-a", "to": "dc-b", "reason": "site fire"}


def test_a_documented_request_is_accepted_with_safe_defaults():
    request = parse_request(GOOD, demo_config())
    assert (request.from_site, request.to, request.dry_run, request.trigger) == ("dc-a", "dc-b", False, "manual")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"to": "dc-z"}, "to: unknown site 'dc-z'; known sites: dc-a, dc-b"),
        ({"from": "dc-b", "to": "dc-b"}, "from and to are both 'dc-b'"),
        ({"action": "reboot"}, "action: Input should be 'failover'"),
        ({"reason": ""}, "reason: String should have at least 3 characters"),
        ({"dryRun": "maybe"}, "dryRun: Input should be a valid boolean"),
    ],
)
def test_a_bad_request_is_refused_with_the_field_and_the_problem(change, message):
    with pytest.raises(InvalidRequest, match=message.replace("(", r"\(")):
        parse_request({**GOOD, **change}, demo_config())


def test_every_problem_of_a_request_is_named_at_once():
    with pytest.raises(InvalidRequest) as refused:
        parse_request({"action": "failover", "from": "x", "to": "y"}, demo_config())
    text = str(refused.value)
    assert "reason: Field required" in text and "from: unknown site 'x'" in text and "to: unknown site 'y'" in text


def test_a_request_that_is_not_an_object_is_refused():
    with pytest.raises(InvalidRequest, match="JSON object"):
        parse_request(["failover"], demo_config())


def test_the_plan_powers_on_the_standby_copies_group_by_group_and_points_dns_at_the_standby():
    plan = build_plan(demo_config(), "dc-a", "dc-b")
    assert plan.groups == [
        ["shop-db-b", "transit-db-b"],
        ["radio-stream-b", "shop-web-b1", "shop-web-b2"],
        ["transit-app-b"],
    ]
    assert {r.name: r.values for r in plan.records} == {
        "shop.hosting.example.": ["127.0.20.1"],
        "radio.hosting.example.": ["127.0.20.1"],
        "transit.hosting.example.": ["127.0.20.1"],
    }
    assert describe_plan(plan)[2] == "  group 1: shop-db-b, transit-db-b"


def test_the_plan_fences_every_vm_of_the_failed_site_first():
    plan = build_plan(demo_config(), "dc-a", "dc-b")
    assert plan.fence == sorted(vm.name for _, at in demo_config().services_at("dc-a") for vm in at.vms)
    assert describe_plan(plan)[0].startswith(
        "fence dc-a where its vCenter answers: power off radio-stream-a, shop-db-a"
    )
