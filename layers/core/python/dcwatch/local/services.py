"""Demo services: real HTTP endpoints on loopback that answer only while their VMs run.

A watcher reads each site's VM power states from its vCenter simulator and starts or stops the
site's service endpoints to match, so positive checks and end-to-end verification test
something real: a service answers at a site exactly when vCenter says its VMs are on. It also
plays the guests' VMware Tools: a VM that is on reports its service's address as its IP `boot_s` after
vCenter powered it on (the watcher wakes for that moment), one that is off reports none, which is what
the failover waits for before a VM counts as up.

A drill's clones (`<vm>-drill-<run>`, VMs the config does not name) get endpoints of their own, at the drill
checks' addresses on the isolated network: one answers while, at some site, a clone of every VM of its service
there is on, and the clones report their drill address as their IP. The production endpoints count only the
VMs the config names, so a drill never lights the standby's production services.
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
from dcwatch.config.sites import Site
from dcwatch.config.workflow import clone_origin
from dcwatch.local.proxies import LISTEN_BACKLOG
from dcwatch.local.vcsim import SimulatedGuest, guests_where, report_guest_ips

POLL_S = 0.2
MIN_PAUSE_S = 0.005


@dataclass(frozen=True)
class Endpoint:
    service: str
    site: str
    host: str
    port: int
    vms: tuple[str, ...]
    drill: bool = False  # a drill's: answers while a clone of each of `vms` is on, never for the VMs themselves

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port


def _loopback(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    host, port = parsed.hostname or "", parsed.port or 80
    if not host.startswith("127."):
        raise ValueError(f"the local runtime serves on loopback only; {url} is not")
    return host, port


def endpoints(config: Config) -> list[Endpoint]:
    """One endpoint per service, site and distinct host:port of its checks; then one per drill service, site
    where the service has VMs, and distinct host:port of its drill checks."""
    found: dict[tuple[str, str, str, int, bool], Endpoint] = {}
    for service in config.services:
        for site, at_site in service.sites.items():
            vms = tuple(vm.name for vm in at_site.vms)
            for check in at_site.checks:
                if isinstance(check, HttpCheck):
                    host, port = _loopback(check.url)
                    found.setdefault(
                        (service.name, site, host, port, False), Endpoint(service.name, site, host, port, vms)
                    )
    services = {s.name: s for s in config.services}
    for drill in config.drill.services if config.drill else []:
        for site, at_site in services[drill.name].sites.items() if drill.name in services else []:
            vms = tuple(vm.name for vm in at_site.vms)
            for check in drill.checks if vms else []:
                if isinstance(check, HttpCheck):
                    host, port = _loopback(check.url)
                    endpoint = Endpoint(drill.name, site, host, port, vms, drill=True)
                    found.setdefault((drill.name, site, host, port, True), endpoint)
    return list(found.values())


def guest_ips(config: Config, site: str) -> tuple[dict[str, str], dict[str, str]]:
    """What a guest at `site` reports as its IP once booted: each VM the config names, its service's address
    there; and by the VM cloned, each clone of a drill service's VM, the drill's address on the isolated network."""
    drills = {d.name: d.dns_values[0] for d in (config.drill.services if config.drill else [])}
    own: dict[str, str] = {}
    clones: dict[str, str] = {}
    for service, at in config.services_at(site):
        for vm in at.vms:
            own[vm.name] = at.dns_values[0]
            if service.name in drills:
                clones[vm.name] = drills[service.name]
    return own, clones


def _handler_for(endpoint: Endpoint) -> type[BaseHTTPRequestHandler]:
    copy = " drill clone" if endpoint.drill else ""
    body = f"OK {endpoint.service}{copy} at {endpoint.site}\n".encode()

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
        self._ips = {s.name: guest_ips(config, s.name) for s in config.sites}
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
            try:
                on, due = self._look(site)
            except Exception:  # noqa: BLE001 - an unreachable vCenter leaves the endpoints as they are
                continue
            next_boot = min([t for t in (next_boot, due) if t is not None], default=None)
            with self._lock:
                if site.name in self.failed_sites or site.name in self.held:
                    continue
                newly = on - self._powered.get(site.name, set())
                self._powered[site.name] = on
                for vm in sorted(newly):
                    self.on_power_on(site.name, vm)
                for endpoint in self.endpoints:
                    if endpoint.site == site.name and not endpoint.drill:
                        held = (site.name, endpoint.service) in self.stopped
                        self._set(endpoint, up=not held and all(vm in on for vm in endpoint.vms))
        with self._lock:
            self._next_boot = next_boot
            self._match_drill_endpoints()

    def _look(self, site: Site) -> tuple[set[str], datetime | None]:
        """One read of the site's VMs, the config's and the drill's clones: the names of those on, after each
        booted guest reported its IP (a clone: its drill address), and when the next guest is due to report."""
        own, drilled = self._ips[site.name]

        def ip_of(name: str) -> str | None:
            return own[name] if name in own else drilled.get(clone_origin(name) or "")

        with reused_session(site.vcenter, self.credentials[site.name], timeout_s=2) as si:
            found = guests_where(si, lambda name: ip_of(name) is not None)
            ips = {name: ip for name in found if (ip := ip_of(name)) is not None}
            guests = {name: guest for name, (_, guest) in found.items()}
            on = {name for name, guest in guests.items() if guest.power == "poweredOn"}
            now = datetime.now(UTC)
            boots = {name: self._boots_at(guests[name]) for name in on if guests[name].ip != ips[name]}
            booted = {name: ips[name] for name, at in boots.items() if at <= now}
            due = min([at for at in boots.values() if at > now], default=None)
            gone = {name: "" for name, guest in guests.items() if name not in on and guest.ip}
            if booted or gone:
                report_guest_ips(si, {name: vm for name, (vm, _) in found.items()}, booted | gone)
        return on, due

    def _match_drill_endpoints(self) -> None:
        """Each drill address answers for the first site where a clone of every VM of its service there is on
        (one address: one site at a time); a held site's endpoint stays as it is. Called under the lock."""
        by_address: dict[tuple[str, int], list[Endpoint]] = {}
        for endpoint in self.endpoints:
            if endpoint.drill:
                by_address.setdefault(endpoint.address, []).append(endpoint)
        for at_sites in by_address.values():
            kept = [e for e in at_sites if e.site in self.held and e in self._servers]
            serving = next(iter(kept), None) or next((e for e in at_sites if self._clones_on(e)), None)
            for endpoint in at_sites:
                if endpoint is not serving and endpoint.site not in self.held:
                    self._set(endpoint, up=False)
            if serving is not None:
                self._set(serving, up=True)

    def _clones_on(self, endpoint: Endpoint) -> bool:
        """A clone (of any drill run) of every VM of the endpoint's service at its site is on, the site alive."""
        if endpoint.site in self.failed_sites:
            return False
        cloned = {clone_origin(name) for name in self._powered.get(endpoint.site, set())}
        return all(vm in cloned for vm in endpoint.vms)

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

    def revive_site(self, site: str) -> None:
        """The site's services follow its VMs again (after `fail_site`; a stopped service stays stopped)."""
        with self._lock:
            self.failed_sites.discard(site)
        self.sync()

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
            for endpoint in [e for e in self._servers if (e.site, e.service, e.drill) == (site, service, False)]:
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
