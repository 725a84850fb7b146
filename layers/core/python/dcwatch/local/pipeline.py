"""The local pipeline: both simulated sites, moto with dcwatch's resources, and the event plumbing, started together.

Built from the config alone (sites, VMs, services, records), so any valid config runs. Used by
`dcwatch demo`, `dcwatch scenarios` and the integration and end-to-end tests; stops everything it
started. With a `fencing` section, both sites' agents run as processes of their own (`dcwatch.local.agents`).
The network is the deployed one (`dcwatch.local.links`, from `config.topology`): every vantage
point has its own probe function, and every function reaches the sites only through the faultable links
of its placement (`dcwatch.local.faults`, `dcwatch.local.placement`), with the config as that placement sees
the sites. `reset()` brings a running pipeline back to its state after start, so a matrix of scenarios shares
one moto server and one vcsim per site. The parts: `sites` (the vCenters), `delivery` (the event plumbing),
`placement` (where the functions run), `deployment` (what callers read and drive once it runs).
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from dcwatch.adapters.secrets import Credentials
from dcwatch.config import Config, load_config
from dcwatch.local.agents import RUN_FOR_S as AGENTS_RUN_FOR_S
from dcwatch.local.agents import AgentTables, LocalAgents
from dcwatch.local.cloud import LocalCloud, Resources
from dcwatch.local.delivery import BusFaults, EventPlumbing, Listener
from dcwatch.local.deployment import LocalDeployment
from dcwatch.local.faults import FaultNetwork
from dcwatch.local.lambdas import LocalLambdas
from dcwatch.local.links import SiteLink
from dcwatch.local.placement import PlacedFunctions
from dcwatch.local.services import DemoServices
from dcwatch.local.sites import SiteVcenters

EXECUTIONS_END_TIMEOUT_S = 60.0


class LocalPipeline(LocalDeployment):
    """Starts the parts, resets them between scenarios, and breaks the sites as scenarios ask."""

    def __init__(
        self,
        config_path: str | Path,
        *,
        on_site_status: Listener = lambda event: None,
        on_notification: Listener = lambda body: None,
        on_power_on: Callable[[str, str], None] = lambda site, vm: None,
        on_site_built: Callable[[str, int], None] = lambda site, vms: None,
        boot_s: float = 0.0,
        log_dir: str | Path | None = None,
        run_agents: bool = True,
        agents_run_for_s: float = AGENTS_RUN_FOR_S,
    ):
        """`log_dir`: where the site agents write their logs (the run directory when None); `run_agents`: start
        the config's site agents (False: a test plays their part, writing leases and reports itself);
        `agents_run_for_s`: how long they run before they end by themselves (a scenario's reset starts them anew)."""
        self.run_agents = run_agents
        self.agents_run_for_s = agents_run_for_s
        self.boot_s = boot_s
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.config_path = str(Path(config_path).resolve())
        self.config: Config = load_config(self.config_path)
        self.credentials = {s.name: Credentials("dcwatch", secrets.token_urlsafe(12)) for s in self.config.sites}
        self.delivery = EventPlumbing(self.config.name)
        self.site_status, self.notifications = self.delivery.site_status, self.delivery.notifications
        self._lock = self.delivery.lock
        self.listen(on_site_status, on_notification, on_power_on)
        self._on_site_built = on_site_built
        self._stack = ExitStack()
        self.vcenters = SiteVcenters(self.config, self.credentials)
        self.vcsims, self.vcenter_logins = self.vcenters.vcsims, self.vcenters.logins
        self.network = FaultNetwork()
        self.agents: LocalAgents | None = None

    def listen(
        self,
        on_site_status: Listener = lambda event: None,
        on_notification: Listener = lambda body: None,
        on_power_on: Callable[[str, str], None] = lambda site, vm: None,
    ) -> None:
        """Who hears site decisions, notifications and VMs coming up (replaced per scenario)."""
        self.delivery.listen(on_site_status, on_notification)
        self._on_power_on = on_power_on

    def __enter__(self) -> LocalPipeline:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _start(self) -> None:
        config, stack = self.config, self._stack
        self.vcenters.start(stack, self._on_site_built)

        self.cloud = LocalCloud(config, self.config_path).start()
        stack.callback(self.cloud.stop)
        self.resources: Resources = self.cloud.provision(self.credentials)
        assert self.cloud.lambdas is not None
        self.lambdas: LocalLambdas = self.cloud.lambdas
        self.delivery.install_crash_hook()
        stack.callback(self.delivery.remove_crash_hook)

        self.network.start()
        stack.callback(self.network.stop)
        self.run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dcwatch-run-")))
        self.functions = PlacedFunctions(config, self.lambdas, self.network)
        self.functions.place(self.run_dir)
        self.probes, self.placement_configs = self.functions.probes, self.functions.placement_configs
        self.functions.isolate_probes()
        stack.callback(self.lambdas.close)
        stack.callback(self.functions.close)

        logins = self.vcenter_logins
        self.services = DemoServices(config, logins, on_power_on=self._power_on, boot_s=self.boot_s).start()
        stack.callback(self.services.stop)
        self.delivery.start(self.cloud, self.lambdas, self.resources)
        stack.callback(self.delivery.stop)
        if config.fencing is not None and config.fencing.agents and self.run_agents:
            plain, logs = config.model_dump(mode="json"), self.log_dir or self.run_dir
            self.agents = LocalAgents(
                config, plain, self.credentials, self.network, self.run_dir, logs, self.agents_run_for_s
            )
            stack.callback(self.agents.stop)
            self._start_agents()

    def _start_agents(self) -> None:
        if self.agents is not None:
            self.agents.start(self.cloud.endpoint, self._agent_tables)

    @property
    def _agent_tables(self) -> AgentTables:
        r = self.resources
        return AgentTables(r.locks_table_name, r.audit_table_name, r.bus_name)

    def _power_on(self, site: str, vm: str) -> None:
        self._on_power_on(site, vm)

    def probe(self, round_id: str) -> dict[str, tuple[Any, str | None]]:
        """One scheduled call of every vantage point's probe, all at once, as their schedules fire."""
        return self.functions.probe(round_id)

    def reset(self) -> None:
        """Back to the state after start: both sites as built, fresh AWS resources, every path healthy, both
        agents started afresh."""
        if self.agents is not None:
            self.agents.stop()
        self.network.heal()
        self.delivery.bus = BusFaults()
        self.deny_waiting_approvals()
        self.wait_executions_end(EXECUTIONS_END_TIMEOUT_S)
        self.delivery.stop()
        self.cloud.reset()
        self.resources = self.cloud.provision(self.credentials)
        self.lambdas.cold_start()
        self.vcenters.restore()
        self.services.revive()
        with self._lock:
            self.site_status.clear()
            self.notifications.clear()
            self.lambdas.invocations.clear()
            self.delivery.replayed.clear()
        self.delivery.start(self.cloud, self.lambdas, self.resources)
        self._start_agents()

    def fail_site(self, site: str) -> None:
        """The outage: the site's vCenter stops, every one of its services goes dark, and its agent dies (a config
        without `fencing` runs none)."""
        self.vcenters.stop(site)
        self.services.fail_site(site)
        if self.agents is not None:
            self.agents.kill(site)

    def revive_site(self, site: str) -> None:
        """The power returns at a dead site: its vCenter runs again, its VMs are off (nothing started them), its
        services follow them (dark), its agent starts again. Production stays where it runs: bringing it back
        is a failback's job."""
        self.vcenters.revive(site)
        self.services.revive_site(site)
        if self.agents is not None:
            self.agents.restart(site, self.cloud.endpoint, self._agent_tables)

    def kill_agent(self, site: str) -> None:
        """The site's agent dies (its VM loses power); the site itself runs on."""
        if self.agents is None:
            raise RuntimeError("no site agents run: the config has no fencing section")
        self.agents.kill(site)

    def refuse_vcenter_logins(self, site: str) -> None:
        """The site's vCenter refuses every login from now on (its identity source broken); its VMs run on."""
        self.vcenters.refuse_logins(site, self.services.holding)

    def customer_address(self, site: str, host: str, port: int) -> tuple[str, int]:
        """Where a customer's connection to one of the site's service addresses goes: the customers' path."""
        return self.network.route(SiteLink(site, "customers"), host, port)

    def stop_vcenter(self, site: str) -> None:
        """The site's vCenter stops; its VMs and services run on."""
        self.vcenters.stop(site)
