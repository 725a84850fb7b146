"""Weighted and failover records in Route 53 (moto), answered by the loopback zone server as Route 53 would."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import boto3
import pytest
import yaml
from moto import mock_aws

from dcwatch.adapters.route53 import Route53Dns, resolve
from dcwatch.config import parse_config
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.local.zone_server import ZoneServer
from dcwatch.recovery import steps
from dcwatch.recovery.plan import records_at
from dcwatch.recovery.state import WorkflowState
from tests.helpers import moto_credentials
from tests.unit.fakes import Clock

pytestmark = pytest.mark.integration
ZONE, SHOP = "hosting.example.", "shop.hosting.example."
T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
DISASTER = {"mode": "disaster", "from": "dc-a", "to": "dc-b", "reason": "dc-a lost power"}


@pytest.fixture(autouse=True)
def aws(monkeypatch):
    moto_credentials(monkeypatch)
    with mock_aws():
        yield


@pytest.fixture
def zone_server():
    route53 = boto3.client("route53")
    route53.create_hosted_zone(Name=ZONE, CallerReference="routing")
    server = ZoneServer(route53).start()
    yield server
    server.stop()


def config_with_shop(**dns):
    doc = yaml.safe_load(DEMO_CONFIG.read_text())
    doc["services"][0]["dns"].update(copy.deepcopy(dns))
    return parse_config(doc)


WEIGHTED = config_with_shop(
    routing="weighted",
    weighted={"dc-a": {"set_identifier": "shop-a", "weight": 100}, "dc-b": {"set_identifier": "shop-b", "weight": 80}},
)
FAILOVER = config_with_shop(routing="failover", failover={"primary": "shop-primary", "secondary": "shop-secondary"})


def listed(name: str) -> dict[str, dict]:
    route53 = boto3.client("route53")
    zone_id = Route53Dns().zone_id(ZONE)
    sets = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {s["SetIdentifier"]: s for s in sets if s["Name"] == name}


def fail_over(config, zone_server) -> WorkflowState:
    """Seed the records as dc-a serves them, then run SwitchDns and CheckDns to dc-b."""
    dns = Route53Dns(resolver=zone_server.address)
    dns.upsert([s for r in records_at(config, "dc-a") for s in r.record_sets()])
    clock = Clock(T0)
    state = steps.validate_request(DISASTER, config, clock)
    return steps.check_dns(steps.switch_dns(state, dns, 300, clock), dns, clock)


def test_a_weighted_record_starts_at_the_active_site_and_answers_only_there(zone_server):
    Route53Dns().upsert([s for r in records_at(WEIGHTED, "dc-a") for s in r.record_sets()])
    assert {k: v["Weight"] for k, v in listed(SHOP).items()} == {"shop-a": 100, "shop-b": 0}
    answers = {tuple(resolve(zone_server.address, SHOP, "A")) for _ in range(10)}
    assert answers == {("127.0.10.1",)}, "a weight of 0 is never answered"


def test_a_failover_of_a_weighted_record_moves_the_weight_and_is_verified_by_its_answers(zone_server):
    state = fail_over(WEIGHTED, zone_server)
    assert {k: (v["Weight"], v["ResourceRecords"]) for k, v in listed(SHOP).items()} == {
        "shop-a": (0, [{"Value": "127.0.10.1"}]),
        "shop-b": (80, [{"Value": "127.0.20.1"}]),
    }
    assert state.progress.dns_in_sync
    assert resolve(zone_server.address, SHOP, "A") == ["127.0.20.1"]
    assert Route53Dns().values(ZONE, SHOP, "A") == ["127.0.20.1"]


def test_a_failover_of_a_failover_record_makes_the_standby_the_primary(zone_server):
    Route53Dns().upsert([s for r in records_at(FAILOVER, "dc-a") for s in r.record_sets()])
    assert resolve(zone_server.address, SHOP, "A") == ["127.0.10.1"]
    state = fail_over(FAILOVER, zone_server)
    assert {k: (v["Failover"], v["ResourceRecords"]) for k, v in listed(SHOP).items()} == {
        "shop-primary": ("PRIMARY", [{"Value": "127.0.20.1"}]),
        "shop-secondary": ("SECONDARY", [{"Value": "127.0.10.1"}]),
    }
    assert state.progress.dns_in_sync
    assert resolve(zone_server.address, SHOP, "A") == ["127.0.20.1"], "PRIMARY answers, SECONDARY never"


def test_lowering_the_ttl_keeps_every_record_set_with_its_weight(zone_server):
    dns = Route53Dns(resolver=zone_server.address)
    dns.upsert([s for r in records_at(WEIGHTED, "dc-a") for s in r.record_sets()])
    state = steps.validate_request({**DISASTER, "mode": "migration"}, WEIGHTED, Clock(T0))
    steps.lower_ttl(state, dns, 30, Clock(T0))
    assert {k: (v["Weight"], v["TTL"]) for k, v in listed(SHOP).items()} == {"shop-a": (100, 30), "shop-b": (0, 30)}
