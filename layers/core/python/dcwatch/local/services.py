"""Demo services: real HTTP endpoints on loopback that answer only while their VMs run.

A watcher reads each site's VM power states from its vCenter simulator and starts or stops the
site's service endpoints to match, so positive checks and end-to-end verification test
something real: a service answers at a site exactly when vCenter says its VMs are on. It also
plays the guests' VMware Tools: a VM that is on reports its service's address as its IP `boot_s` after
vCenter powered it on (the watcher wakes for that moment), one that is off reports none, which is what
the failover waits for before a VM counts as up.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

from dcwatch.adapters.secrets import Credentials
from dcwatch.adapters.vsphere import reused_session
from dcwatch.config import Config, HttpCheck
from dcwatch.local.proxies import LISTEN_BACKLOG
from dcwatch.local.vcsim import SimulatedGuest, guests_named, report_guest_ips

POLL_S = 0.2
MIN_PAUSE_S = 0.005


@dataclass(frozen=True)
class Endpoint:
    service: str
    site: str
    host: str
    port: int
    vms: tuple[str, ...]


def endpoints(config: Config) -> list[Endpoint]:
    """One endpoint per service, site and distinct host:port of its checks."""
    found: dict[tuple[str, str, str, int], Endpoint] = {}
    for service in config.services:
        for site, at_site in service.sites.items():
            for check in at_site.checks:
                if not isinstance(check, HttpCheck):
                    continue
                url = urlparse(check.url)
                host, port = url.hostname or "", url.port or 80
                if not host.startswith("127."):
                    raise ValueError(f"the local runtime serves on loopback only; {check.url} is not")
                vms = tuple(vm.name for vm in at_site.vms)
                found.setdefault((service.name, site, host, port), Endpoint(service.name, site, host, port, vms))
    return list(found.values())


def _handler_for(endpoint: Endpoint) -> type[BaseHTTPRequestHandler]:
    body = f"OK {endpoint.service} at {endpoint.site}\n".encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    return Handler


class _Listening(ThreadingHTTPServer):
    """socketserver listens with a backlog of 5: a round's hundreds of checks overflowed it, and the SYNs the
    kernel dropped turned a busy service into a timing-out one (see LISTEN_BACKLOG)."""

    request_queue_size = LISTEN_BACKLOG

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up before the answer (a check's timeout) is no error of the service's: no traceback
        on the demo's terminal for it. Anything else is printed as socketserver does."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Server:
    def __init__(self, endpoint: Endpoint):
        self.httpd = _Listening((endpoint.host, endpoint.port), _handler_for(endpoint))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=2)


class DemoServices:
    """Runs the endpoints and the power watcher; reports each VM that comes up."""

    def __init__(
        self,
        config: Config,
        credentials: dict[str, Credentials],
        on_power_on: Callable[[str, str], None] = lambda site, vm: None,
        boot_s: float = 0.0,
    ):
        """`boot_s`: how long a guest takes to boot, from vCenter showing its VM on to it reporting its IP."""
        self.config = config
        self.boot_s = boot_s
        self._next_boot: datetime | None = None  # the next guest due to report its IP
        self.credentials = credentials
        self.endpoints = endpoints(config)
        self.on_power_on = on_power_on
        self.failed_sites: set[str] = set()
        self.held: set[str] = set()  # sites whose endpoints stay as they are (their vCenter being rebuilt)
        self.stopped: set[tuple[str, str]] = set()  # (site, service) held down whatever its VMs do
        self._servers: dict[Endpoint, _Server] = {}
        self._powered: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> DemoServices:
        self.sync()
        self._thread = threading.Thread(target=self._watch, name="demo-services", daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self._pause()):
            self.sync()

    def _pause(self) -> float:
        """Until the next guest is due to report (so it reports `boot_s` after power-on), at most POLL_S."""
        with self._lock:
            due = self._next_boot
        if due is None:
            return POLL_S
        return min(POLL_S, max(MIN_PAUSE_S, (due - datetime.now(UTC)).total_seconds()))

    def sync(self) -> None:
        """Read power states from every live site and match the endpoints to them."""
        next_boot: datetime | None = None
        for site in self.config.sites:
            if site.name in self.failed_sites or site.name in self.held:
                continue
            addresses = {vm.name: at.dns_values[0] for _, at in self.config.services_at(site.name) for vm in at.vms}
            try:
                with reused_session(site.vcenter, self.credentials[site.name], timeout_s=2) as si:
                    found = guests_named(si, list(addresses))
                    guests = {name: guest for name, (_, guest) in found.items()}
                    on = {name for name, guest in guests.items() if guest.power == "poweredOn"}
                    now = datetime.now(UTC)
                    boots = {name: self._boots_at(guests[name]) for name in on if not guests[name].ip}
                    booted = {name: addresses[name] for name, at in boots.items() if at <= now}
                    later = [at for at in boots.values() if at > now]
                    next_boot = min([*later, *([next_boot] if next_boot else [])], default=None)
                    gone = {name: "" for name, guest in guests.items() if name not in on and guest.ip}
                    if booted or gone:
                        report_guest_ips(si, {name: vm for name, (vm, _) in found.items()}, booted | gone)
            except Exception:  # noqa: BLE001 - an unreachable vCenter leaves the endpoints as they are
                continue
            with self._lock:
                if site.name in self.failed_sites or site.name in self.held:
                    continue
                newly = on - self._powered.get(site.name, set())
                self._powered[site.name] = on
                for vm in sorted(newly):
                    self.on_power_on(site.name, vm)
                for endpoint in self.endpoints:
                    if endpoint.site == site.name:
                        held = (site.name, endpoint.service) in self.stopped
                        self._set(endpoint, up=not held and all(vm in on for vm in endpoint.vms))
        with self._lock:
            self._next_boot = next_boot

    def _boots_at(self, guest: SimulatedGuest) -> datetime:
        """`boot_s` after vCenter powered the VM on (now, for a VM vCenter gives no boot time)."""
        on = guest.booted_at or datetime.now(UTC)
        return on + timedelta(seconds=self.boot_s)

    def _set(self, endpoint: Endpoint, up: bool) -> None:
        server = self._servers.get(endpoint)
        if up and server is None:
            self._servers[endpoint] = _Server(endpoint)
        elif not up and server is not None:
            self._servers.pop(endpoint).stop()

    def fail_site(self, site: str) -> None:
        """The site's services go dark and stay dark (the outage)."""
        with self._lock:
            self.failed_sites.add(site)
            for endpoint in [e for e in self._servers if e.site == site]:
                self._servers.pop(endpoint).stop()

    @contextmanager
    def holding(self, site: str) -> Iterator[None]:
        """The site's endpoints stay as they are meanwhile, whatever its vCenter says (it is being rebuilt)."""
        with self._lock:
            self.held.add(site)
        try:
            yield
        finally:
            with self._lock:
                self.held.discard(site)

    def stop_service(self, site: str, service: str) -> None:
        """One service stops answering at one site while its VMs keep running (a crashed application)."""
        self._known(site, service)
        with self._lock:
            self.stopped.add((site, service))
            for endpoint in [e for e in self._servers if (e.site, e.service) == (site, service)]:
                self._servers.pop(endpoint).stop()

    def start_service(self, site: str, service: str) -> None:
        """The service answers again wherever its VMs run (at the next sync)."""
        self._known(site, service)
        with self._lock:
            self.stopped.discard((site, service))
        self.sync()

    def _known(self, site: str, service: str) -> None:
        if not any((e.site, e.service) == (site, service) for e in self.endpoints):
            raise KeyError(f"no service {service!r} at site {site!r}")

    def revive(self) -> None:
        """Forget every fault: failed sites and stopped services follow their VMs again."""
        with self._lock:
            self.failed_sites.clear()
            self.stopped.clear()
            self._powered.clear()
        self.sync()

    def powered_on(self, site: str) -> set[str]:
        with self._lock:
            return set(self._powered.get(site, set()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for server in self._servers.values():
                server.stop()
            self._servers.clear()


def wait_until(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return predicate()
