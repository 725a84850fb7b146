"""A vCenter whose path drops in the middle of a step, against vcsim behind the local fault network: the step
fails as `TransientError` (the workflow's Retry runs it again), never as a bare socket error it would catch as
a failed recovery."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pyVmomi import vim

from dcwatch.adapters.vsphere import VsphereInventory, vcenter_session
from dcwatch.config import VCenter
from dcwatch.errors import TransientError
from dcwatch.local.faults import FaultNetwork
from dcwatch.local.links import Link

pytestmark = pytest.mark.integration

VPC_TO_SOUTH = Link("vpc", "south", "private")


@pytest.fixture
def network() -> Iterator[FaultNetwork]:
    net = FaultNetwork(seed=3).start()
    yield net
    net.stop()


def behind(network: FaultNetwork, vcenter: VCenter) -> VCenter:
    """The same vCenter, reached through the fault network's path from the VPC."""
    host, port = network.route(VPC_TO_SOUTH, "127.0.0.1", int(vcenter.url.split(":")[2].split("/")[0]))
    return vcenter.model_copy(update={"url": f"http://{host}:{port}/sdk"})


def starts(site, vm_name: str) -> int:
    """How often vCenter started the VM (its VmStartingEvents)."""
    with vcenter_session(site.vcenter, site.credentials) as si:
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
        try:
            vm = next(v for v in view.view if v.name == vm_name)
        finally:
            view.Destroy()
        spec = vim.event.EventFilterSpec(
            eventTypeId=["VmStartingEvent"], entity=vim.event.EventFilterSpec.ByEntity(entity=vm, recursion="self")
        )
        return len(si.content.eventManager.QueryEvents(spec))


def test_a_vcenter_dropping_mid_power_on_is_transient_and_the_retry_powers_each_vm_on_once(vcsim_site, network):
    site = vcsim_site([("web-1", False), ("web-2", False)])
    with VsphereInventory.connect(behind(network, site.vcenter), site.credentials) as inventory:
        assert inventory.power_states(["web-1", "web-2"]) == {"web-1": "poweredOff", "web-2": "poweredOff"}
        network.stop()  # the path to vCenter drops: the session's connections are cut, new ones refused
        with pytest.raises(TransientError, match="connection failed mid-step"):
            inventory.power_on(["web-1", "web-2"])

    # The workflow's retry: a new invocation, a new session over a path that works again
    with VsphereInventory.connect(site.vcenter, site.credentials) as inventory:
        tasks = inventory.power_on(["web-1", "web-2"])
        assert sorted(tasks) == ["web-1", "web-2"]
    assert starts(site, "web-1") == 1 and starts(site, "web-2") == 1


def test_a_task_vcenter_no_longer_knows_is_transient_not_a_failed_group(vcsim_site):
    site = vcsim_site([("web-1", False)])
    with (
        VsphereInventory.connect(site.vcenter, site.credentials) as inventory,
        pytest.raises(TransientError, match="no longer known"),
    ):
        inventory.task_states(["task-999999"])
