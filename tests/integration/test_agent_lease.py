"""The site lease in DynamoDB (moto): conditional writes decide who holds a site's lease, and a renewal
gives up within its deadline when AWS does not answer."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from dcwatch.adapters.agent_aws import DynamoSiteLeases, LeaseRefused, bounded_client, site_lease_key
from dcwatch.local.cloud import create_tables, free_port
from tests.helpers import moto_credentials

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


@pytest.fixture
def locks(monkeypatch):
    moto_credentials(monkeypatch)
    with mock_aws():
        client = boto3.client("dynamodb")
        yield create_tables(client, "itest")["Locks"], client


def test_an_agent_takes_and_renews_its_sites_lease_with_what_it_sees(locks):
    table, client = locks
    leases = DynamoSiteLeases(table, "north", client)
    first = leases.renew("north@vm1", 30, T0, sees_peer=True, serving=True, state="SERVING")
    again = leases.renew("north@vm1", 30, T0 + timedelta(seconds=5), sees_peer=False, serving=True, state="DEGRADED")
    assert first.expires_at == T0 + timedelta(seconds=30)
    stored = leases.read()
    assert stored is not None
    assert (stored.agent_id, stored.renewed_at, stored.expires_at) == ("north@vm1", again.renewed_at, again.expires_at)
    assert (stored.sees_peer, stored.serving, stored.state) == (False, True, "DEGRADED")
    item = client.get_item(TableName=table, Key={"pk": {"S": site_lease_key("north")}})["Item"]
    assert item["expiresAt"] == {"N": str(int((T0 + timedelta(seconds=35)).timestamp()))}  # the table's TTL attribute


def test_another_agent_cannot_renew_a_live_lease_and_takes_it_over_only_after_expiry(locks):
    table, client = locks
    DynamoSiteLeases(table, "north", client).renew("north@vm1", 30, T0, sees_peer=True, serving=True, state="SERVING")
    # Given an agent of the other site (or a second copy) writing north's lease item
    intruder = DynamoSiteLeases(table, "north", client)
    with pytest.raises(LeaseRefused) as refused:
        intruder.renew("south@vm2", 30, T0 + timedelta(seconds=29), sees_peer=True, serving=True, state="SERVING")
    assert refused.value.holder is not None and refused.value.holder.agent_id == "north@vm1"
    assert intruder.read().agent_id == "north@vm1"
    # Then once north's lease has expired it may be taken over
    taken = intruder.renew("north@vm2", 30, T0 + timedelta(seconds=31), sees_peer=True, serving=True, state="SERVING")
    assert taken.agent_id == intruder.read().agent_id == "north@vm2"
    with pytest.raises(LeaseRefused):
        DynamoSiteLeases(table, "north", client).renew(
            "north@vm1", 30, T0 + timedelta(seconds=32), sees_peer=True, serving=True, state="SERVING"
        )


def test_each_site_has_its_own_lease_item(locks):
    table, client = locks
    DynamoSiteLeases(table, "north", client).renew("north@vm1", 30, T0, sees_peer=True, serving=True, state="SERVING")
    south = DynamoSiteLeases(table, "south", client)
    south.renew("south@vm1", 30, T0, sees_peer=True, serving=True, state="SERVING")
    assert south.read().site == "south" and south.read("north").agent_id == "north@vm1"


def test_a_renewal_against_an_aws_endpoint_that_refuses_fails_within_its_deadline(monkeypatch):
    moto_credentials(monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    leases = DynamoSiteLeases("itest-locks", "north", bounded_client("dynamodb", 0.5))
    started = time.monotonic()
    with pytest.raises(Exception, match="(?i)connect"):
        leases.renew("north@vm1", 30, T0, sees_peer=True, serving=True, state="SERVING")
    assert time.monotonic() - started < 2.0
