"""The local network's links: what a proxy does to real connections, and how each placement's config is routed."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from urllib.parse import urlparse

import pytest
import requests

from dcwatch.config import load_config
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.local.faults import Fault, FaultNetwork, routed_config
from dcwatch.local.links import Link, placements
from tests.helpers import Hello

pytestmark = pytest.mark.integration

A = Link("vpc", "a", "private")


@pytest.fixture
def target() -> Iterator[tuple[str, int]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield "127.0.0.1", server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def network() -> Iterator[FaultNetwork]:
    net = FaultNetwork(seed=1).start()
    yield net
    net.stop()


def get(address: tuple[str, int], timeout: float = 1.0) -> str:
    try:
        return requests.get(f"http://{address[0]}:{address[1]}/", timeout=timeout).text
    except requests.Timeout:
        return "timeout"
    except requests.ConnectionError:
        return "reset"


def test_a_healthy_path_passes_requests_through(network, target):
    assert get(network.route(A, *target)) == "OK"


def test_a_refusing_path_resets_and_a_blackholed_one_never_answers(network, target):
    path = network.route(A, *target)
    network.set_fault(A, Fault("refuse"))
    assert get(path) == "reset"
    network.set_fault(A, Fault("blackhole"))
    assert get(path, timeout=0.3) == "timeout"


def test_a_fault_is_per_link_placement_site_and_path(network, target):
    faulted, other_path, other_placement, other_site = (
        network.route(A, *target),
        network.route(Link("vpc", "a", "public"), *target),
        network.route(Link("home", "a", "public"), *target),
        network.route(Link("vpc", "b", "private"), *target),
    )
    network.set_fault(A, Fault("refuse"))
    assert [get(faulted), get(other_path), get(other_placement), get(other_site)] == ["reset", "OK", "OK", "OK"]
    network.heal()
    assert get(faulted) == "OK"


def test_the_refusing_address_refuses_every_connection(network):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(network.refusing(), timeout=1).close()


def test_added_latency_delays_every_connection(network, target):
    path = network.route(A, *target)
    network.set_fault(A, Fault(latency_s=0.4))
    started = time.monotonic()
    assert get(path) == "OK"
    assert time.monotonic() - started >= 0.4
    assert get(path, timeout=0.2) == "timeout"


def test_loss_drops_about_its_share_of_connections(network, target):
    path = network.route(A, *target)
    network.set_fault(A, Fault(loss_pct=30))
    outcomes = [get(path, timeout=0.15) for _ in range(40)]
    assert 4 <= outcomes.count("timeout") <= 22, outcomes
    assert outcomes.count("OK") + outcomes.count("timeout") == 40


def test_a_dead_target_resets_the_clients_connection(network):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert get(network.route(A, "127.0.0.1", port)) == "reset"


def test_a_refused_link_and_a_dead_target_refuse_at_connect_time_as_the_deployed_network_does(network):
    # A client must be able to tell "no connection could be made" from "connected, then it failed".
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    port = server.server_address[1]
    path = network.route(A, "127.0.0.1", port)
    network.set_fault(A, Fault("refuse"))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(path, timeout=1).close()
    network.heal()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    assert get(path) == "OK"
    # The target dies: the connection that finds it gone is reset, every later one refused
    server.shutdown()
    server.server_close()
    assert get(path) == "reset"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(path, timeout=1).close()
    # It comes back on its port: the path serves again within a few watch periods
    again = ThreadingHTTPServer(("127.0.0.1", port), Hello)
    threading.Thread(target=again.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        deadline = time.monotonic() + 5
        while get(path) != "OK" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert get(path) == "OK"
    finally:
        again.shutdown()
        again.server_close()


def test_stopping_the_network_ends_held_connections(target):
    net = FaultNetwork().start()
    path = net.route(A, *target)
    net.set_fault(A, Fault("blackhole"))
    client = socket.create_connection(path, timeout=5)
    client.sendall(b"GET / HTTP/1.0\r\n\r\n")
    time.sleep(0.1)
    net.stop()
    assert client.recv(10) == b""
    client.close()


def test_each_placement_reaches_a_site_only_through_its_own_links(network):
    config = load_config(DEMO_CONFIG)
    topology, plain = config.topology, config.model_dump(mode="json")
    routed = {name: routed_config(plain, p, topology, network) for name, p in placements(topology).items()}

    def vcenters(data: dict) -> list[str]:
        return [s["vcenter"]["url"] for s in data["sites"]]

    def services(data: dict) -> list[str]:
        return [c["url"] for svc in data["services"] for at in svc["sites"].values() for c in at["checks"]]

    refusing = "http://{}:{}/sdk".format(*network.refusing())
    # The vCenters are private: outside the VPC they have no link, so their address refuses.
    assert vcenters(routed["home"]) == [refusing, refusing]
    inside = vcenters(routed["vpc"])
    assert refusing not in inside and len(set(inside)) == 2 and all(u.endswith("/sdk") for u in inside)
    # The services are public: every placement reaches them, each through its own link's proxy.
    assert len(set(services(routed["home"]) + services(routed["vpc"]))) == 2 * len(services(routed["home"]))
    assert [s["name"] for s in routed["vpc"]["sites"]] == [s.name for s in config.sites]


def test_a_drill_check_goes_to_the_standby_over_the_vpcs_private_link_and_has_no_path_from_outside(network):
    """The drill network is reached like the sites' private endpoints: a VPN cut into the standby cuts the drill's
    verification too, and a placement outside the VPC does not reach the clones at all."""
    config = load_config(DEMO_CONFIG)
    topology, plain = config.topology, config.model_dump(mode="json")
    standby = config.other_site(config.active_site)
    routed = {name: routed_config(plain, p, topology, network) for name, p in placements(topology).items()}

    def drill_urls(data: dict) -> list[str]:
        return [c["url"] for d in data["drill"]["services"] for c in d["checks"]]

    expected = []
    for service in config.drill.services if config.drill else []:
        for check in service.checks:
            url = urlparse(check.url)
            host, port = network.route(Link("vpc", standby, "private"), url.hostname or "", url.port or 80)
            expected.append(url._replace(netloc=f"{host}:{port}").geturl())
    assert drill_urls(routed["vpc"]) == expected and len(expected) == 2
    refusing = "{}:{}".format(*network.refusing())
    assert all(urlparse(u).netloc == refusing for u in drill_urls(routed["home"]))
