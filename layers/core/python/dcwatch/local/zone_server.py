"""Route 53's name servers, locally: a DNS server on loopback that answers from moto's hosted zones.

moto does not implement TestDNSAnswer (404), so the workflow verifies its DNS switch locally by
asking this server through a real resolver (dnspython), as a client would ask Route 53. It answers
A, AAAA and CNAME queries from the record sets moto holds at the moment of the query, choosing among
weighted and failover record sets as Route 53 does without health checks (`dcwatch.routing`).
"""

from __future__ import annotations

import random
import socket
import threading
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from dcwatch.adapters.route53 import from_record_set
from dcwatch.routing import pick


class ZoneServer:
    def __init__(self, route53: Any, host: str = "127.0.0.1"):
        self._route53 = route53
        self._rng = random.Random()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, 0))
        self._sock.settimeout(0.2)
        self.address = f"{host}:{self._sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="zone-server", daemon=True)

    def start(self) -> ZoneServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, client = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                self._sock.sendto(self._answer(dns.message.from_wire(wire)).to_wire(), client)
            except Exception:  # noqa: BLE001, S112 - a malformed query or moto going away: the client times out
                continue

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name, kind = question.name.to_text(), dns.rdatatype.to_text(question.rdtype)
        zone = self._zone_of(name)
        if zone is None:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        sets = self._route53.list_resource_record_sets(
            HostedZoneId=zone, StartRecordName=name, StartRecordType=kind, MaxItems="100"
        )["ResourceRecordSets"]
        same = [from_record_set(zone, r) for r in sets if r["Name"].lower() == name.lower() and r["Type"] == kind]
        chosen = pick(same, self._rng)
        if chosen is not None:
            response.answer.append(dns.rrset.from_text_list(name, chosen.ttl or 60, "IN", kind, list(chosen.values)))
        return response

    def _zone_of(self, name: str) -> str | None:
        zones = self._route53.list_hosted_zones()["HostedZones"]
        matching = [z for z in zones if name.lower().endswith(z["Name"].lower())]
        if not matching:
            return None
        return str(max(matching, key=lambda z: len(z["Name"]))["Id"].split("/")[-1])
