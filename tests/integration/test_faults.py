"""A vantage point's network path: what its proxy does to real connections, and how the config is routed."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from dcwatch.config import load_config
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.local.faults import Fault, FaultNetwork, routed_config


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


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
    assert get(network.route("v1", "a", *target)) == "OK"


def test_a_refusing_path_resets_and_a_blackholed_one_never_answers(network, target):
    path = network.route("v1", "a", *target)
    network.set_fault("v1", "a", Fault("refuse"))
    assert get(path) == "reset"
    network.set_fault("v1", "a", Fault("blackhole"))
    assert get(path, timeout=0.3) == "timeout"


def test_a_fault_is_per_vantage_point_and_site(network, target):
    faulted, other_vantage, other_site = (
        network.route("v1", "a", *target),
        network.route("v2", "a", *target),
        network.route("v1", "b", *target),
    )
    network.set_fault("v1", "a", Fault("refuse"))
    assert [get(faulted), get(other_vantage), get(other_site)] == ["reset", "OK", "OK"]
    network.heal()
    assert get(faulted) == "OK"


def test_added_latency_delays_every_connection(network, target):
    path = network.route("v1", "a", *target)
    network.set_fault("v1", "a", Fault(latency_s=0.4))
    started = time.monotonic()
    assert get(path) == "OK"
    assert time.monotonic() - started >= 0.4
    assert get(path, timeout=0.2) == "timeout"


def test_loss_drops_about_its_share_of_connections(network, target):
    path = network.route("v1", "a", *target)
    network.set_fault("v1", "a", Fault(loss_pct=30))
    outcomes = [get(path, timeout=0.15) for _ in range(40)]
    assert 4 <= outcomes.count("timeout") <= 22, outcomes
    assert outcomes.count("OK") + outcomes.count("timeout") == 40


def test_a_dead_target_resets_the_clients_connection(network):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert get(network.route("v1", "a", "127.0.0.1", port)) == "reset"


def test_stopping_the_network_ends_held_connections(target):
    net = FaultNetwork().start()
    path = net.route("v1", "a", *target)
    net.set_fault("v1", "a", Fault("blackhole"))
    client = socket.create_connection(path, timeout=5)
    client.sendall(b"GET / HTTP/1.0\r\n\r\n")
    time.sleep(0.1)
    net.stop()
    assert client.recv(10) == b""
    client.close()


def test_each_vantage_point_probes_every_vcenter_and_check_through_its_own_path(network):
    config = load_config(DEMO_CONFIG)
    routed = routed_config(config.model_dump(mode="json"), "aws-vpc", network)
    urls = [s["vcenter"]["url"] for s in routed["sites"]] + [
        c["url"] for svc in routed["services"] for at in svc["sites"].values() for c in at["checks"]
    ]
    assert all(u.startswith("http://127.0.0.1:") for u in urls)
    assert len(set(urls)) == len(urls), "every target has its own path"
    assert routed["sites"][0]["vcenter"]["url"].endswith("/sdk")
    assert [s["name"] for s in routed["sites"]] == [s.name for s in config.sites]
