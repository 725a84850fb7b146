"""The demo's service endpoints take a probe round's burst of connections as a real web server does, and follow
the power of their VMs in vcsim: a drill's clones light the drill's endpoints, never production's."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from urllib.parse import urlparse

import pytest
import requests
import yaml

from dcwatch.adapters.secrets import Credentials
from dcwatch.adapters.vsphere import vcenter_session
from dcwatch.config import Config, load_config
from dcwatch.config.workflow import clone_name
from dcwatch.local.cloud import free_port
from dcwatch.local.services import DemoServices, Endpoint, _handler_for, _Listening, wait_until
from dcwatch.local.sites import SiteVcenters
from dcwatch.local.vcsim import converge_vms, create_vms, guests_named, power_states
from tests.configs import write_pair_config

pytestmark = pytest.mark.integration

BURST = 300  # more connections at once than one vantage point's 200 concurrent checks


def test_a_burst_of_connections_is_queued_by_the_kernel_not_dropped() -> None:
    """A SYN that finds the accept queue full is dropped, and the client tries again only after 1 s, then 3 s:
    a check that times out although the service is up (socketserver's own queue holds 5). An endpoint's
    listener, before it accepts a single connection, queues the whole burst."""
    endpoint = Endpoint("shop", "dc-a", "127.0.0.1", free_port(), ("shop-web",))
    connected = 0
    with _Listening((endpoint.host, endpoint.port), _handler_for(endpoint)), ExitStack() as clients:
        for _ in range(BURST):
            client = clients.enter_context(socket.socket())
            client.settimeout(0.5)
            try:
                client.connect((endpoint.host, endpoint.port))
            except OSError:
                break
            connected += 1

    assert connected == BURST


# --- a drill's clones: endpoints of their own on the drill network; production at the standby stays dark ---

RUN = "0a1b2c3d"
DRILL_ADDRESS = "127.0.33.1"


@pytest.fixture
def drill_sites(tmp_path) -> Iterator[tuple[Config, SiteVcenters, DemoServices, int]]:
    """Both sites' vcsims as built (webshop and portal on at north, off at south), a drill of webshop on
    DRILL_ADDRESS, and the demo services, synced by hand (no watcher thread)."""
    path = write_pair_config(tmp_path)
    doc = yaml.safe_load(path.read_text())
    port = free_port()
    doc["drill"] = {
        "services": [
            {
                "name": "webshop",
                "dns": {"zone": "example.test.", "name": "drill-webshop.example.test.", "ttl": 10},
                "dns_values": [DRILL_ADDRESS],
                "checks": [{"name": "webshop-up", "url": f"http://{DRILL_ADDRESS}:{port}/", "body_contains": "OK"}],
            }
        ],
        "network": "drill-isolated",
    }
    path.write_text(yaml.safe_dump(doc))
    config = load_config(path)
    credentials = {s.name: Credentials("tester", secrets.token_urlsafe(8)) for s in config.sites}
    with ExitStack() as stack:
        vcenters = SiteVcenters(config, credentials)
        vcenters.start(stack, lambda site, vms: None)
        services = DemoServices(config, credentials)
        stack.callback(services.stop)
        yield config, vcenters, services, port


def body(host: str, port: int) -> str | None:
    """What the endpoint answers, None when nothing listens there."""
    try:
        return requests.get(f"http://{host}:{port}/", timeout=1).text
    except requests.ConnectionError:
        return None


def clones_of(config: Config, site: str, service: str) -> list[str]:
    at = next(s for s in config.services if s.name == service).sites[site]
    return [clone_name(vm.name, RUN) for vm in at.vms]


def test_a_drill_endpoint_answers_exactly_while_a_clone_of_every_vm_of_its_service_is_on(drill_sites):
    config, vcenters, services, port = drill_sites
    south = config.site("south").vcenter
    first, *rest = clones_of(config, "south", "webshop")
    services.sync()
    assert body(DRILL_ADDRESS, port) is None, "no clone yet"

    # Given one clone of webshop's VMs at the standby on, the others not made yet: not every VM has its copy
    create_vms(south, vcenters.credentials["south"], [(first, True)])
    services.sync()
    assert body(DRILL_ADDRESS, port) is None

    # When the clones of the rest are on too
    create_vms(south, vcenters.credentials["south"], [(name, True) for name in rest])
    services.sync()
    # Then the drill address answers, as the clones at south, and each clone reports the drill address as its IP
    assert body(DRILL_ADDRESS, port) == "OK webshop drill clone at south\n"
    assert wait_until(lambda: guest_ips(vcenters, "south", [first, *rest]) == [DRILL_ADDRESS] * (1 + len(rest)), 10)

    # When one clone powers off, the drill address goes dark and that clone's IP is gone
    power_off(vcenters, "south", first)
    services.sync()
    assert body(DRILL_ADDRESS, port) is None
    assert wait_until(lambda: guest_ips(vcenters, "south", [first]) == [""], 10)


def test_the_standby_production_endpoints_stay_dark_while_only_clones_run_and_reset_removes_the_clones(drill_sites):
    config, vcenters, services, port = drill_sites
    production = next(s for s in config.services if s.name == "webshop").sites["south"].checks[0].url
    address = urlparse(production)
    clones = clones_of(config, "south", "webshop")
    create_vms(config.site("south").vcenter, vcenters.credentials["south"], [(name, True) for name in clones])
    services.sync()
    assert body(DRILL_ADDRESS, port) is not None, "the clones serve the drill address"
    assert body(address.hostname or "", address.port or 80) is None, "the standby's production webshop stays dark"
    assert services.powered_on("south") == set(clones), "the clones are on, no VM the config names"

    # The runtime's reset between scenarios leaves no clone behind, and the config's VMs as built
    vcenters.restore()
    services.sync()
    assert body(DRILL_ADDRESS, port) is None
    assert services.powered_on("south") == set()
    names = [name for name, _ in vcenters.vms("south")]
    assert power_states(config.site("south").vcenter, vcenters.credentials["south"], names + clones) == dict.fromkeys(
        names, "poweredOff"
    )


def guest_ips(vcenters: SiteVcenters, site: str, names: list[str]) -> list[str]:
    vcenter = vcenters.config.site(site).vcenter
    with vcenter_session(vcenter, vcenters.credentials[site]) as si:
        found = guests_named(si, names)
    return [found[name][1].ip for name in names]


def power_off(vcenters: SiteVcenters, site: str, name: str) -> None:
    converge_vms(vcenters.config.site(site).vcenter, vcenters.credentials[site], [(name, False)])
