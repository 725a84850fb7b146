"""The scenario matrix played in shards side by side, each a local runtime of its own (moto server, vcsims,
agents) in a process of its own on ports of its own.

A scenario mostly waits (steady phase, probe rounds, its quiet window), so shards overlap that waiting:
every scenario still runs whole, with its own bounds, on a pipeline reset between scenarios as before.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import socket
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from dcwatch.local.matrix import load_matrix, run_matrix
from dcwatch.local.scenario import ScenarioSpec

# One runtime unless asked (`make test MATRIX_SHARDS=N`): each more shard adds the CPU of a runtime, and the
# scenarios' detection bounds must hold under it. On 2 cores busy with other work, three shards starved the
# probes and two missed standby-down's 12 s bound by 1 s, where one kept every bound with 5 s to spare.
# Not a DCWATCH_ variable: those are the functions' environment (tests/infrastructure/test_one_source.py).
SHARDS = int(os.environ.get("MATRIX_SHARDS", "1"))
FIXED_PORT = re.compile(r":(1[89]\d\d\d)\b")
# Besides its steady phase, steps and quiet window: the settle, the last round and the reset.
OVERHEAD_S = 6.0


def free_port() -> int:
    """A port free on every loopback address the demo config serves on."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        try:
            for host in ("127.0.10.1", "127.0.20.1"):
                with socket.socket() as sock:
                    sock.bind((host, port))
            return int(port)
        except OSError:
            continue
    raise RuntimeError("no free port on the demo's loopback addresses")


def on_own_ports(text: str, taken: set[str], port: Callable[[], int] = free_port) -> str:
    """The config `text` with each fixed port replaced by a free one not in `taken` (which it extends)."""
    ports: dict[str, str] = {}
    for fixed in sorted(set(FIXED_PORT.findall(text))):
        while (new := str(port())) in taken:
            pass
        ports[fixed] = new
        taken.add(new)
    return FIXED_PORT.sub(lambda m: ":" + ports[m.group(1)], text)


def expected_s(spec: ScenarioSpec) -> float:
    """How long a scenario holds its runtime at least: it never ends before its quiet window has passed."""
    return spec.steady_s + spec.last_step_at + spec.observe_s + OVERHEAD_S


def split(specs: list[ScenarioSpec], shards: int) -> list[list[ScenarioSpec]]:
    """Longest first, each to the shard that ends soonest, so that the shards end close together."""
    parts: list[list[ScenarioSpec]] = [[] for _ in range(max(1, min(shards, len(specs))))]
    for spec in sorted(specs, key=expected_s, reverse=True):
        min(parts, key=lambda part: sum(map(expected_s, part))).append(spec)
    return parts


def play_shard(names: list[str], config: str, log_path: str) -> list[dict[str, Any]]:
    return run_matrix(load_matrix(only=names), out=lambda line: None, log_path=log_path, config=config)


def play_matrix(specs: list[ScenarioSpec], config_text: str, workdir: Path, shards: int = SHARDS) -> list[dict]:
    """Every scenario's report, in the order of `specs`; each shard under `workdir/shard-N` (config, logs)."""
    taken: set[str] = set()
    jobs = []
    for n, part in enumerate(split(specs, shards)):
        home = workdir / f"shard-{n}"
        home.mkdir(parents=True)
        config = home / "config.yaml"
        config.write_text(on_own_ports(config_text, taken), encoding="utf-8")
        jobs.append(([s.name for s in part], str(config), str(home / "scenarios.log")))
    with ProcessPoolExecutor(len(jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(play_shard, *job) for job in jobs]
        reports = [report for future in futures for report in future.result()]
    order = {spec.name: n for n, spec in enumerate(specs)}
    return sorted(reports, key=lambda report: order[report["verdict"]["scenario"]])
