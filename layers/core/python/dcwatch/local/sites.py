"""The sites' vCenters: one simulator per site with the config's VMs (on at the active site, off at the standby),
restored between scenarios, and stopped or made to refuse logins as scenarios ask."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack

from dcwatch.adapters.secrets import Credentials
from dcwatch.config import Config
from dcwatch.local.vcsim import VcsimProcess, converge_vms, create_vms, power_states


class SiteVcenters:
    """Each site's vCenter simulator, and the credentials it accepts."""

    def __init__(self, config: Config, credentials: dict[str, Credentials]):
        self.config, self.credentials = config, credentials
        self.vcsims: dict[str, VcsimProcess] = {}
        # What the simulated vCenters accept, where a scenario changed it (AWS's secrets keep `credentials`).
        self.logins = dict(credentials)

    def vms(self, site: str) -> list[tuple[str, bool]]:
        """The site's VMs as built: on at the active site, off at the standby."""
        on = site == self.config.active_site
        return [(vm.name, on) for _, at in self.config.services_at(site) for vm in at.vms]

    @property
    def networks(self) -> list[str]:
        """The port groups each site has besides its VMs' own: the drill's isolated network."""
        return [self.config.drill.network] if self.config.drill else []

    def start(self, stack: ExitStack, on_built: Callable[[str, int], None]) -> None:
        for site in self.config.sites:
            process = VcsimProcess(site.name, site.vcenter, self.credentials[site.name]).start()
            stack.callback(process.stop)
            self.vcsims[site.name] = process
            create_vms(site.vcenter, self.credentials[site.name], self.vms(site.name), self.networks)
            on_built(site.name, len(self.vms(site.name)))

    def restore(self) -> None:
        """Every vCenter running again, accepting AWS's credentials, its VMs powered as built, a drill's clones gone."""
        for site in self.config.sites:
            process = self.vcsims[site.name]
            if process.credentials != self.credentials[site.name]:
                process.stop()
                process.credentials = self.logins[site.name] = self.credentials[site.name]
            if not process.running:
                process.start()
            converge_vms(site.vcenter, self.credentials[site.name], self.vms(site.name), self.networks)

    def stop(self, site: str) -> None:
        self.vcsims[site].stop()

    def revive(self, site: str) -> None:
        """A stopped vCenter runs again, its VMs all off (a site whose power returns starts none by itself);
        a running one is left as it is."""
        process = self.vcsims[site]
        if process.running:
            return
        process.start()
        vcenter = self.config.site(site).vcenter
        converge_vms(vcenter, process.credentials, [(name, False) for name, _ in self.vms(site)], self.networks)

    def refuse_logins(self, site: str, holding: Callable[[str], AbstractContextManager[None]]) -> None:
        """The site's vCenter refuses every login from now on (its identity source broken): it comes back at once
        with its VMs as they were, accepting a password no one has; only the simulated guests still read it.
        `holding(site)`: the site's services, held running while their vCenter comes back."""
        vcenter, process = self.config.site(site).vcenter, self.vcsims[site]
        names = [name for name, _ in self.vms(site)]
        powered = power_states(vcenter, self.logins[site], names)
        with holding(site):  # the VMs run on while their vCenter comes back
            process.stop()
            process.credentials = self.logins[site] = Credentials("dcwatch", secrets.token_urlsafe(12))
            process.start()
            built = [(name, powered.get(name) == "poweredOn") for name in names]
            create_vms(vcenter, process.credentials, built, self.networks)
