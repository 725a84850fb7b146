"""Playing a scenario: its steps applied to a running `LocalPipeline` at their times, and the operator's
controls the steps use."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from dcwatch.config import MANUAL_PREFIX, Config
from dcwatch.control import open_maintenance, switch_automation
from dcwatch.local.faults import Fault
from dcwatch.local.links import AnyLink, PathRef, SiteLink, between, select, vpc_vantage
from dcwatch.local.scenario.spec import (
    BusFault,
    ManualDrill,
    ManualFailover,
    NetworkFault,
    Partition,
    ScenarioSpec,
    Step,
    resolve_site,
)

if TYPE_CHECKING:
    from dcwatch.local.pipeline import LocalPipeline


class OperatorControls(Protocol):
    """What an operator switches by hand: the automation switch and maintenance windows."""

    def set_automation(self, enabled: bool) -> None: ...

    def add_maintenance(self, site: str, service: str | None, for_s: float) -> None: ...


class PipelineControls:
    """The operator's controls on the local runtime: the same audited functions the CLI calls."""

    BY = "scenario"

    def __init__(self, pipeline: LocalPipeline):
        self.pipeline = pipeline

    def set_automation(self, enabled: bool) -> None:
        switch_automation(self.pipeline.store, enabled, "a scenario step", self.BY, datetime.now(UTC))

    def add_maintenance(self, site: str, service: str | None, for_s: float) -> None:
        p = self.pipeline
        duration = timedelta(seconds=for_s)
        open_maintenance(p.store, p.config, site, service, duration, "a scenario step", self.BY, datetime.now(UTC))


