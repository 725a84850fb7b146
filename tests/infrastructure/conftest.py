"""Synths shared by every infrastructure test of a session: the demo, a production shape, the example config
of docs/config.md and a deployment without a network, all with the offline placeholder for the dependency
layer (fast); and the demo as a plain synth ships it, with the real one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from dcwatch_infra import constants
from tests import topology_configs
from tests.infrastructure.synth import PLACEHOLDER, Synth, synthesize

HOME_REGION = "eu-central-1"
PROD_DRILLS = "cron(0 3 ? * TUE *)"  # the production shape drills every Tuesday at 3 a.m., Berlin time
SECOND_REGION = "eu-west-1"
ZONE_ID = "Z0123456789ABC"
NETWORK = {
    "vpc_id": "vpc-0123456789abcdef0",
    "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
    "security_group_ids": ["sg-0123456789abcdef0"],
}


def _demo() -> dict[str, Any]:
    return yaml.safe_load(constants.DEMO_CONFIG.read_text(encoding="utf-8"))


def _write(directory: Path, name: str, doc: dict[str, Any]) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The demo config's stack: made-up hosted zone ids (`synthesize`), the placeholder dependency layer."""
    return synthesize(tmp_path_factory.mktemp("cdk.out"), **PLACEHOLDER)


@pytest.fixture(scope="session")
def deployable(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The demo config's stack with every default, as a plain `cdk deploy` builds it: the real dependency layer."""
    return synthesize(tmp_path_factory.mktemp("deployable-cdk.out"))


def production_config(directory: Path) -> Path:
    """The demo's sites as a production deployment has them: private vCenters and a private storage-mirror
    check per site (reached over the VPN from the VPC), public services, a second region, a 5-minute schedule;
    a weekly drill, and reports kept 800 days, locked for 400."""
    doc = _demo()
    doc["name"] = "prod"
    doc["probe"]["interval_s"] = 300
    doc["network"] = NETWORK
    doc["secondary_region"] = SECOND_REGION
    for site in doc["sites"]:
        site["vcenter"]["reach"] = "private"
        site["checks"] = [
            {
                "name": "san-mirror",
                "url": f"https://san.{site['name']}.example/api/v1/mirror/status",
                "conditions": ["[BODY].mirror.state == in-sync", "[BODY].mirror.lag_seconds < 30"],
                "reach": "private",
            }
        ]
    doc["drill"]["schedule"] = {"expression": PROD_DRILLS, "time_zone": "Europe/Berlin", "reason": "weekly drill"}
    doc["reports"] = {"retention_days": 800, "lock_days": 400}
    return _write(directory, "prod", doc)


def flat_config(directory: Path) -> Path:
    """No `network`: every endpoint public, so every function runs outside any VPC; a second region's probe
    makes the quorum of 2 reachable."""
    doc = _demo()
    doc["name"] = "flat"
    del doc["network"]
    doc["secondary_region"] = SECOND_REGION
    for site in doc["sites"]:
        site["vcenter"]["reach"] = "public"
    for drilled in doc["drill"]["services"]:  # a drill network reached without a VPC: a lab's, not production's
        for check in drilled["checks"]:
            check["reach"] = "public"
    return _write(directory, "flat", doc)


def readme_config(directory: Path) -> Path:
    """The example config of docs/config.md's "The config" chapter, its standby copies written out like dc-a's."""
    doc = topology_configs.readme()
    for service in doc["services"]:
        active = service["sites"]["dc-a"]
        standby = json.loads(json.dumps(active).replace("dc-a", "dc-b").replace("-a", "-b").replace(".10", ".20"))
        service["sites"]["dc-b"] = standby
    # A lease shorter than the approval wait plus a minute is refused by the config.
    doc["workflow"]["lease_s"] = max(doc["workflow"]["lease_s"], doc["workflow"]["approval"]["timeout_s"] + 60)
    for ca_file in _ca_files(doc):  # the private CAs it names, beside it, as the infra team keeps them
        (directory / ca_file).parent.mkdir(parents=True, exist_ok=True)
        trustme.CA().cert_pem.write_to_path(str(directory / ca_file))
    return _write(directory, "readme", doc)


def _ca_files(node: object) -> set[str]:
    if isinstance(node, dict):
        return {str(v) for k, v in node.items() if k == "ca_file"} | {f for v in node.values() for f in _ca_files(v)}
    return {f for v in node for f in _ca_files(v)} if isinstance(node, list) else set()


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


@pytest.fixture(scope="session")
def readme(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    config = readme_config(tmp_path_factory.mktemp("readme-config"))
    return synthesize(tmp_path_factory.mktemp("readme-cdk.out"), **PLACEHOLDER, config=str(config), region=HOME_REGION)


@pytest.fixture(scope="session")
def flat(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    config = flat_config(tmp_path_factory.mktemp("flat-config"))
    return synthesize(tmp_path_factory.mktemp("flat-cdk.out"), **PLACEHOLDER, config=str(config), region=HOME_REGION)
