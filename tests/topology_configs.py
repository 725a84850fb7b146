"""Four config shapes whose topology the tests state, shared by the unit and infrastructure tiers.

Each function returns a fresh config document (a dict, as `parse_config` and `write` take it):
- `demo()`: the embedded demo (network, private vCenters, public services);
- `readme()`: the example of docs/config.md's "The config" chapter (network and secondary_region);
- `production()`: network + secondary_region, a private vCenter and a private storage mirror check
  (`sites[].checks` with `sites[].storage`) at each site, public services;
- `without_network()`: no VPC, vCenters `reach: public`, secondary_region so that quorum 2 can be met.
`CONFIGS` names them; `write(directory, name)` puts one in a YAML file and returns its path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from dcwatch.local.demo import DEMO_CONFIG

CONFIG_DOC = Path(__file__).resolve().parents[1] / "docs" / "config.md"
NETWORK = {
    "vpc_id": "vpc-0a1b2c3d4e5f60718",
    "subnet_ids": ["subnet-0a1b2c3d4e5f60718", "subnet-0a1b2c3d4e5f60719"],
    "security_group_ids": ["sg-0a1b2c3d4e5f60718"],
}


def demo() -> dict[str, Any]:
    return yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))


def readme() -> dict[str, Any]:
    """The first YAML block of docs/config.md's "The config" chapter, as an operator would copy it."""
    chapter = CONFIG_DOC.read_text(encoding="utf-8").split("\n## The config\n", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", chapter, re.S)
    assert block is not None, "docs/config.md: no yaml block under '## The config'"
    return yaml.safe_load(block.group(1))


def _site(name: str, octet: int) -> dict[str, Any]:
    return {
        "name": name,
        "vcenter": {"url": f"https://vcenter.{name}.example/sdk", "credentials_secret": f"dcwatch/{name}/vcenter"},
        "checks": [
            {
                "name": "san-mirror",
                "url": f"https://10.{octet}.0.20:8443/api/v1/mirror/status",
                "conditions": ["[BODY].mirror.state == in-sync"],
            }
        ],
        "storage": {"check": "san-mirror", "max_lag_s": 60},
    }


def _service(name: str, number: int) -> dict[str, Any]:
    addresses = {"dc-a": f"192.0.2.{number}", "dc-b": f"198.51.100.{number}"}
    return {
        "name": name,
        "dns": {"zone": "hosting.example.", "name": f"{name}.hosting.example.", "ttl": 60},
        "sites": {
            site: {
                "dns_values": [address],
                "checks": [{"name": f"{name}-home", "url": f"https://{address}/health", "timeout_s": 3}],
                "vms": [{"name": f"{name}-{site}", "group": 1}],
            }
            for site, address in addresses.items()
        },
    }


def production() -> dict[str, Any]:
    return {
        "name": "prod",
        "active_site": "dc-a",
        "sites": [_site("dc-a", 10), _site("dc-b", 20)],
        "services": [_service("shop", 10), _service("portal", 11)],
        "network": dict(NETWORK),
        "secondary_region": "eu-west-1",
        "alerts": {"email": ["noc@hosting.example"]},
    }


def without_network() -> dict[str, Any]:
    doc = production() | {"name": "flat"}
    del doc["network"]
    for site in doc["sites"]:
        site["vcenter"]["reach"] = "public"
        site["checks"][0]["reach"] = "public"
    return doc


CONFIGS: dict[str, Callable[[], dict[str, Any]]] = {
    "demo": demo,
    "readme": readme,
    "production": production,
    "without-network": without_network,
}


def write(directory: Path, name: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(CONFIGS[name](), sort_keys=False), encoding="utf-8")
    return path
