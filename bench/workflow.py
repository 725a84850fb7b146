"""`python -m bench.workflow`: the orchestration overhead of powering on a 100-VM, 5-group recovery plan.

The workflow's group steps (StartGroup, then CheckGroup every poll until the group is up) run as the
state machine runs them: each step a fresh vCenter session, the state through JSON between steps,
power-ons and hooks recorded once in the idempotency table (Powertools, moto in process). vcsim holds
the standby's VMs; a simulated guest reports its IP `--boot-s` after its VM powered on (what VMware
Tools does once the guest has booted). Overhead = failover time - the boot waits (groups x boot).
"""

from __future__ import annotations

import argparse
import secrets
import threading
import time
from dataclasses import dataclass, field

import boto3
from moto import mock_aws

from dcwatch import workflow
from dcwatch.adapters.idempotency import IdempotentSteps
from dcwatch.adapters.secrets import Credentials
from dcwatch.adapters.vsphere import VsphereInventory
from dcwatch.config import Config, VCenter, parse_config
from dcwatch.local.cloud import create_tables, free_port
from dcwatch.local.lambdas import LambdaContext
from dcwatch.local.vcsim import VcsimProcess, create_vms, report_guest_ips
from dcwatch.workflow import WorkflowState

REGION = "us-east-1"


def plan_config(vcenter: VCenter, vms: int, groups: int) -> Config:
    """Two sites; the standby `b` carries `vms` VMs, spread evenly over `groups` priority groups."""
    per_service = groups
    services = []
    for n in range(vms // per_service):
        at = {
            site: {
                "dns_values": ["127.0.0.1"],
                "checks": [{"name": f"s{n}-up", "url": f"http://127.0.0.1:9/s{n}"}],
                "vms": [{"name": f"s{n}-g{g}-{site}", "group": g} for g in range(1, groups + 1)],
            }
            for site in ("a", "b")
        }
        services.append({"name": f"s{n}", "dns": {"zone": "bench.test.", "name": f"s{n}.bench.test."}, "sites": at})
    sites = [
        {"name": "a", "vcenter": {"url": "http://127.0.0.1:9/sdk", "credentials_secret": "bench/a"}},
        {"name": "b", "vcenter": vcenter.model_dump()},
    ]
    return parse_config(
        {
            "name": "bench",
            "active_site": "a",
            "sites": sites,
            "services": services,
            "workflow": {"poll_s": 1, "group_timeout_s": 600, "lease_s": 900},
        }
    )


@dataclass
class Guests:
    """Plays VMware Tools: a VM reports an IP `boot_s` after vCenter shows it on."""

    vcenter: VCenter
    credentials: Credentials
    names: list[str]
    boot_s: float
    seen_on: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        booted: set[str] = set()
        while not self._stop.wait(0.05):
            with VsphereInventory.connect(self.vcenter, self.credentials) as inventory:
                states = inventory.guest_states(self.names)
            now = time.monotonic()
            for name, guest in states.items():
                if guest.power == "poweredOn":
                    self.seen_on.setdefault(name, now)
            due = {n: "127.0.0.2" for n, t in self.seen_on.items() if n not in booted and now - t >= self.boot_s}
            if due:
                report_guest_ips(self.vcenter, self.credentials, due)
                booted |= set(due)

    def stop(self) -> None:
        self._stop.set()


def measure(vms: int, groups: int, boot_s: float, poll_s: float) -> dict[str, float]:
    credentials = Credentials("bench", secrets.token_urlsafe(8))
    vcenter = VCenter(url=f"http://127.0.0.1:{free_port()}/sdk", credentials_secret="bench/b")
    config = plan_config(vcenter, vms, groups)
    names = [vm.name for _, at in config.services_at("b") for vm in at.vms]
    vcsim = VcsimProcess("b", vcenter, credentials).start()
    guests = Guests(vcenter, credentials, names, boot_s)
    watcher = threading.Thread(target=guests.run, daemon=True)
    try:
        create_vms(vcenter, credentials, [(n, False) for n in names])
        with mock_aws():
            dynamodb = boto3.client("dynamodb", region_name=REGION)
            once = IdempotentSteps(create_tables(dynamodb, "bench")["Idempotency"], dynamodb)
            once.register(LambdaContext("bench", f"arn:aws:lambda:{REGION}:123456789012:function:bench", "bench"))
            state = workflow.validate_request(
                {"action": "failover", "from": "a", "to": "b", "reason": "bench", "incidentId": "bench"}, config
            )
            watcher.start()
            started, in_steps, calls = time.monotonic(), 0.0, 0

            def step(action: str) -> None:
                nonlocal state, in_steps, calls
                t = time.monotonic()
                with VsphereInventory.connect(vcenter, credentials) as inventory:
                    state = WorkflowState.model_validate(state.dump())
                    if action == "start":
                        state = workflow.start_group(state, inventory, once=once)
                    else:
                        state = workflow.check_group(state, inventory, once=once)
                    state = WorkflowState.model_validate(state.dump())
                in_steps += time.monotonic() - t
                calls += 1

            while not state.progress.all_groups_up:
                step("start")
                while not state.progress.group_ready:
                    time.sleep(poll_s)  # the state machine's Wait state
                    step("check")
            total = time.monotonic() - started
    finally:
        guests.stop()
        if watcher.is_alive():
            watcher.join(timeout=5)
        vcsim.stop()
    if sorted(state.progress.powered_on) != sorted(names):
        raise RuntimeError(f"not every VM came up: {len(state.progress.powered_on)} of {len(names)}")
    return {"total_s": total, "boot_s": groups * boot_s, "in_steps_s": in_steps, "step_calls": calls}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.workflow", description=__doc__)
    parser.add_argument("--vms", type=int, default=100)
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--boot-s", type=float, default=2.0, help="simulated guest boot, per VM")
    parser.add_argument("--poll-s", type=float, default=1.0, help="the state machine's wait between checks")
    args = parser.parse_args()
    if not 1 <= args.groups <= 10 or args.vms % args.groups or not 0 < args.vms <= 1000:
        parser.error("--groups 1..10, --vms up to 1000 and a multiple of --groups")
    if not 0 <= args.boot_s <= 60 or not 0.1 <= args.poll_s <= 10:
        parser.error("--boot-s 0..60, --poll-s 0.1..10")
    got = measure(args.vms, args.groups, args.boot_s, args.poll_s)
    overhead = got["total_s"] - got["boot_s"]
    print(
        f"{args.vms} VMs in {args.groups} priority groups at vcsim, "
        f"guest boot {args.boot_s:g} s, poll {args.poll_s:g} s\n"
        f"  groups up after          {got['total_s']:6.2f} s\n"
        f"  simulated boot waits     {got['boot_s']:6.2f} s ({args.groups} groups x {args.boot_s:g} s)\n"
        f"  orchestration overhead   {overhead:6.2f} s ({overhead / args.groups:.2f} s per group)\n"
        f"    in the steps           {got['in_steps_s']:6.2f} s ({int(got['step_calls'])} step calls, "
        f"{1000 * got['in_steps_s'] / got['step_calls']:.0f} ms each: vCenter session, power-ons, guest reads, "
        "idempotency records)\n"
        f"    waiting for the poll   {overhead - got['in_steps_s']:6.2f} s (a group is seen up at the next poll)"
    )


if __name__ == "__main__":
    main()
