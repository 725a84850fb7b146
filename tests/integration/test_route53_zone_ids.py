"""The Route 53 adapter changes the hosted zone it is given by id: where a public and a private zone share a name
(split horizon), the right one changes and no zone is ever looked up by name."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dcwatch.adapters.route53 import Route53Dns
from dcwatch.ports import RecordValues
from tests.helpers import moto_credentials

pytestmark = pytest.mark.integration

ZONE = "hosting.example."
SHOP = RecordValues(ZONE, "shop.hosting.example.", "A", 60, ("127.0.20.1",))


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    moto_credentials(monkeypatch)
    with mock_aws():
        yield


@pytest.fixture
def route53() -> Any:
    return boto3.client("route53")


@pytest.fixture
def split_horizon(route53: Any) -> dict[str, str]:
    """A public and a private zone of the same name: their ids by kind."""
    vpc = boto3.client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    public = route53.create_hosted_zone(Name=ZONE, CallerReference="public")["HostedZone"]["Id"]
    private = route53.create_hosted_zone(
        Name=ZONE,
        CallerReference="private",
        VPC={"VPCRegion": route53.meta.region_name, "VPCId": vpc},
        HostedZoneConfig={"Comment": "inside", "PrivateZone": True},
    )["HostedZone"]["Id"]
    return {"public": public.split("/")[-1], "private": private.split("/")[-1]}


def lookups_by_name(client: Any) -> list[str]:
    """Every ListHostedZonesByName the client sends, recorded by botocore's own event hook."""
    seen: list[str] = []
    client.meta.events.register(
        "before-call.route53.ListHostedZonesByName", lambda params, **_: seen.append(params["DNSName"])
    )
    return seen


def shop_values(route53: Any, zone_id: str) -> list[str]:
    sets = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return [r["Value"] for s in sets if s["Name"] == SHOP.name for r in s["ResourceRecords"]]


@pytest.mark.parametrize("kind", ["private", "public"])
def test_the_zone_given_by_id_is_the_one_changed_never_its_namesake(
    route53: Any, split_horizon: dict[str, str], kind: str
):
    other = "public" if kind == "private" else "private"
    looked_up = lookups_by_name(route53)
    dns = Route53Dns(route53, zone_ids={ZONE: split_horizon[kind]})

    [change] = dns.upsert([SHOP])

    assert dns.in_sync([change])
    assert shop_values(route53, split_horizon[kind]) == ["127.0.20.1"]
    assert shop_values(route53, split_horizon[other]) == [], f"the {other} zone of the same name is untouched"
    assert dns.values(ZONE, SHOP.name, "A") == ["127.0.20.1"], "reads go to the same zone"
    assert looked_up == [], "no zone is looked up by name when the ids are given"


def refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The structured "hosted zone refused" log lines of the run (their fields are the record's attributes)."""
    return [r for r in caplog.records if r.getMessage() == "hosted zone refused"]


def test_a_zone_without_a_given_id_is_refused_not_looked_up(
    route53: Any, split_horizon: dict[str, str], caplog: pytest.LogCaptureFixture
):
    looked_up = lookups_by_name(route53)
    dns = Route53Dns(route53, zone_ids={"other.example.": "Z0000000000009"})
    with pytest.raises(LookupError, match=f"no hosted zone id given for {ZONE}"):
        dns.upsert([SHOP])
    assert looked_up == []
    assert all(shop_values(route53, zone_id) == [] for zone_id in split_horizon.values()), "nothing changed"
    [refused] = refusals(caplog)
    assert (refused.zone, refused.reason, refused.given) == (ZONE, "no id given for it", ["other.example."])


def test_without_ids_a_name_two_zones_share_is_refused_rather_than_guessed(
    route53: Any, split_horizon: dict[str, str], caplog: pytest.LogCaptureFixture
):
    with pytest.raises(LookupError, match=f"2 hosted zones are named {ZONE}"):
        Route53Dns(route53).upsert([SHOP])
    assert all(shop_values(route53, zone_id) == [] for zone_id in split_horizon.values()), "nothing changed"
    [refused] = refusals(caplog)
    assert refused.reason == "a name several zones share"
    assert sorted(refused.zone_ids) == sorted(split_horizon.values())


def test_zone_ids_match_whatever_the_case_and_the_trailing_dot(route53: Any, split_horizon: dict[str, str]):
    dns = Route53Dns(route53, zone_ids={"Hosting.Example": f"/hostedzone/{split_horizon['private']}"})
    assert dns.zone_id(ZONE) == split_horizon["private"]
