"""A failover of weighted and failover records through the state machine: the local runtime writes them as
the active site serves, the workflow moves the weight and the PRIMARY, and verifies what clients are answered."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from dcwatch.adapters.route53 import resolve
from dcwatch.local.pipeline import LocalPipeline
from tests.configs import write_pair_config

pytestmark = pytest.mark.integration

WEBSHOP, PORTAL = "webshop.example.test.", "portal.example.test."


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Iterator[LocalPipeline]:
    path = write_pair_config(
        tmp_path_factory.mktemp("routing"), name="routing", services={"webshop": {1: 1}, "portal": {1: 1}}
    )
    doc = yaml.safe_load(path.read_text())
    webshop, portal = doc["services"]
    webshop["dns"] |= {
        "routing": "weighted",
        "weighted": {
            "north": {"set_identifier": "webshop-north", "weight": 200},
            "south": {"set_identifier": "webshop-south"},
        },
    }
    portal["dns"] |= {"routing": "failover", "failover": {"primary": "portal-primary", "secondary": "portal-secondary"}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with LocalPipeline(path) as running:
        yield running


def record_sets(pipeline: LocalPipeline, name: str) -> dict[str, tuple[object, list[str]]]:
    """Set identifier -> (weight or role, values), as Route 53 lists them."""
    return {
        s.set_identifier: (s.weight if s.weight is not None else s.failover, list(s.values))
        for s in pipeline.dns.record_sets("example.test.", name, "A")
    }


def answers(pipeline: LocalPipeline, name: str) -> list[str]:
    assert pipeline.cloud.zone_server is not None
    return resolve(pipeline.cloud.zone_server.address, name, "A")


def test_a_fresh_deployment_answers_from_the_active_site_only(pipeline):
    assert record_sets(pipeline, WEBSHOP) == {
        "webshop-north": (200, ["127.0.31.1"]),
        "webshop-south": (0, ["127.0.32.1"]),
    }
    assert record_sets(pipeline, PORTAL) == {
        "portal-primary": ("PRIMARY", ["127.0.31.1"]),
        "portal-secondary": ("SECONDARY", ["127.0.32.1"]),
    }
    assert answers(pipeline, WEBSHOP) == answers(pipeline, PORTAL) == ["127.0.31.1"]


def test_a_failover_moves_the_weight_and_the_primary_to_the_standby_and_verifies_the_answers(pipeline):
    request = {
        "mode": "disaster",
        "from": "north",
        "to": "south",
        "reason": "north lost power",
        "incidentId": "manual-r-1",
    }
    described = pipeline.wait_execution(pipeline.start_failover(request, name="manual-r-1"), timeout_s=90)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert record_sets(pipeline, WEBSHOP) == {
        "webshop-north": (0, ["127.0.31.1"]),
        "webshop-south": (100, ["127.0.32.1"]),
    }
    assert record_sets(pipeline, PORTAL) == {
        "portal-primary": ("PRIMARY", ["127.0.32.1"]),
        "portal-secondary": ("SECONDARY", ["127.0.31.1"]),
    }
    assert pipeline.dns_values() == {WEBSHOP: ["127.0.32.1"], PORTAL: ["127.0.32.1"]}
    assert answers(pipeline, WEBSHOP) == answers(pipeline, PORTAL) == ["127.0.32.1"]
