"""The one config file: sites, services, DNS records, recovery groups, thresholds, alerts.

Everything here is plain typed data. `load_config` turns a YAML file into a `Config` or raises
`ConfigError` listing every problem by its path in the file, so an operator can fix them all at once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", description="lower-case, digits, '-'")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _http_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"expected an http(s) URL with a host, got {value!r}")
    return value


class VCenter(_Model):
    """How to reach a site's vCenter; the credentials stay in Secrets Manager."""

    url: str = Field(description="SDK endpoint, e.g. https://vcenter.dc-a.example/sdk")
    credentials_secret: str = Field(
        min_length=1,
        description="Secrets Manager secret id holding JSON {username, password}",
    )
    datacenter: str | None = Field(default=None, description="datacenter holding the VMs (first if unset)")
    verify_tls: bool = True

    _check_url = field_validator("url")(classmethod(lambda cls, v: _http_url(v)))


class Site(_Model):
    name: Name
    vcenter: VCenter


class HttpCheck(_Model):
    """A positive HTTP check: the service proves it works by answering as expected."""

    kind: Literal["http"] = "http"
    name: Name
    url: str
    expect_status: list[int] = Field(default=[200], min_length=1)
    body_contains: str | None = None
    timeout_s: float = Field(default=3.0, gt=0, le=30)
    critical: bool = True

    _check_url = field_validator("url")(classmethod(lambda cls, v: _http_url(v)))


class VmRef(_Model):
    name: str = Field(min_length=1)
    group: int = Field(default=1, ge=1, le=10, description="priority group; lower powers on first")


class ServiceAtSite(_Model):
    dns_values: list[str] = Field(min_length=1, description="record values while this site serves")
    checks: list[HttpCheck] = Field(min_length=1)
    vms: list[VmRef] = Field(default=[])


class DnsRecord(_Model):
    zone: str = Field(description="hosted zone name, e.g. example.com.")
    name: str = Field(description="record name, e.g. shop.example.com.")
    type: Literal["A", "AAAA", "CNAME"] = "A"
    ttl: int = Field(default=60, ge=1, le=86400)

    @field_validator("zone", "name")
    @classmethod
    def _fqdn(cls, value: str) -> str:
        return value if value.endswith(".") else value + "."

    @model_validator(mode="after")
    def _name_in_zone(self) -> DnsRecord:
        if not (self.name == self.zone or self.name.endswith("." + self.zone)):
            raise ValueError(f"record {self.name} is not inside zone {self.zone}")
        return self


class Service(_Model):
    name: Name
    dns: DnsRecord
    sites: dict[str, ServiceAtSite]


class Thresholds(_Model):
    failures_to_down: int = Field(default=3, ge=1, description="consecutive failures before DOWN")
    successes_to_up: int = Field(default=2, ge=1, description="consecutive successes before UP")


class Probe(_Model):
    interval_s: int = Field(default=60, ge=1, description="seconds between probe rounds")
    vantage: str = Field(default="aws", description="name of the place the probes run from")


class Workflow(_Model):
    poll_s: int = Field(default=5, ge=1, description="wait between polls of power-on and DNS")
    group_timeout_s: int = Field(default=600, ge=1, description="deadline for one priority group")
    dns_timeout_s: int = Field(default=300, ge=1, description="deadline for Route 53 INSYNC")


class Alerts(_Model):
    email: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(default=[])


class Config(_Model):
    name: Name = Field(description="deployment name; prefixes every AWS resource")
    active_site: str
    sites: list[Site] = Field(min_length=2, max_length=2)
    services: list[Service] = Field(min_length=1)
    thresholds: Thresholds = Thresholds()
    probe: Probe = Probe()
    workflow: Workflow = Workflow()
    alerts: Alerts = Alerts()
    tags: dict[str, str] = Field(default={})

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        problems = _cross_problems(self.model_dump())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def site(self, name: str) -> Site:
        for site in self.sites:
            if site.name == name:
                return site
        raise KeyError(f"unknown site {name!r}; known: {[s.name for s in self.sites]}")

    def other_site(self, name: str) -> str:
        self.site(name)
        return next(s.name for s in self.sites if s.name != name)

    def services_at(self, site: str) -> Iterator[tuple[Service, ServiceAtSite]]:
        for service in self.services:
            yield service, service.sites[site]


