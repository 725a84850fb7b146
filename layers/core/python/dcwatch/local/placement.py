"""Where the functions run: each with the config as its placement sees the sites (every endpoint behind that
placement's links), and every vantage point's probe a function, and a process, of its own."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from dcwatch.config import Config
from dcwatch.local.faults import FaultNetwork, routed_config
from dcwatch.local.lambdas import LocalLambdas
from dcwatch.local.links import PROBE, placements
from dcwatch.wiring import FUNCTIONS, function


class PlacedFunctions:
    """The functions' environments by placement, and the vantage points' probes, called all at once per round."""

    def __init__(self, config: Config, lambdas: LocalLambdas, network: FaultNetwork):
        self.config, self.lambdas, self.network = config, lambdas, network
        self.probes: dict[str, str] = {}  # vantage point -> its probe function
        self.placement_configs: dict[str, Path] = {}  # placement -> the config as code there sees the sites
        self._probe_pool: ThreadPoolExecutor | None = None

    def place(self, workdir: Path) -> None:
        """Every function sees the sites as its placement does: one routed config per placement, the
        functions there and its vantage point's probe all reading it (so they share its links)."""
        topology, plain = self.config.topology, self.config.model_dump(mode="json")
        for name, placement in placements(topology).items():
            path = self.placement_configs[name] = workdir / f"{name}.yaml"
            path.write_text(yaml.safe_dump(routed_config(plain, placement, topology, self.network)), encoding="utf-8")
        for spec in FUNCTIONS:
            if spec.key != PROBE:
                self.lambdas.set_environment(spec, self._environment(topology.placement(spec.key).name))
        for vantage in topology.vantage_points:
            env = self._environment(vantage.placement.name, vantage.name)
            self.probes[vantage.name] = self.lambdas.add_copy(function(PROBE), vantage.name, env)
        # The schedule's own target is deployed as the first vantage point's probe.
        first = topology.vantage_points[0]
        self.lambdas.set_environment(function(PROBE), self._environment(first.placement.name, first.name))

    def _environment(self, placement: str, vantage: str | None = None) -> dict[str, str]:
        env = {"DCWATCH_CONFIG": str(self.placement_configs[placement])}
        return env | ({"DCWATCH_VANTAGE": vantage} if vantage else {})

    def isolate_probes(self) -> None:
        """Each vantage point's probe in a process of its own, as each is its own Lambda function: a round of a
        thousand checks then shares no interpreter lock with the evaluator, the workflow or the other probes."""
        for name in self.probes.values():
            self.lambdas.isolate(name, stdout=_fileno(sys.stdout))
        self._probe_pool = ThreadPoolExecutor(max(1, len(self.probes)), thread_name_prefix="probe")

    def probe(self, round_id: str) -> dict[str, tuple[Any, str | None]]:
        """One scheduled call of every vantage point's probe, all at once, as their schedules fire."""
        assert self._probe_pool is not None, "isolate_probes() first"
        event = {"id": round_id, "source": "local.scheduler"}
        futures = {v: self._probe_pool.submit(self.lambdas.invoke, name, event) for v, name in self.probes.items()}
        return {vantage: future.result() for vantage, future in futures.items()}

    def close(self) -> None:
        if self._probe_pool is not None:
            self._probe_pool.shutdown(cancel_futures=True)


def _fileno(stream: Any) -> int | None:
    """The file descriptor behind `stream` (the demo's log file, where it redirects stdout); None if none."""
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None
