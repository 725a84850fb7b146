"""The failover's power steps (Fence, StartGroup, CheckGroup) against a real vCenter simulator through pyvmomi:
a group's VMs are powered on side by side, a VM vCenter refuses is named, the fence powers off every VM, and
running a step again changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dcwatch.adapters.vsphere import VsphereInventory, vcenter_session
from dcwatch.errors import PowerOnFailed
from dcwatch.local.vcsim import guests_named, report_guest_ips
from dcwatch.recovery import steps
from dcwatch.recovery.state import WorkflowState, utcnow
from tests.helpers import demo_config

pytestmark = pytest.mark.integration

FAILED_SITE_VMS = ["radio-stream-a", "shop-db-a", "shop-web-a1", "shop-web-a2", "transit-app-a", "transit-db-a"]
GROUPS = [["shop-db-b", "transit-db-b"], ["shop-web-b1", "shop-web-b2", "radio-stream-b"], ["transit-app-b"]]


def failover() -> WorkflowState:
    request = {
        "action": "failover",
        "from": "dc-a",
        "to": "dc-b",
        "reason": "dc-a lost power",
        "incidentId": "manual-p-1",
    }
    return steps.validate_request(request, demo_config(), execution="manual-p-1")


def boot_guests(site, vms: list[str]) -> None:
    """What the guests' VMware Tools do once booted: report an IP."""
    with vcenter_session(site.vcenter, site.credentials) as si:
        found = guests_named(si, vms)
        report_guest_ips(si, {name: vm for name, (vm, _) in found.items()}, dict.fromkeys(found, "192.0.2.10"))


def test_a_group_is_powered_on_side_by_side_and_seen_up_then_starting_it_again_changes_nothing(vcsim_site):
    # Given the standby's VMs are all off
    site = vcsim_site([(vm, False) for group in GROUPS for vm in group])
    state = failover()
    state.progress.group = 1
    with VsphereInventory.connect(site.vcenter, site.credentials) as inventory:
        # When group 2 is started, then each of its VMs has a power-on task and runs; no other VM was touched
        state = steps.start_group(state, inventory, timeout_s=60)
        assert sorted(state.progress.tasks) == sorted(GROUPS[1])
        assert all(state.progress.tasks.values()) and len(set(state.progress.tasks.values())) == len(GROUPS[1])
        assert set(inventory.power_states(GROUPS[1]).values()) == {"poweredOn"}
        assert set(inventory.power_states(GROUPS[0] + GROUPS[2]).values()) == {"poweredOff"}

        # And once their guests report, the group is up
        boot_guests(site, GROUPS[1])
        state = steps.check_group(state, inventory, wait_until=utcnow() + timedelta(seconds=10))
        assert state.progress.group == 2 and sorted(state.progress.powered_on) == sorted(GROUPS[1])

        # When the same group is started again (a retried step), then nothing is powered on twice
        state.progress.group = 1
        again = steps.start_group(state, inventory, timeout_s=60)
        assert again.timeline[-1].detail == "group 2: power on nothing (3 already on)"
        assert set(again.progress.tasks.values()) == {""}


def test_a_vm_vcenter_refuses_to_power_on_is_named_and_the_rest_of_its_group_still_comes_up(vcsim_site):
    # Given one VM of group 2 is a template, which vCenter refuses to power on
    site = vcsim_site([(vm, False) for group in GROUPS for vm in group])
    with vcenter_session(site.vcenter, site.credentials) as si:
        vm, _ = guests_named(si, ["shop-web-b2"])["shop-web-b2"]
        vm.MarkAsTemplate()
    state = failover()
    state.progress.group = 1

    # When the group is started, then the step fails naming that VM and why, and the others were started
    with VsphereInventory.connect(site.vcenter, site.credentials) as inventory:
        with pytest.raises(PowerOnFailed, match=r"refused to power on shop-web-b2: .*template") as raised:
            steps.start_group(state, inventory, timeout_s=60)
        assert "started meanwhile: radio-stream-b, shop-web-b1" in str(raised.value)
        power = inventory.power_states(GROUPS[1])
    assert power == {"shop-web-b1": "poweredOn", "radio-stream-b": "poweredOn", "shop-web-b2": "poweredOff"}


def test_the_fence_powers_off_every_vm_of_the_failed_site_and_fencing_again_finds_them_off(vcsim_site):
    # Given the failed site's vCenter answers and five of its six VMs run
    site = vcsim_site([(vm, vm != "radio-stream-a") for vm in FAILED_SITE_VMS])
    running = sorted(set(FAILED_SITE_VMS) - {"radio-stream-a"})

    def connect():
        return VsphereInventory.connect(site.vcenter, site.credentials)

    # When the fence runs, then every VM is off and the proof names what it powered off and what was off already
    state = steps.fence(failover(), connect, wait_until=utcnow() + timedelta(seconds=10))
    with connect() as inventory:
        assert set(inventory.power_states(FAILED_SITE_VMS).values()) == {"poweredOff"}
    assert state.fencing == f"fenced dc-a: powered off {', '.join(running)}; already off: radio-stream-a"
    assert state.fence_proof is not None and state.fence_proof.proven

    # When it runs again (a retried step), then it powers off nothing and still proves the site fenced
    again = steps.fence(failover(), connect, wait_until=utcnow() + timedelta(seconds=10))
    assert again.fencing == f"fenced dc-a: powered off nothing; already off: {', '.join(sorted(FAILED_SITE_VMS))}"
    assert again.fence_proof is not None and again.fence_proof.proven


def test_many_vms_are_powered_on_and_off_each_by_a_task_of_its_own_and_again_nothing_is_started(vcsim_site):
    # Given more VMs than calls in flight at once, a few of them running already
    names = [f"app-{n:02d}" for n in range(20)]
    already = names[::5]
    site = vcsim_site([(name, name in already) for name in names])
    with VsphereInventory.connect(site.vcenter, site.credentials) as inventory:
        # When they are powered on, then each VM that was off has a task of its own and runs
        started = inventory.power_on(names)
        assert sorted(started) == sorted(set(names) - set(already)) and len(set(started.values())) == len(started)
        assert set(inventory.power_states(names).values()) == {"poweredOn"}
        assert inventory.power_on(names) == {}

        # When they are powered off, then each has a task of its own and is off; again, nothing is started
        stopped = inventory.power_off([*names, "not-there"])
        assert sorted(stopped) == names and len(set(stopped.values())) == len(names)
        assert set(inventory.power_states(names).values()) == {"poweredOff"}
        assert inventory.power_off(names) == {}
