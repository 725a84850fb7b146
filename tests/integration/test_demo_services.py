"""The demo's service endpoints take a probe round's burst of connections as a real web server does."""

from __future__ import annotations

import socket
from contextlib import ExitStack

import pytest

from dcwatch.local.cloud import free_port
from dcwatch.local.services import Endpoint, _handler_for, _Listening

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