def _cross_problems(data: Any) -> list[str]:
    """Problems between fields, read from plain data so they are found even when some fields are invalid."""

    def items(value: Any) -> list[Any]:
        return value if isinstance(value, list) else []

    def mapping(value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else {}

    data = mapping(data)
    names = [mapping(s).get("name") for s in items(data.get("sites"))]
    problems: list[str] = []
    if len(set(names)) != len(names):
        problems.append(f"sites: names must differ, got {names}")
    if "active_site" in data and data["active_site"] not in names:
        problems.append(f"active_site: {data['active_site']!r} is not one of the sites {names}")
    services = [mapping(s) for s in items(data.get("services"))]
    seen: set[Any] = set()
    for i, service in enumerate(services):
        where = f"services[{i}]"
        if service.get("name") in seen:
            problems.append(f"{where}.name: duplicate service {service.get('name')!r}")
        seen.add(service.get("name"))
        at_sites = mapping(service.get("sites"))
        if sorted(map(str, at_sites)) != sorted(map(str, names)):
            problems.append(f"{where}.sites: needs exactly the sites {sorted(map(str, names))}, got {sorted(at_sites)}")
        record_type = mapping(service.get("dns")).get("type", "A")
        for site_name, at_site in at_sites.items():
            for value in items(mapping(at_site).get("dns_values")):
                if isinstance(value, str) and (error := _dns_value_error(record_type, value)):
                    problems.append(f"{where}.sites.{site_name}.dns_values: {error}")
    for site in names:
        at = [mapping(mapping(svc.get("sites")).get(str(site))) for svc in services]
        vm_names = [mapping(vm).get("name") for a in at for vm in items(a.get("vms"))]
        dupes = sorted({n for n in vm_names if vm_names.count(n) > 1 and isinstance(n, str)})
        if dupes:
            problems.append(f"services: VM names repeat at site {site}: {dupes}")
        check_names = [mapping(c).get("name") for a in at for c in items(a.get("checks"))]
        dupes = sorted({n for n in check_names if check_names.count(n) > 1 and isinstance(n, str)})
        if dupes or "vcenter" in check_names:
            problems.append(f"services: check names repeat at site {site}: {dupes or ['vcenter']}")
    return problems


_EMPTY = ServiceAtSite.model_construct(dns_values=[], checks=[], vms=[])


def _dns_value_error(record_type: str, value: str) -> str | None:
    try:
        if record_type == "A":
            ipaddress.IPv4Address(value)
        elif record_type == "AAAA":
            ipaddress.IPv6Address(value)
    except ValueError:
        return f"{value!r} is not a valid {record_type} value"
    return None


class ConfigError(Exception):
    """A config file that cannot be used; `problems` lists (path, message) for every error."""

    def __init__(self, file: str, problems: list[tuple[str, str]]):
        self.file = file
        self.problems = problems
        super().__init__("\n".join(f"{file}: {path}: {msg}" for path, msg in problems))


def _loc(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("function-after", "http", "tagged-union") or "[" in str(part):
            continue
        else:
            path += ("." if path else "") + str(part)
    return path or "(top level)"


def parse_config(data: Any, file: str = "<config>") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems: list[tuple[str, str]] = []
        for err in exc.errors():
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "value_error" and not err["loc"]:
                for part in message.split("; "):
                    path, _, msg = part.partition(": ")
                    problems.append((path, msg))
            else:
                problems.append((_loc(err["loc"]), message))
        if not any(err["type"] == "value_error" and not err["loc"] for err in exc.errors()):
            problems += [tuple(p.partition(": ")[::2]) for p in _cross_problems(data)]  # type: ignore[misc]
        raise ConfigError(file, problems) from None


def load_config(path: str | Path) -> Config:
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(file, [("(file)", exc.strerror or str(exc))]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise ConfigError(file, [(where, f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from None
    if not isinstance(data, dict):
        raise ConfigError(file, [("(top level)", "expected a mapping of settings")])
    return parse_config(data, file)


def config_schema() -> dict[str, Any]:
    return Config.model_json_schema()
