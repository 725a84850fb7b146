"""Route 53 for the workflow's DNS steps, down to the record: each function may change exactly the records, types
and actions its steps change (`dcwatch.zones`), in exactly the configured zones, by id.

`route53:ChangeResourceRecordSets*` are multivalued condition keys (every name, type and action of the change
batch): `ForAllValues:StringEquals` lets a batch through only if all of them are in the lists, and `Null` false
keeps a request without the keys from passing that test vacuously. One statement per kind of record (production,
drill): a batch takes one zone's records of one kind, so no production name is ever allowed a drill's DELETE.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_

from dcwatch.config import Config
from dcwatch.zones import DELETE, UPSERT, RecordScope, drill_records, production_records, scope, zone_key
from dcwatch_infra import nag

PRODUCTION = "production"
DRILL = "drill"

# What each step changes: SwitchDns points the production records (recovery) or the drill records (drill) at
# the standby; LowerTtl re-writes production with a lower TTL; CleanUpDrill restores or removes the drill records.
CHANGERS: dict[str, dict[str, tuple[str, ...]]] = {
    "SwitchDns": {PRODUCTION: (UPSERT,), DRILL: (UPSERT,)},
    "LowerTtl": {PRODUCTION: (UPSERT,)},
    "CleanUpDrill": {DRILL: (UPSERT, DELETE)},
}
# LowerTtl reads the values it re-writes; a drill notes its records before the switch and restores them after.
READERS: dict[str, tuple[str, ...]] = {"LowerTtl": (PRODUCTION,), "PrepareDrill": (DRILL,), "CleanUpDrill": (DRILL,)}
WATCHERS = ("CheckDns",)

NAMES_KEY = "route53:ChangeResourceRecordSetsNormalizedRecordNames"
TYPES_KEY = "route53:ChangeResourceRecordSetsRecordTypes"
ACTIONS_KEY = "route53:ChangeResourceRecordSetsActions"

Holders = Callable[[Sequence[str]], list[lambda_.Function]]


def record_change_statement(zone_arns: list[str], scope: RecordScope) -> iam.PolicyStatement:
    """ChangeResourceRecordSets on these zones, for the scope's names, types and actions only."""
    keys = {NAMES_KEY: list(scope.names), TYPES_KEY: list(scope.types), ACTIONS_KEY: list(scope.actions)}
    return iam.PolicyStatement(
        actions=["route53:ChangeResourceRecordSets"],
        resources=zone_arns,
        conditions={"ForAllValues:StringEquals": keys, "Null": dict.fromkeys(keys, "false")},
    )


def grant_dns(stack: Stack, config: Config, zone_ids: Mapping[str, str], holders: Holders) -> None:
    """The Route 53 grants of every DNS step's function; `holders` gives the functions that run these steps."""
    ids = {zone_key(z): i for z, i in zone_ids.items()}
    records = {PRODUCTION: production_records(config), DRILL: drill_records(config)}

    def zone_arns(zones: Sequence[str]) -> list[str]:
        return [f"arn:{stack.partition}:route53:::hostedzone/{ids[zone_key(z)]}" for z in zones]

    changes: dict[lambda_.Function, dict[str, set[str]]] = {}
    for step, kinds in CHANGERS.items():
        for fn in holders((step,)):
            for kind, actions in kinds.items():
                changes.setdefault(fn, {}).setdefault(kind, set()).update(actions)
    for fn, changed in changes.items():
        for kind, allowed in sorted(changed.items()):
            if found := scope(records[kind], allowed):
                fn.add_to_role_policy(record_change_statement(zone_arns(found.zones), found))

    reads: dict[lambda_.Function, set[str]] = {}
    for step, read_kinds in READERS.items():
        for fn in holders((step,)):
            reads.setdefault(fn, set()).update(z for kind in read_kinds for z in {r.zone for r in records[kind]})
    for fn, zones in reads.items():
        if zones:
            fn.add_to_role_policy(
                iam.PolicyStatement(actions=["route53:ListResourceRecordSets"], resources=zone_arns(sorted(zones)))
            )

    for fn in holders(WATCHERS):
        fn.add_to_role_policy(
            iam.PolicyStatement(actions=["route53:GetChange"], resources=[f"arn:{stack.partition}:route53:::change/*"])
        )
        # Verifying the answers: TestDNSAnswer has no resource-level permission.
        fn.add_to_role_policy(iam.PolicyStatement(actions=["route53:TestDNSAnswer"], resources=["*"]))
        nag.acknowledge(
            fn.role,  # type: ignore[arg-type]
            "IAM5[Resource::*]",
            "route53:TestDNSAnswer (asking Route 53's name servers what they answer) has no resource-level "
            "permission; it only reads",
        )
        nag.acknowledge(
            fn.role,  # type: ignore[arg-type]
            f"IAM5[Resource::arn:{nag.partition(stack)}:route53:::change/*]",
            "Route 53 change ids are only known once SwitchDns made the change; GetChange reads a change's "
            "status and nothing else",
        )