@dataclass
class Player:
    """Applies a scenario's steps to the pipeline at their times; flapping runs as its own bounded timer chain."""

    pipeline: LocalPipeline
    spec: ScenarioSpec
    log: Callable[[str, str], None]
    controls: OperatorControls | None = None
    errors: list[str] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)
    drills: list[str] = field(default_factory=list)  # the executions of the drills started, by name

    @property
    def _controls(self) -> OperatorControls:
        return self.controls or PipelineControls(self.pipeline)

    def site(self, ref: str) -> str:
        return resolve_site(self.pipeline.config, ref)

    def schedule(self) -> list[tuple[float, Callable[[], None], str, bool]]:
        """(at, action, text, is_fault) sorted by time, flapping expanded into its stops and starts."""
        planned: list[tuple[float, Callable[[], None], str, bool]] = []
        for step in self.spec.steps:
            if step.flap is not None:
                flap = step.flap
                for n in range(flap.times):
                    stop = n % 2 == 0
                    planned.append(
                        (
                            step.at + n * flap.every_s,
                            self._service_action(flap.site, flap.service, stop),
                            f"flap: {flap.service} at {self.site(flap.site)} {'stops' if stop else 'starts'}",
                            True,
                        )
                    )
            else:
                planned.append((step.at, self._action(step), step.describe(), step.is_fault))
        return sorted(planned, key=lambda p: p[0])

    def _service_action(self, site: str, service: str, stop: bool) -> Callable[[], None]:
        services = self.pipeline.services
        if stop:
            return lambda: services.stop_service(self.site(site), service)
        return lambda: services.start_service(self.site(site), service)

    def _action(self, step: Step) -> Callable[[], None]:
        p = self.pipeline
        if step.kill_site is not None:
            return lambda: p.fail_site(self.site(step.kill_site or ""))
        if step.revive_site is not None:
            return lambda: p.revive_site(self.site(step.revive_site or ""))
        if step.vcenter_down is not None:
            return lambda: p.stop_vcenter(self.site(step.vcenter_down or ""))
        if step.services_down is not None:
            return lambda: self._services_down(self.site(step.services_down or ""))
        if step.stop_service is not None:
            return self._service_action(step.stop_service.site, step.stop_service.service, True)
        if step.start_service is not None:
            return self._service_action(step.start_service.site, step.start_service.service, False)
        if step.network is not None:
            return lambda: self._network(step.network)  # type: ignore[arg-type]
        if step.cut is not None:
            return lambda: self._network(step.cut.fault())  # type: ignore[union-attr]
        if step.vpn_down is not None:
            vpc = vpc_vantage(p.config.topology) or ""
            return lambda: self._network(NetworkFault(vantage=vpc, site=step.vpn_down, path="private", mode="refuse"))
        if step.vantage_down is not None or step.isolate is not None:
            return lambda: self._network(NetworkFault(vantage=step.vantage_down or step.isolate, mode="refuse"))
        if step.partition is not None:
            return lambda: self._partition(step.partition)  # type: ignore[arg-type]
        if step.heal is not None:
            heal = step.heal
            if heal.between is not None:
                return lambda: p.network.heal(partition_links(self.pipeline.config, heal.between or []))
            if heal.vantage is None and heal.site == "all" and heal.path == "all":
                return lambda: p.network.heal()  # every link, the sites' own (uplinks, inter-site, customers) too
            return lambda: p.network.heal(links_towards(self.pipeline.config, heal.vantage, heal.site, heal.path))
        if step.uplink_down is not None:
            return lambda: self._uplinks_down(step.uplink_down or "")
        if step.kill_agent is not None:
            return lambda: p.kill_agent(self.site(step.kill_agent or ""))
        if step.vcenter_refuses_login is not None:
            return lambda: p.refuse_vcenter_logins(self.site(step.vcenter_refuses_login or ""))
        if step.maintenance is not None:
            m = step.maintenance
            return lambda: self._controls.add_maintenance(self.site(m.site), m.service, m.for_s)
        if step.automation is not None:
            return lambda: self._controls.set_automation(step.automation == "on")
        if step.bus is not None:
            return lambda: self._bus(step.bus)  # type: ignore[arg-type]
        if step.manual_failover is not None:
            return lambda: self._manual(step.manual_failover)  # type: ignore[arg-type]
        if step.manual_drill is not None:
            return lambda: self._drill(step.manual_drill)  # type: ignore[arg-type]
        if step.evaluator_crash is not None:
            crash = step.evaluator_crash
            return lambda: setattr(p.delivery.bus, "evaluator_crashes", crash.times)
        raise AssertionError(step.action)

    def _partition(self, partition: Partition) -> None:
        applied = Fault(partition.mode)
        links = partition_links(self.pipeline.config, partition.between)
        self.pipeline.network.set_faults(links, applied)
        self.log("links", f"{applied.describe()}: {', '.join(link.describe() for link in links)}")

    def _uplinks_down(self, ref: str) -> None:
        sites = [s.name for s in self.pipeline.config.sites] if ref == "all" else [self.site(ref)]
        links = [SiteLink(site, "uplink") for site in sites]
        self.pipeline.network.set_faults([*links], Fault("refuse"))
        self.log("links", f"refuse: {', '.join(link.describe() for link in links)}")

    def _network(self, fault: NetworkFault) -> None:
        applied = Fault(fault.mode, fault.loss_pct, fault.latency_s)
        links = links_towards(self.pipeline.config, fault.vantage, fault.site, fault.path)
        self.pipeline.network.set_faults(links, applied)
        self.log("links", f"{applied.describe()}: {', '.join(link.describe() for link in links)}")

    def _services_down(self, site: str) -> None:
        """Every service at the site stops answering, as crashed applications would; vCenter and VMs run on."""
        for service, _ in self.pipeline.config.services_at(site):
            self.pipeline.services.stop_service(site, service.name)

    def _bus(self, bus: BusFault) -> None:
        self.pipeline.delivery.bus.duplicate, self.pipeline.delivery.bus.late_s = bus.duplicate, bus.late_s

    def _manual(self, manual: ManualFailover) -> None:
        """`count` requests started at the same moment, as the console and the CLI would start them."""
        source = self.site(manual.from_site)
        barrier = threading.Barrier(manual.count)

        def trigger(n: int) -> None:
            name = f"manual-{source}-{n + 1}"
            request = self._request("disaster", manual, name)
            barrier.wait(timeout=5)
            try:
                self.manual.append(self.pipeline.start_failover(request, name))
            except Exception as exc:  # noqa: BLE001 - a refused trigger is an outcome, not a crash of the run
                self.errors.append(f"manual trigger {name}: {type(exc).__name__}: {exc}"[:200])

        threads = [threading.Thread(target=trigger, args=(n,), daemon=True) for n in range(manual.count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)

    def _drill(self, drill: ManualDrill) -> None:
        """A drill, started as `dcwatch drill` starts one (the workflow takes the lock itself)."""
        name = f"{MANUAL_PREFIX}drill-{self.site(drill.from_site)}-{len(self.drills) + 1}"
        self.pipeline.start_failover(self._request("drill", drill, name), name)
        self.drills.append(name)

    def _request(self, mode: str, manual: ManualDrill | ManualFailover, name: str) -> dict[str, Any]:
        """The request a start by hand sends, as the CLI sends it, under the execution's own name."""
        return {
            "mode": mode,
            "from": self.site(manual.from_site),
            "to": self.site(manual.to),
            "reason": manual.reason,
            "dryRun": False,
            "trigger": "manual",
            "incidentId": name,
        }


def partition_links(config: Config, parties: list[str]) -> list[AnyLink]:
    """The links between a partition's two parties."""
    one, other = (resolve_site(config, p) for p in parties)
    return between(config.topology, [s.name for s in config.sites], one, other)


def links_towards(config: Config, vantage: str | None, site: str, path: PathRef) -> list[AnyLink]:
    """The links of `vantage`'s placement (every placement when None) towards `site` ('all') on `path`."""
    sites, towards = [s.name for s in config.sites], None if site == "all" else resolve_site(config, site)
    return [*select(config.topology, sites, vantage=vantage, site=towards, path=path)]
