"""Configs for tests: two sites on free loopback ports, with names and shapes unlike the demo's."""

from __future__ import annotations

from pathlib import Path

import yaml

from dcwatch.local.cloud import free_port


def write_pair_config(
    directory: Path,
    *,
    name: str = "itest",
    sites: tuple[str, str] = ("north", "south"),
    services: dict[str, dict[int, int]] | None = None,
) -> Path:
    """A two-site config on free loopback ports. `services` maps service -> {group: VM count}."""
    services = services or {"webshop": {1: 1, 2: 2}, "portal": {2: 1, 3: 1}}
    addresses = {sites[0]: "127.0.31.1", sites[1]: "127.0.32.1"}
    doc: dict = {
        "name": name,
        "active_site": sites[0],
        "sites": [
            {"name": s, "vcenter": {"url": f"http://127.0.0.1:{free_port()}/sdk", "credentials_secret": f"{name}/{s}"}}
            for s in sites
        ],
        "services": [],
        "thresholds": {"failures_to_down": 2, "successes_to_up": 1},
        "probe": {"interval_s": 1, "vantage": "itest"},
        # Production-shaped: private vCenters reached from the VPC, public services (see dcwatch.topology).
        "network": {
            "vpc_id": "vpc-0a1b2c3d4e5f60718",
            "subnet_ids": ["subnet-0a1b2c3d4e5f60718"],
            "security_group_ids": ["sg-0a1b2c3d4e5f60718"],
        },
        "workflow": {"poll_s": 1, "group_timeout_s": 20, "dns_timeout_s": 20},
        "alerts": {"email": ["ops@example.test"]},
    }
    for service, groups in services.items():
        port = free_port()
        doc["services"].append(
            {
                "name": service,
                "dns": {"zone": "example.test.", "name": f"{service}.example.test.", "ttl": 30},
                "sites": {
                    s: {
                        "dns_values": [addresses[s]],
                        "checks": [
                            {
                                "name": f"{service}-up",
                                "url": f"http://{addresses[s]}:{port}/",
                                "body_contains": "OK",
                                "timeout_s": 0.5,
                            }
                        ],
                        "vms": [
                            {"name": f"{service}-g{g}-{i}-{s}", "group": g}
                            for g, count in sorted(groups.items())
                            for i in range(count)
                        ],
                    }
                    for s in sites
                },
            }
        )
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path
