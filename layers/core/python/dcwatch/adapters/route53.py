"""Route 53: pointing the service records at the site that serves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dcwatch.adapters.aws import LazyClient, aws_call
from dcwatch.errors import TransientError
from dcwatch.observability import logger
from dcwatch.ports import RecordValues
from dcwatch.routing import answered_values
from dcwatch.zones import zone_key


class Route53Dns:
    """`zone_ids` ({"zone.": "Z123"}): the hosted zones to change, by id; with them, no zone is ever looked up by
    name (a public and a private zone may share one). `resolver` ("ip" or "ip:port"): verify answers by asking
    that resolver instead of TestDNSAnswer."""

    def __init__(self, client: Any | None = None, resolver: str = "", zone_ids: Mapping[str, str] | None = None):
        self._client = LazyClient("route53", client)
        self._given = {zone_key(z): i.split("/")[-1] for z, i in (zone_ids or {}).items()}
        self._zone_ids: dict[str, str] = dict(self._given)
        self._resolver = resolver

    def zone_id(self, zone: str) -> str:
        key = zone_key(zone)
        if key in self._zone_ids:
            return self._zone_ids[key]
        if self._given:
            logger.warning("hosted zone refused", zone=zone, reason="no id given for it", given=sorted(self._given))
            raise LookupError(f"no hosted zone id given for {zone} (given: {', '.join(sorted(self._given))})")
        with aws_call("route53:ListHostedZonesByName"):
            zones = self._client().list_hosted_zones_by_name(DNSName=zone)["HostedZones"]
        match = [z for z in zones if zone_key(z["Name"]) == key]
        if not match:
            raise LookupError(f"hosted zone {zone} not found in Route 53")
        if len(match) > 1:
            ids = [z["Id"].split("/")[-1] for z in match]
            logger.warning("hosted zone refused", zone=zone, reason="a name several zones share", zone_ids=ids)
            raise LookupError(
                f"{len(match)} hosted zones are named {zone} (public and private): give their ids "
                f"({', '.join(ids)}), dcwatch will not guess which one serves"
            )
        self._zone_ids[key] = match[0]["Id"].split("/")[-1]
        return self._zone_ids[key]

    def upsert(self, records: Sequence[RecordValues]) -> list[str]:
        return self._change("UPSERT", records)

    def delete(self, records: Sequence[RecordValues]) -> list[str]:
        return self._change("DELETE", records)

    def _change(self, action: str, records: Sequence[RecordValues]) -> list[str]:
        by_zone: dict[str, list[RecordValues]] = {}
        for record in records:
            by_zone.setdefault(record.zone, []).append(record)
        change_ids = []
        for zone, zone_records in sorted(by_zone.items()):
            changes = [{"Action": action, "ResourceRecordSet": resource_record_set(r)} for r in zone_records]
            with aws_call("route53:ChangeResourceRecordSets"):
                response = self._client().change_resource_record_sets(
                    HostedZoneId=self.zone_id(zone),
                    ChangeBatch={"Comment": "dcwatch failover", "Changes": changes},
                )
            change_ids.append(response["ChangeInfo"]["Id"].split("/")[-1])
        return change_ids

    def in_sync(self, change_ids: Sequence[str]) -> bool:
        for change_id in change_ids:
            with aws_call("route53:GetChange"):
                status = self._client().get_change(Id=change_id)["ChangeInfo"]["Status"]
            if status != "INSYNC":
                return False
        return True

    def answers(self, zone: str, name: str, record_type: str) -> list[str]:
        """What Route 53's name servers answer (TestDNSAnswer), or the configured resolver."""
        if self._resolver:
            return resolve(self._resolver, name, record_type)
        with aws_call("route53:TestDNSAnswer"):
            answer = self._client().test_dns_answer(
                HostedZoneId=self.zone_id(zone), RecordName=name, RecordType=record_type
            )
        return [str(v) for v in answer.get("RecordData", [])] if answer.get("ResponseCode") == "NOERROR" else []

    def values(self, zone: str, name: str, record_type: str) -> list[str]:
        return answered_values(self.record_sets(zone, name, record_type))

    def record_sets(self, zone: str, name: str, record_type: str) -> list[RecordValues]:
        found: list[RecordValues] = []
        start: dict[str, str] = {"StartRecordName": name, "StartRecordType": record_type}
        for _ in range(MAX_PAGES):
            with aws_call("route53:ListResourceRecordSets"):
                page = self._client().list_resource_record_sets(
                    HostedZoneId=self.zone_id(zone), MaxItems="100", **start
                )
            for rrset in page["ResourceRecordSets"]:
                if rrset["Name"].lower() != name.lower() or rrset["Type"] != record_type:
                    return found
                found.append(from_record_set(zone, rrset))
            if not page.get("IsTruncated"):
                return found
            start = {"StartRecordName": page["NextRecordName"], "StartRecordType": page["NextRecordType"]}
            if page.get("NextRecordIdentifier"):
                start["StartRecordIdentifier"] = page["NextRecordIdentifier"]
        raise TransientError(f"{name} {record_type}: more than {MAX_PAGES * 100} record sets listed, gave up")


MAX_PAGES = 10


def resource_record_set(record: RecordValues) -> dict[str, Any]:
    """The ResourceRecordSet of a change: a weighted or failover one names its set and its weight or role."""
    rrset: dict[str, Any] = {"Name": record.name, "Type": record.type, "TTL": record.ttl}
    if record.set_identifier is not None:
        rrset["SetIdentifier"] = record.set_identifier
    if record.weight is not None:
        rrset["Weight"] = record.weight
    if record.failover is not None:
        rrset["Failover"] = record.failover
    rrset["ResourceRecords"] = [{"Value": v} for v in record.values]
    return rrset


def from_record_set(zone: str, rrset: dict[str, Any]) -> RecordValues:
    """A listed ResourceRecordSet as the record set dcwatch writes."""
    return RecordValues(
        zone,
        rrset["Name"],
        rrset["Type"],
        int(rrset.get("TTL", 0)),
        tuple(r["Value"] for r in rrset.get("ResourceRecords", [])),
        set_identifier=rrset.get("SetIdentifier"),
        weight=rrset.get("Weight"),
        failover=rrset.get("Failover"),
    )


def resolve(resolver: str, name: str, record_type: str, timeout_s: float = 2.0) -> list[str]:
    """The answers of one resolver ("ip" or "ip:port"), over UDP; no answer is an empty list."""
    # dnspython only here: in AWS the answers come from Route 53's TestDNSAnswer, and no resolver is set.
    import dns.exception
    import dns.rdatatype
    import dns.resolver

    host, _, port = resolver.partition(":")
    asker = dns.resolver.Resolver(configure=False)
    asker.nameservers = [host]
    asker.port = int(port or 53)
    asker.lifetime = timeout_s
    try:
        answer = asker.resolve(name, dns.rdatatype.from_text(record_type), raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return []
    except dns.exception.Timeout as exc:
        raise TransientError(f"resolver {resolver} did not answer for {name}: {exc}") from exc
    return [r.to_text() for r in answer.rrset] if answer.rrset is not None else []
