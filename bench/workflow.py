"""`python -m bench.workflow`: the orchestration overhead of a whole disaster failover of a 100-VM, 5-group plan.

The local runtime runs it as in AWS: the failover ASL in Step Functions (moto server), the real
handlers in process, one vcsim per site, Route 53 and the loopback zone server, SNS, DynamoDB.
Site `a` serves; the request fails it over to `b` (lock, checks, fence `a`, power on `b` group by
group, verify, switch DNS, verify, notify, audit). A simulated guest reports its IP `--boot-s` after
its VM powered on (VMware Tools once the guest booted). A group's VMs boot side by side, so the boot
waits on the critical path are groups x boot; overhead = failover time - those waits. CheckGroup waits
for the boots inside its step (vCenter's WaitForUpdatesEx), so they are counted out of it.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dcwatch.local.cloud import free_port
from dcwatch.local.pipeline import LocalPipeline
from dcwatch.observability import SERVICE

SITES = ("a", "b")
ADDRESSES = {"a": "127.0.41.1", "b": "127.0.42.1"}
EXECUTION_TIMEOUT_S = 900
# Where a group's boot is waited out: inside CheckGroup's step, and in the loop for boots longer than one step.
GROUP_WAITS = ("CheckGroup", "WaitForGroup")


def plan_doc(vms: int, groups: int, poll_s: int) -> dict[str, Any]:
    """Two sites with `vms` VMs each, in `groups` priority groups of equal size, over a few services."""
    count = max(1, min(4, vms // groups))
    services = []
    for n in range(count):
        port = free_port()
        at = {
            site: {
                "dns_values": [ADDRESSES[site]],
                "checks": [{"name": f"s{n}-up", "url": f"http://{ADDRESSES[site]}:{port}/", "timeout_s": 1}],
                "vms": [
                    {"name": f"vm{i:04d}-{site}", "group": i * groups // vms + 1} for i in range(vms) if i % count == n
                ],
            }
            for site in SITES
        }
        services.append(
            {"name": f"s{n}", "dns": {"zone": "bench.test.", "name": f"s{n}.bench.test.", "ttl": 30}, "sites": at}
        )
    return {
        "name": "bench",
        "active_site": "a",
        "sites": [
            {"name": s, "vcenter": {"url": f"http://127.0.0.1:{free_port()}/sdk", "credentials_secret": f"bench/{s}"}}
            for s in SITES
        ],
        "services": services,
        "probe": {"interval_s": 60},
        # Production-shaped like the demo: private vCenters reached from the VPC (`dcwatch topology`).
        "network": {"vpc_id": "vpc-0b0b0b0b", "subnet_ids": ["subnet-0b0b0b0b"], "security_group_ids": ["sg-0b0b0b0b"]},
        "workflow": {"poll_s": poll_s, "group_timeout_s": 600, "dns_timeout_s": 60, "lease_s": 1800},
    }


@dataclass
class Step:
    kind: str  # the state's type: Task, Wait, Choice, Pass, Succeed
    entered: int = 0
    seconds: float = 0.0


@dataclass
class Result:
    vms: int
    groups: int
    boot_s: float
    status: str
    total_s: float
    powered_on: int
    steps: dict[str, Step]
    starting_s: float = 0.0  # the execution's start until its first event: moto parsing the ASL

    @property
    def boot_waits_s(self) -> float:
        return self.groups * self.boot_s

    @property
    def overhead_s(self) -> float:
        return self.total_s - self.boot_waits_s

    def in_states(self, kind: str) -> float:
        return sum(step.seconds for step in self.steps.values() if step.kind == kind)


def step_times(history: list[dict[str, Any]]) -> dict[str, Step]:
    """Per state of the execution history: its type, how often it was entered and the seconds spent inside."""
    entered: dict[str, Any] = {}
    steps: dict[str, Step] = {}
    for event in history:
        kind, _, phase = event["type"].partition("State")
        if phase == "Entered":
            name = event["stateEnteredEventDetails"]["name"]
            entered[name] = event["timestamp"]
            steps.setdefault(name, Step(kind)).entered += 1
        elif phase == "Exited":
            name = event["stateExitedEventDetails"]["name"]
            if name in entered:
                steps[name].seconds += (event["timestamp"] - entered.pop(name)).total_seconds()
    return steps


def measure(vms: int, groups: int, boot_s: float, poll_s: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="dcwatch-bench-") as workdir:
        path = Path(workdir) / "bench.yaml"
        path.write_text(yaml.safe_dump(plan_doc(vms, groups, poll_s), sort_keys=False), encoding="utf-8")
        with LocalPipeline(path, boot_s=boot_s) as pipeline:
            request = {"mode": "disaster", "from": "a", "to": "b", "reason": "bench", "incidentId": "manual-bench-1"}
            arn = pipeline.start_failover(request, name="manual-bench-1")
            described = pipeline.wait_execution(arn, timeout_s=EXECUTION_TIMEOUT_S)
            total = (described["stopDate"] - described["startDate"]).total_seconds()
            history = pipeline.history(arn)
            on = pipeline.services.powered_on("b")
            if described["status"] != "SUCCEEDED":
                cause = json.loads(described.get("cause") or "{}").get("errorMessage", described.get("cause"))
                raise RuntimeError(f"the failover ended {described['status']}: {cause}")
    starting = (history[0]["timestamp"] - described["startDate"]).total_seconds() if history else 0.0
    return Result(vms, groups, boot_s, described["status"], total, len(on), step_times(history), starting)


def report(result: Result) -> str:
    r = result
    tasks, waits = r.in_states("Task"), r.in_states("Wait")
    group_waits = sum(r.steps[name].seconds for name in GROUP_WAITS if name in r.steps)
    checks = r.steps["CheckGroup"].seconds if "CheckGroup" in r.steps else 0.0
    task_calls = sum(step.entered for step in r.steps.values() if step.kind == "Task")
    lines = [
        f"{r.vms} VMs in {r.groups} priority groups, disaster failover a -> b through the local runtime "
        f"(Step Functions in moto, real handlers, vcsim), guest boot {r.boot_s:g} s",
        f"  failover time            {r.total_s:7.2f} s ({r.status}, {r.powered_on} of {r.vms} VMs powered on at b)",
        f"  simulated boot waits     {r.boot_waits_s:7.2f} s ({r.groups} groups x {r.boot_s:g} s on the critical path)",
        f"  orchestration overhead   {r.overhead_s:7.2f} s "
        f"({1000 * r.overhead_s / r.vms:.0f} ms per VM, {r.overhead_s / r.groups:.2f} s per group)",
        f"    seeing groups up       {group_waits - r.boot_waits_s:7.2f} s (CheckGroup and WaitForGroup beyond the "
        "boots: a group's last guest reported, until the step returns)",
        f"    in other Task states   {tasks - checks:7.2f} s ({task_calls} handler calls in all: vCenter sessions, "
        "power-ons, fence, DNS, leases, idempotency records)",
        f"    in other Wait states   {waits - (group_waits - checks):7.2f} s (the DNS poll's loop, once one CheckDns "
        "did not see it in sync)",
        f"    between states         {r.total_s - tasks - waits:7.2f} s (Choice/Pass states, transitions, the "
        "execution's start and end)",
        f"      of which starting    {r.starting_s:7.2f} s (the execution's start until its first event: moto parsing "
        "the ASL, which AWS does not make an execution wait for)",
        "  per state (type, times entered, seconds inside):",
    ]
    for name, step in sorted(r.steps.items(), key=lambda kv: -kv[1].seconds):
        lines.append(f"    {name:<24} {step.kind:<8} {step.entered:4d}  {step.seconds:7.2f} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.workflow", description=__doc__)
    parser.add_argument("--vms", type=int, default=100)
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--boot-s", type=float, default=2.0, help="simulated guest boot, per VM")
    parser.add_argument("--poll-s", type=int, default=1, help="the state machine's wait between checks (whole s)")
    args = parser.parse_args()
    if not 1 <= args.groups <= 10 or args.vms % args.groups or not 0 < args.vms <= 500:
        parser.error("--groups 1..10, --vms up to 500 and a multiple of --groups")
    if not 0 <= args.boot_s <= 60 or not 1 <= args.poll_s <= 10:
        parser.error("--boot-s 0..60, --poll-s 1..10")
    logging.getLogger(SERVICE).setLevel(logging.WARNING)  # the handlers' step logs would bury the figures
    print(report(measure(args.vms, args.groups, args.boot_s, args.poll_s)))


if __name__ == "__main__":
    main()
