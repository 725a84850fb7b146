"""Prometheus blackbox_exporter as the benchmark's yardstick: its process and a bounded client.

The client plays Prometheus: one `/probe?target=...&module=http_2xx` request per target, at most
`concurrency` in flight, `probe_success` read from the answer.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import aiohttp

from dcwatch.local.cloud import free_port

DEFAULT_BINARY = Path(__file__).resolve().parent.parent / ".build/blackbox/usr/bin/prometheus-blackbox-exporter"
SUCCESS = re.compile(rb"^probe_success (\S+)$", re.MULTILINE)
CONFIG = """\
modules:
  http_2xx:
    prober: http
    timeout: {timeout_s}s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
"""


class Exporter:
    """blackbox_exporter on a free loopback port with an `http_2xx` module of the given timeout."""

    def __init__(self, binary: Path, workdir: Path, timeout_s: float):
        if not binary.is_file():
            raise FileNotFoundError(f"blackbox_exporter not found at {binary}: run `make blackbox`")
        self.binary = binary
        self.config = workdir / "blackbox.yml"
        self.config.write_text(CONFIG.format(timeout_s=timeout_s))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait_s: float = 10.0) -> Exporter:
        self.process = subprocess.Popen(
            [
                str(self.binary),
                f"--config.file={self.config}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=error",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise RuntimeError(f"blackbox_exporter exited with {self.process.returncode}: {error.strip()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/healthy", timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"blackbox_exporter did not answer on {self.url} within {wait_s:g} s")

    def cpu_s(self) -> float:
        """CPU seconds the exporter has used so far (user + system, from /proc)."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None


async def probe_all(
    exporter_url: str, targets: list[str], concurrency: int, timeout_s: float
) -> list[tuple[bool, float]]:
    """(probe_success, latency in ms) per target, as Prometheus would scrape them: bounded, one request each."""
    limit = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    client_timeout = aiohttp.ClientTimeout(total=timeout_s + 10)  # the exporter enforces the probe's timeout

    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

        async def one(target: str) -> tuple[bool, float]:
            async with limit:
                started = time.perf_counter()
                async with session.get(
                    f"{exporter_url}/probe", params={"target": target, "module": "http_2xx"}
                ) as response:
                    body = await response.read()
                match = SUCCESS.search(body)
                if response.status != 200 or match is None:
                    raise RuntimeError(f"blackbox_exporter answered {response.status} for {target}: {body[:200]!r}")
                return match.group(1) == b"1", (time.perf_counter() - started) * 1000

        return await asyncio.gather(*(one(target) for target in targets))
