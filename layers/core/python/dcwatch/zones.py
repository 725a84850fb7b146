"""The Route 53 records a deployment changes, and the hosted zone ids its functions are given.

Two kinds of change, never mixed: a recovery UPSERTs the production records (SwitchDns, LowerTtl); a drill
UPSERTs its drill records and its cleanup restores or DELETEs them. The stack grants each exactly its records
(`route53:ChangeResourceRecordSets*` condition keys), so a forged plan cannot move another record.

The functions address zones by id, never by name: a public and a private zone may share a name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dcwatch.config import Config, DnsRecord

# JSON {"zone.": "hosted zone id", ...}: what the stack (or the local runtime) gives every function.
ENV_HOSTED_ZONE_IDS = "DCWATCH_HOSTED_ZONE_IDS"

UPSERT = "UPSERT"
DELETE = "DELETE"


@dataclass(frozen=True)
class RecordScope:
    """Records one kind of change may touch: their zones, their names and types, and the change actions."""

    zones: tuple[str, ...]
    names: tuple[str, ...]  # as IAM's condition key compares them (`normalized_name`)
    types: tuple[str, ...]
    actions: tuple[str, ...]


def production_records(config: Config) -> list[DnsRecord]:
    return [s.dns for s in config.services]


def drill_records(config: Config) -> list[DnsRecord]:
    return [d.dns for d in config.drill.services] if config.drill else []


def scope(records: Iterable[DnsRecord], actions: Iterable[str]) -> RecordScope | None:
    """The scope of these records; None when there are none (nothing to grant)."""
    records = list(records)
    if not records:
        return None
    return RecordScope(
        zones=tuple(sorted({r.zone for r in records})),
        names=tuple(sorted({normalized_name(r.name) for r in records})),
        types=tuple(sorted({r.type for r in records})),
        actions=tuple(sorted(set(actions))),
    )


def dns_zones(config: Config) -> list[str]:
    """Every zone dcwatch reads or changes: the production records' and the drill records'."""
    return sorted({r.zone for r in [*production_records(config), *drill_records(config)]})


def normalized_name(name: str) -> str:
    """A record name as `route53:ChangeResourceRecordSetsNormalizedRecordNames` holds it: lower case, no
    trailing dot, any character but a-z, 0-9, '-', '_' and '.' as a backslash and three octal digits."""
    plain = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")
    return "".join(ch if ch in plain else f"\\{ord(ch):03o}" for ch in name.lower().rstrip("."))


def zone_key(zone: str) -> str:
    """Zone names compare lower case, with the trailing dot."""
    return zone.lower() if zone.endswith(".") else zone.lower() + "."


def encode_zone_ids(zone_ids: Mapping[str, str]) -> str:
    return json.dumps({zone_key(z): i for z, i in sorted(zone_ids.items())}, separators=(",", ":"))


def decode_zone_ids(value: object, source: str = ENV_HOSTED_ZONE_IDS) -> dict[str, str]:
    """`{"zone.": "Z123", ...}` from JSON text (or an object already parsed); ValueError naming `source` (the
    variable, the CDK context key) when it is not an object of strings. "/hostedzone/Z123" reads as "Z123"."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"{source}: not valid JSON ({exc}): {value!r}") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError(f'{source}: expected {{"zone.": "hosted zone id", ...}}, got {value!r}')
    return {zone_key(zone): zone_id.split("/")[-1] for zone, zone_id in value.items()}
