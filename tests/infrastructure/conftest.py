"""Synths shared by every infrastructure test of a session: the demo and a production shape, both with the
offline placeholder for the dependency layer (fast); and the demo as a plain synth ships it, with the real one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dcwatch_infra import constants
from tests.infrastructure.synth import PLACEHOLDER, Synth, synthesize

HOME_REGION = "eu-central-1"
SECOND_REGION = "eu-west-1"
ZONE_ID = "Z0123456789ABC"
NETWORK = {
    "vpc_id": "vpc-0123456789abcdef0",
    "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
    "security_group_ids": ["sg-0123456789abcdef0"],
}


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The demo config's stack: no hosted zone ids, the placeholder dependency layer."""
    return synthesize(tmp_path_factory.mktemp("cdk.out"), **PLACEHOLDER)


@pytest.fixture(scope="session")
def deployable(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The demo config's stack with every default, as a plain `cdk deploy` builds it: the real dependency layer."""
    return synthesize(tmp_path_factory.mktemp("deployable-cdk.out"))


def production_config(directory: Path) -> Path:
    """The demo's sites with what a production deployment adds: a VPC, a second region, a 5-minute schedule."""
    doc = yaml.safe_load(constants.DEMO_CONFIG.read_text(encoding="utf-8"))
    doc["name"] = "prod"
    doc["probe"]["interval_s"] = 300
    doc["network"] = NETWORK
    doc["secondary_region"] = SECOND_REGION
    path = directory / "prod.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """As the infra team deploys: VPC probe, probe in a second region, DNS scoped to the zone's id."""
    config = production_config(tmp_path_factory.mktemp("prod-config"))
    return synthesize(
        tmp_path_factory.mktemp("prod-cdk.out"),
        **PLACEHOLDER,
        config=str(config),
        region=HOME_REGION,
        hosted_zone_ids=json.dumps({"hosting.example.": f"/hostedzone/{ZONE_ID}"}),
    )
