"""What the probes check: a site's vCenter, and the http, tls, tcp and dns checks of sites and services."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import Discriminator, Field, Tag, field_validator

from dcwatch.config.fields import (
    CA_FILE_DESCRIPTION,
    HEADERS_SECRET_DESCRIPTION,
    REACH_DESCRIPTION,
    CaFile,
    ConditionText,
    ConfigModel,
    Name,
    Reach,
    http_url,
    unbuilt_default,
)


class VcenterProbe(ConfigModel):
    """What the vCenter check proves besides a working login, all read in one session per round."""

    hosts: bool = Field(default=True, description="every host connected and not unexpectedly in maintenance")
    expected_maintenance: list[str] = Field(default=[], description="hosts allowed to be in maintenance mode")
    critical_vms: list[str] = Field(default=[], description="VMs that must run, with VMware Tools heartbeat green")
    datastore_min_free_pct: float = Field(default=10.0, ge=0, le=100, description="below this a datastore fails")
    alarms: bool = Field(default=True, description="report triggered vCenter alarms as warnings")


class VCenter(ConfigModel):
    """How to reach a site's vCenter; the credentials stay in Secrets Manager."""

    url: str = Field(description="SDK endpoint, e.g. https://vcenter.dc-a.example/sdk")
    credentials_secret: str = Field(
        min_length=1,
        description="Secrets Manager secret id holding JSON {username, password}",
    )
    datacenter: str | None = Field(
        default=None,
        description="inventory path of the site's datacenter, e.g. DC-A; the vCenter check judges only it "
        "(the whole vCenter if unset)",
    )
    verify_tls: bool = True
    ca_file: CaFile = Field(default=None, description=CA_FILE_DESCRIPTION)
    timeout_s: float = Field(default=5.0, gt=0, le=60, description="login and inventory read, per round")
    probe: VcenterProbe = unbuilt_default(VcenterProbe)
    reach: Reach = Field(default="private", description=REACH_DESCRIPTION + " (a vCenter is private unless you say so)")

    _check_url = field_validator("url")(classmethod(lambda cls, v: http_url(v)))


Severity = Literal["critical", "warning"]
VCENTER_PREFIX = "vcenter"


class _Check(ConfigModel):
    name: Name
    timeout_s: float = Field(default=3.0, gt=0, le=30, description="the check fails with reason 'timeout' after this")
    severity: Severity = Field(default="critical", description="critical checks decide site and service status")
    reach: Reach | None = Field(
        default=None,
        description=REACH_DESCRIPTION + "; unset: private for a site's own checks (storage, gateways), "
        "public for a service's checks",
    )

    @property
    def critical(self) -> bool:
        return self.severity == "critical"


class HttpCheck(_Check):
    """A positive HTTP(S) check: the service proves it works by answering as expected."""

    kind: Literal["http"] = "http"
    url: str
    method: Literal["GET", "HEAD", "POST"] = "GET"
    headers: dict[str, str] = Field(default={}, description="sent with the request; no tokens here: see headers_secret")
    headers_secret: str | None = Field(default=None, min_length=1, description=HEADERS_SECRET_DESCRIPTION)
    body: str | None = Field(default=None, description="request body (POST)")
    expect_status: list[int] = Field(default=[200], min_length=1)
    body_contains: str | None = None
    body_regex: str | None = None
    conditions: list[ConditionText] = Field(
        default=[], description="e.g. '[STATUS] == 200', '[BODY].status == UP', '[RESPONSE_TIME] < 500'"
    )
    verify_tls: bool = Field(default=True, description="refuse invalid certificates (on unless you say so)")
    ca_file: CaFile = Field(default=None, description=CA_FILE_DESCRIPTION)
    follow_redirects: bool = Field(default=False, description="off: a redirect is the answer that is checked")

    _check_url = field_validator("url")(classmethod(lambda cls, v: http_url(v)))

    @field_validator("body_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class TlsCheck(_Check):
    """The certificate a TLS endpoint presents: valid, and not about to expire."""

    kind: Literal["tls"]
    host: str
    port: int = Field(default=443, ge=1, le=65535)
    server_name: str | None = Field(default=None, description="SNI and name to verify (host if unset)")
    warn_days: int = Field(default=21, ge=0, description="fewer days left: a warning")
    critical_days: int = Field(default=7, ge=0, description="fewer days left: a failure")
    ca_file: CaFile = Field(default=None, description=CA_FILE_DESCRIPTION)


class TcpCheck(_Check):
    """Something accepts connections on host:port, and optionally greets with the expected banner."""

    kind: Literal["tcp"]
    host: str
    port: int = Field(ge=1, le=65535)
    banner: str | None = Field(default=None, description="regular expression the first line must match")


class DnsCheck(_Check):
    """A name resolves through the given resolver to the expected answers."""

    kind: Literal["dns"]
    query: str = Field(description="the name to resolve, e.g. shop.hosting.example.")
    resolver: str = Field(description="resolver address, 'ip' or 'ip:port'")
    record_type: Literal["A", "AAAA", "CNAME", "MX", "TXT", "NS"] = "A"
    expect: list[str] = Field(default=[], description="answers that must all be present (any when empty)")


def _check_kind(value: Any) -> str:
    kind = value.get("kind", "http") if isinstance(value, dict) else getattr(value, "kind", "http")
    return str(kind)


CHECK_KINDS = ("http", "tls", "tcp", "dns")
AnyCheck = Annotated[
    Annotated[HttpCheck, Tag("http")]
    | Annotated[TlsCheck, Tag("tls")]
    | Annotated[TcpCheck, Tag("tcp")]
    | Annotated[DnsCheck, Tag("dns")],
    Discriminator(
        _check_kind, custom_error_type="check_kind", custom_error_message="kind must be http, tls, tcp or dns"
    ),
]


def check_address(spec: HttpCheck | TlsCheck | TcpCheck | DnsCheck | VCenter) -> str:
    """Where a check connects, as `host:port` (a DNS check: its resolver): what the network sees of it."""
    if isinstance(spec, HttpCheck | VCenter):
        url = urlparse(spec.url)
        return f"{url.hostname}:{url.port or (443 if url.scheme == 'https' else 80)}"
    if isinstance(spec, DnsCheck):
        return spec.resolver if ":" in spec.resolver else f"{spec.resolver}:53"
    return f"{spec.host}:{spec.port}"
