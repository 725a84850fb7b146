"""The benchmark's HTTP targets: one process, one loopback port per target, a fixed latency.

Each target has its own port so that neither client can reuse a connection across targets: every
check pays for its own TCP connection, as it would against real hosts. A raw asyncio protocol
keeps the server's own cost per request small, so the clients, not the server, set the pace.
Run as `python -m bench.targets --targets N ...`: it prints the ports as one JSON line on stdout,
then serves until stdin closes or it is terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import sys
from functools import partial

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK"


def slow_targets(count: int, fraction: float) -> set[int]:
    """Which targets answer too late: `fraction` of them, spread evenly (every 20th for 5 %)."""
    return {i for i in range(count) if int((i + 1) * fraction) > int(i * fraction)}


class Target(asyncio.Protocol):
    """Answers every request (keep-alive included) with 200 OK after `delay_s`."""

    def __init__(self, delay_s: float):
        self.delay_s = delay_s
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:  # GET requests carry no body
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            asyncio.get_running_loop().call_later(self.delay_s, self._answer)

    def _answer(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(OK)


def listen(count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(512)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


async def serve(count: int, latency_s: float, slow_fraction: float, slow_s: float) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, count * 4 + 256)), hard))
    loop = asyncio.get_running_loop()
    slow = slow_targets(count, slow_fraction)
    sockets = listen(count)
    servers = [
        await loop.create_server(partial(Target, slow_s if i in slow else latency_s), sock=sock)
        for i, sock in enumerate(sockets)
    ]
    print(json.dumps({"ports": [s.getsockname()[1] for s in sockets], "slow": sorted(slow)}), flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    stdin = sys.stdin.fileno()
    loop.add_reader(stdin, lambda: None if os.read(stdin, 1) else stop.set())  # closed: the bench has gone
    await stop.wait()
    for server in servers:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--targets", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--slow-fraction", type=float, default=0.05)
    parser.add_argument("--slow-s", type=float, required=True, help="how late the slow targets answer")
    args = parser.parse_args()
    asyncio.run(serve(args.targets, args.latency_ms / 1000, args.slow_fraction, args.slow_s))


if __name__ == "__main__":
    main()
