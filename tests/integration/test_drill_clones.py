"""Drills on clones, at a real vCenter simulator (vcsim) through pyvmomi: clones of the standby VMs made powered off
and marked, isolated on the drill network, found again by name and mark, destroyed; the standby VMs untouched;
`dcwatch drill --cleanup` removing what a killed drill left."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pyVmomi import vim

from dcwatch.adapters.dynamodb import DynamoLeases
from dcwatch.adapters.secrets import Credentials
from dcwatch.adapters.vsphere import VsphereDrillLab, read_properties, vcenter_session
from dcwatch.cli import main
from dcwatch.config import load_config
from dcwatch.config.workflow import clone_name
from dcwatch.errors import DrillCloneFailed, NotADrillClone
from dcwatch.local.cloud import create_tables
from dcwatch.local.vcsim import PRODUCTION_NETWORK, VcsimProcess, converge_vms, create_vms
from tests.configs import write_pair_config
from tests.helpers import moto_credentials

pytestmark = pytest.mark.integration

DRILL_NETWORK = "dcwatch-drill"
RUN = "0badc0de"
STANDBY = ["shop-web-1", "shop-db-1"]
CLONES = {clone_name(vm, RUN): vm for vm in STANDBY}


@pytest.fixture
def site(vcsim_site) -> Any:
    """A standby site: two VMs off, their NICs on the production network; the drill network beside it."""
    site = vcsim_site([(vm, False) for vm in STANDBY] + [("shop-web-2", True)], name="standby")
    create_vms(site.vcenter, site.credentials, [], [DRILL_NETWORK])
    return site


def made(lab: VsphereDrillLab, clones: dict[str, str], **where: str) -> dict[str, str]:
    """Clone and wait for the tasks; returns the task ids by clone."""
    tasks = lab.clone(clones, RUN, **where)
    lab._await(tasks, "cloning", DrillCloneFailed)
    return tasks


def described(si: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    """What vCenter says of each VM: power, NICs and their backings, annotation, extraConfig, datastores, folder,
    resource pool."""
    props = ["name", "runtime.powerState", "config", "datastore", "parent", "resourcePool", "network"]
    seen = {}
    for _, p in read_properties(si, vim.VirtualMachine, props):
        if p["name"] in names:
            nics = [d for d in p["config"].hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]
            seen[p["name"]] = {
                "power": p["runtime.powerState"],
                "nics": [(n.key, n.macAddress, type(n.backing).__name__, _backing(n.backing)) for n in nics],
                "networks": sorted(net.name for net in p["network"]),
                "annotation": p["config"].annotation,
                "extra_config": sorted((o.key, str(o.value)) for o in p["config"].extraConfig or []),
                "datastores": sorted(ds.name for ds in p["datastore"]),
                "folder": p["parent"].name,
                "pool": p["resourcePool"]._moId,
            }
    return seen


def _backing(backing: Any) -> str:
    if isinstance(backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
        return backing.port.portgroupKey
    return f"{backing.deviceName}/{backing.network._moId}"


def test_clones_of_two_standby_vms_are_made_powered_off_marked_and_every_nic_moved_to_the_drill_network(site):
    with VsphereDrillLab.connect(site.vcenter, site.credentials) as lab:
        tasks = made(lab, CLONES)
        assert sorted(tasks) == sorted(CLONES)
        assert {s.state for s in lab.task_states(list(tasks.values())).values()} == {"success"}
        made_off = {c.name: c.power for c in lab.clones(RUN)}
        lab.isolate(list(CLONES), DRILL_NETWORK)
        found = lab.clones(RUN)
        with vcenter_session(site.vcenter, site.credentials) as si:
            clones = described(si, list(CLONES))
    assert made_off == dict.fromkeys(CLONES, "poweredOff")
    assert [(c.name, c.original, c.run, c.networks) for c in found] == [
        (name, CLONES[name], RUN, (DRILL_NETWORK,)) for name in sorted(CLONES)
    ]
    for name, clone in clones.items():
        assert clone["power"] == "poweredOff"
        assert ("dcwatch.drill.original", CLONES[name]) in clone["extra_config"]
        assert ("dcwatch.drill.run", RUN) in clone["extra_config"]
        assert clone["nics"] and {nic[2] for nic in clone["nics"]} == {
            "vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo"
        }
        assert clone["networks"] == [DRILL_NETWORK]


def test_a_drill_leaves_the_standby_vms_as_they_were_in_vcenter(site):
    with vcenter_session(site.vcenter, site.credentials) as si:
        before = described(si, STANDBY)
    with VsphereDrillLab.connect(site.vcenter, site.credentials) as lab:
        made(lab, CLONES)
        lab.isolate(list(CLONES), DRILL_NETWORK)
        with vcenter_session(site.vcenter, site.credentials) as si:
            during = described(si, STANDBY)
        assert lab.destroy(list(CLONES)) == sorted(CLONES)
    with vcenter_session(site.vcenter, site.credentials) as si:
        after = described(si, STANDBY)
    assert {vm["networks"][0] for vm in before.values()} == {PRODUCTION_NETWORK}
    assert before["shop-web-1"]["power"] == "poweredOff"
    assert during == before
    assert after == before


def test_clones_are_made_in_the_named_folder_pool_and_datastore(site):
    with vcenter_session(site.vcenter, site.credentials) as si:
        datacenter = si.content.rootFolder.childEntity[0]
        datacenter.vmFolder.CreateFolder("drills")
        datastore = datacenter.datastore[0].name
        pool = datacenter.hostFolder.childEntity[0].resourcePool
        allocation = vim.ResourceAllocationInfo(
            reservation=0, limit=-1, expandableReservation=True, shares=vim.SharesInfo(level="normal", shares=0)
        )
        pool.CreateResourcePool(
            "drill-pool", vim.ResourceConfigSpec(cpuAllocation=allocation, memoryAllocation=allocation)
        )
    one = dict(list(CLONES.items())[:1])
    with VsphereDrillLab.connect(site.vcenter, site.credentials) as lab:
        made(lab, one, folder="drills", resource_pool="drill-pool", datastore=datastore)
    with vcenter_session(site.vcenter, site.credentials) as si:
        [clone] = described(si, list(one)).values()
        pools = {p["name"]: o._moId for o, p in read_properties(si, vim.ResourcePool, ["name"])}
    assert (clone["folder"], clone["pool"], clone["datastores"]) == ("drills", pools["drill-pool"], [datastore])


def test_a_folder_the_site_does_not_have_is_named_and_nothing_is_cloned(site):
    with VsphereDrillLab.connect(site.vcenter, site.credentials) as lab:
        with pytest.raises(DrillCloneFailed, match="VM folder 'no-such' does not exist"):
            lab.clone(CLONES, RUN, folder="no-such")
        assert lab.clones() == []


def test_clones_are_found_by_name_and_mark_and_a_vm_only_named_like_one_is_neither_found_nor_destroyed(site):
    impostor = clone_name("shop-web-2", RUN)
    create_vms(site.vcenter, site.credentials, [(impostor, True)])
    with VsphereDrillLab.connect(site.vcenter, site.credentials) as lab:
        made(lab, CLONES)
        assert [c.name for c in lab.clones(RUN)] == sorted(CLONES)
        assert [c.name for c in lab.clones()] == sorted(CLONES)
        assert lab.clones("ffffffff") == []
        with pytest.raises(NotADrillClone, match=impostor):
            lab.destroy([impostor, *CLONES])
        with pytest.raises(NotADrillClone, match=impostor):
            lab.isolate([impostor], DRILL_NETWORK)
        with pytest.raises(NotADrillClone, match=impostor):
            lab.clone({impostor: "shop-web-2"}, RUN)
    with vcenter_session(site.vcenter, site.credentials) as si:
        left = described(si, [impostor, *CLONES])
    assert left[impostor]["power"] == "poweredOn"
    assert left[impostor]["networks"] == [PRODUCTION_NETWORK]
    assert sorted(left) == sorted([impostor, *CLONES])  # the refusal destroyed none of them


def test_destroy_powers_off_and_removes_the_clones_and_a_second_destroy_does_nothing(site):
    with VsphereDrillLab.connect(site.vcenter, site.credentials) as lab:
        made(lab, CLONES)
        with vcenter_session(site.vcenter, site.credentials) as si:
            web = next(o for o, p in read_properties(si, vim.VirtualMachine, ["name"]) if p["name"] in CLONES)
            web.PowerOnVM_Task()
        assert "poweredOn" in {c.power for c in lab.clones(RUN)}
        assert lab.destroy(list(CLONES)) == sorted(CLONES)
        assert lab.clones() == []
        assert lab.destroy(list(CLONES)) == []


def test_a_retried_clone_makes_no_second_copy(site):
    with VsphereDrillLab.connect(site.vcenter, site.credentials) as lab:
        made(lab, CLONES)
        assert lab.clone(CLONES, RUN) == {}
        lab.isolate(list(CLONES), DRILL_NETWORK)
        lab.isolate(list(CLONES), DRILL_NETWORK)  # a retried isolation changes nothing either
        assert [c.networks for c in lab.clones(RUN)] == [(DRILL_NETWORK,)] * 2
    with vcenter_session(site.vcenter, site.credentials) as si:
        names = [p["name"] for _, p in read_properties(si, vim.VirtualMachine, ["name"])]
    assert sorted(n for n in names if n in CLONES) == sorted(CLONES)


def test_a_standard_port_group_is_a_drill_network_as_well(site):
    with vcenter_session(site.vcenter, site.credentials) as si:
        host = si.content.rootFolder.childEntity[0].hostFolder.childEntity[0].host[0]
        spec = vim.host.PortGroup.Specification(
            name="drill-std", vlanId=0, vswitchName="vSwitch0", policy=vim.host.NetworkPolicy()
        )
        host.configManager.networkSystem.AddPortGroup(spec)
    with VsphereDrillLab.connect(site.vcenter, site.credentials) as lab:
        made(lab, CLONES)
        lab.isolate(list(CLONES), "drill-std")
        assert [c.networks for c in lab.clones(RUN)] == [("drill-std",)] * 2


def test_isolating_on_a_network_the_site_does_not_have_names_it_and_moves_no_nic(site):
    with VsphereDrillLab.connect(site.vcenter, site.credentials) as lab:
        made(lab, CLONES)
        with pytest.raises(DrillCloneFailed, match="network 'nowhere' does not exist at the site"):
            lab.isolate(list(CLONES), "nowhere")
        assert [c.networks for c in lab.clones(RUN)] == [(PRODUCTION_NETWORK,)] * 2


def test_the_local_runtime_restores_a_site_without_the_clones_a_scenario_left_and_keeps_the_drill_network(site):
    with VsphereDrillLab.connect(site.vcenter, site.credentials) as lab:
        made(lab, CLONES)
    built = [(vm, False) for vm in STANDBY] + [("shop-web-2", True)]
    converge_vms(site.vcenter, site.credentials, built, [DRILL_NETWORK])
    with vcenter_session(site.vcenter, site.credentials) as si:
        vms = described(si, [name for name, _ in built] + list(CLONES))
        networks = {p["name"] for _, p in read_properties(si, vim.Network, ["name"])}
    assert {name: vm["power"] for name, vm in vms.items()} == {
        name: "poweredOn" if on else "poweredOff" for name, on in built
    }
    assert DRILL_NETWORK in networks


# dcwatch drill --cleanup, at two sites whose credentials are in Secrets Manager (moto)


@pytest.fixture
def sites(tmp_path, monkeypatch) -> Any:
    """Two vCenter simulators as a config names them, their credentials in Secrets Manager, the locks table."""
    path = write_pair_config(tmp_path)
    config = load_config(path)
    moto_credentials(monkeypatch)
    started = []
    with mock_aws():
        for s in config.sites:
            credentials = Credentials("drill", secrets.token_urlsafe(8))
            boto3.client("secretsmanager").create_secret(
                Name=s.vcenter.credentials_secret,
                SecretString=json.dumps({"username": credentials.username, "password": credentials.password}),
            )
            started.append(VcsimProcess(s.name, s.vcenter, credentials).start())
            vms = [(vm.name, False) for _, at in config.services_at(s.name) for vm in at.vms]
            create_vms(s.vcenter, credentials, vms, [DRILL_NETWORK])
        tables = create_tables(boto3.client("dynamodb"), "drill")
        try:
            yield path, config, {p.site: p for p in started}, tables["Locks"]
        finally:
            for process in started:
                process.stop()


def killed_drill(process: VcsimProcess, vms: list[str]) -> list[str]:
    """What a drill killed after cloning and powering on leaves: its clones, marked, one of them on."""
    clones = {clone_name(vm, RUN): vm for vm in vms}
    with VsphereDrillLab.connect(process.vcenter, process.credentials) as lab:
        made(lab, clones)
        lab.isolate(list(clones), DRILL_NETWORK)
    with vcenter_session(process.vcenter, process.credentials) as si:
        first = next(o for o, p in read_properties(si, vim.VirtualMachine, ["name"]) if p["name"] == min(clones))
        first.PowerOnVM_Task()
    return sorted(clones)


def vm_names(process: VcsimProcess) -> set[str]:
    with vcenter_session(process.vcenter, process.credentials) as si:
        return {str(p["name"]) for _, p in read_properties(si, vim.VirtualMachine, ["name"])}


def test_drill_cleanup_removes_what_a_killed_drill_left_at_every_site_and_says_what(sites, capsys):
    path, config, vcsims, _ = sites
    standby = config.sites[1].name
    vms = [vm.name for _, at in config.services_at(standby) for vm in at.vms][:2]
    left = killed_drill(vcsims[standby], vms)
    production = vm_names(vcsims[standby]) - set(left)
    code = main(["drill", "--cleanup", "--config", str(path)])
    out = capsys.readouterr().out
    assert code == 0
    assert f"removed {left[0]} at {standby}: copy of {min(vms)}, run {RUN}, was poweredOn" in out
    assert f"removed {left[1]} at {standby}: copy of {max(vms)}, run {RUN}, was poweredOff" in out
    assert "2 drill clones removed" in out
    assert vm_names(vcsims[standby]) == production
    assert main(["drill", "--cleanup", "--config", str(path)]) == 0
    assert "0 drill clones removed" in capsys.readouterr().out


def test_drill_cleanup_dry_run_lists_the_leftovers_and_removes_nothing(sites, capsys):
    path, config, vcsims, _ = sites
    standby = config.sites[1].name
    left = killed_drill(vcsims[standby], [vm.name for _, at in config.services_at(standby) for vm in at.vms][:1])
    code = main(["drill", "--cleanup", "--dry-run", "--config", str(path), "--site", standby])
    out = capsys.readouterr().out
    assert code == 0
    assert f"would remove {left[0]} at {standby}" in out
    assert "dry run: 1 drill clones found, nothing removed" in out
    assert set(left) <= vm_names(vcsims[standby])


def test_drill_cleanup_is_refused_while_a_recovery_holds_the_failover_lock(sites, capsys):
    path, config, vcsims, locks = sites
    standby = config.sites[1].name
    left = killed_drill(vcsims[standby], [vm.name for _, at in config.services_at(standby) for vm in at.vms][:1])
    DynamoLeases(locks).acquire("manual-drill-north-20261125T030000Z-0badc0de", 600, datetime.now(UTC))
    code = main(["drill", "--cleanup", "--config", str(path), "--locks-table", locks])
    assert code == 1
    assert "a recovery holds the failover lock: manual-drill-north" in capsys.readouterr().err
    assert set(left) <= vm_names(vcsims[standby])


def test_drill_cleanup_of_an_unknown_site_or_without_a_config_is_a_usage_error(sites, capsys):
    path, *_ = sites
    assert main(["drill", "--cleanup", "--config", str(path), "--site", "atlantis"]) == 2
    assert f"--site atlantis: not a site of {path}" in capsys.readouterr().err
    assert main(["drill", "--cleanup"]) == 2
    assert "--cleanup needs --config" in capsys.readouterr().err
    assert main(["drill", "--cleanup", "--from", "north", "--config", str(path)]) == 2
    assert main(["drill", "--from", "north", "--to", "south"]) == 2
    assert "a drill start needs --reason" in capsys.readouterr().err
