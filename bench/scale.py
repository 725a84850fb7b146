"""Generated configs of any size: `python -m bench.scale --checks 1000 --vantages 3 --out big.yaml`.

Two sites on loopback, `services` services, the checks spread evenly over services and sites (each a path of
its service's endpoint, so the local runtime serves them all; the default 3 s timeout), private vCenters reached
from the VPC, a site agent at each site (`fencing`). Three vantage points: aws-public, aws-vpc (`network`) and
aws-<region> (`secondary_region`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from dcwatch.local.cloud import free_port

SITES = ("dc-a", "dc-b")
ADDRESSES = {"dc-a": "127.0.51.1", "dc-b": "127.0.52.1"}


def scaled_config(checks: int, vantages: int = 3, interval_s: int = 10, services: int | None = None) -> dict[str, Any]:
    """A config of about `checks` service checks in all (both sites), seen from 1 to 3 vantage points."""
    services = services or (1 if checks < 40 else 4)
    per_site = max(1, round(checks / (services * len(SITES))))
    doc: dict[str, Any] = {
        "name": f"scale{checks}",
        "active_site": SITES[0],
        "sites": [
            {"name": s, "vcenter": {"url": f"http://127.0.0.1:{free_port()}/sdk", "credentials_secret": f"scale/{s}"}}
            for s in SITES
        ],
        "services": [],
        "thresholds": {"failures_to_down": 2, "successes_to_up": 2},
        # Per-check metrics off: at 1,000 checks they are 2,000 custom metrics ($600 a month, `dcwatch cost`).
        "probe": {"interval_s": interval_s, "vantage": "local", "check_metrics": False},
        "workflow": {"poll_s": 1, "group_timeout_s": 120, "dns_timeout_s": 60},
        # The three voters, as the demo runs them: each site's agent renews its lease and fences its site.
        "fencing": {
            "renew_s": 1.5,
            "lease_ttl_s": 6,
            "margin_s": 1.5,
            "max_skew_s": 2,
            "proof_waits": 3,
            "secret_file": "dcwatch-agent.key",
            "agents": {site: {"listen": f"127.0.0.1:{free_port()}"} for site in SITES},
        },
    }
    if vantages >= 2:
        doc["network"] = {
            "vpc_id": "vpc-0a0a0a0a0a0a0a0a0",
            "subnet_ids": ["subnet-0a0a0a0a0a0a0a0a0"],
            "security_group_ids": ["sg-0a0a0a0a0a0a0a0a0"],
        }
    if vantages >= 3:
        doc["secondary_region"] = "eu-west-1"
    if vantages == 1:
        doc["thresholds"] |= {"quorum": 1, "allow_single_vantage": True}
        for site in doc["sites"]:
            site["vcenter"]["reach"] = "public"
    for n in range(services):
        port = free_port()
        doc["services"].append(
            {
                "name": f"svc{n}",
                "dns": {"zone": "scale.example.", "name": f"svc{n}.scale.example.", "ttl": 30},
                "sites": {
                    site: {
                        "dns_values": [ADDRESSES[site]],
                        "checks": [
                            {"name": f"svc{n}-c{i:04d}", "url": f"http://{ADDRESSES[site]}:{port}/c{i}"}
                            for i in range(per_site)
                        ],
                        "vms": [{"name": f"svc{n}-{site}", "group": 1}],
                    }
                    for site in SITES
                },
            }
        )
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--vantages", type=int, default=3, choices=(1, 2, 3))
    parser.add_argument("--interval-s", type=int, default=10)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    doc = scaled_config(args.checks, args.vantages, args.interval_s)
    args.out.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    print(args.out)


if __name__ == "__main__":
    main()
