"""The failover workflow's transitions and step calls, walked through its ASL along the typical path of a
failover and of a drill."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dcwatch.config import Config
from dcwatch.cost.assumptions import ASSUMED, Assumptions
from dcwatch.wiring import FAILOVER_ASL


@dataclass(frozen=True)
class Executions:
    """Step Functions transitions and step Lambda calls of one failover and one drill."""

    failover_transitions: int
    failover_steps: int
    drill_transitions: int
    drill_steps: int
    basis: str


class PathError(ValueError):
    """The typical path no longer fits the workflow's ASL: its states or choices changed."""


def walk(asl: Mapping[str, Any], choices: Mapping[str, Sequence[str]], caught: Iterable[str] = ()) -> list[str]:
    """The states one execution enters, from StartAt to an end: `choices` gives each Choice state's picks in
    order (each must be one of its targets), `caught` the Task states that fail into their Catch."""
    states, failing = asl["States"], set(caught)
    picks = {name: list(order) for name, order in choices.items()}
    name, path = asl["StartAt"], []
    for _ in range(10_000):
        state = states[name]
        path.append(name)
        if state["Type"] in ("Succeed", "Fail") or state.get("End"):
            return path
        if name in failing:
            name = state["Catch"][0]["Next"]
        elif state["Type"] == "Choice":
            targets = {c["Next"] for c in state["Choices"]} | {state.get("Default")}
            if not picks.get(name):
                raise PathError(f"{FAILOVER_ASL.name}: the path has no pick left for the choice {name}")
            name = picks[name].pop(0)
            if name not in targets:
                raise PathError(f"{FAILOVER_ASL.name}: {path[-1]} cannot go on to {name}; it goes to {sorted(targets)}")
        else:
            name = state["Next"]
    raise PathError(f"{FAILOVER_ASL.name}: the path runs past 10,000 states")


def typical_path(mode: str, groups: int, polls: int, dns_polls: int, *, approval: bool, fence: str) -> dict[str, Any]:
    """Picks for a run that succeeds: each group up after `polls` CheckGroups, DNS INSYNC after `dns_polls` CheckDns
    (each waits inside the step, up to `workflow.step_wait_s`).
    `fence` (a disaster): `lease` (proven after one wait), `storage` (proven at once) or `approval`."""
    group_done = []
    for g in range(groups):
        group_done += ["WaitForGroup"] * (polls - 1) + ["VerifyServices" if g == groups - 1 else "StartGroup"]
    choices: dict[str, list[str]] = {
        "IsDryRun": ["NeedsApproval"],
        "NeedsApproval": ["RequestApproval" if approval else "ChooseMode"],
        "IsApproved": ["Approved"],
        "ChooseMode": ["PrepareDrill" if mode == "drill" else "Fence"],
        "ClonesReady": ["StartGroup"],  # the clones made within one CheckClones wait
        "GroupDone": group_done,
        "DnsInSync": ["WaitForDns"] * (dns_polls - 1) + ["IsDrill"],
        "IsDrill": ["CleanUpDrill" if mode == "drill" else "RecordAudit"],
        "FenceProven": {"lease": ["WaitForFenceProof", "StartGroup"], "storage": ["StartGroup"]}.get(
            fence, ["RequestApprovalForFencing"]
        ),
        "IsFencingApproved": ["ApprovedWithoutFenceProof"],
    }
    return {"choices": choices, "caught": ["Fence"] if mode != "drill" else []}


def executions(config: Config | None, a: Assumptions = ASSUMED, *, groups: int = 3, wait_s: int = 20) -> Executions:
    """Transitions of a disaster failover (the failed site dead: Fence cannot reach it) and of a drill, walked
    through the ASL along the typical path; with a config, its groups, poll interval, fencing and approvals."""
    asl = json.loads(FAILOVER_ASL.read_text(encoding="utf-8"))
    fence, approvals, drill_groups = "approval", set(), groups
    if config is not None:
        standby = config.other_site(config.active_site)
        vms = [vm for s in config.services for vm in s.sites[standby].vms]
        groups, wait_s = len({vm.group for vm in vms}), config.workflow.step_wait_s
        drilled = {d.name for d in config.drill.services} if config.drill else set()
        drill_groups = len({vm.group for s in config.services if s.name in drilled for vm in s.sites[standby].vms})
        approvals = set(config.workflow.approval.modes)
        if config.fencing and config.fencing.agents:
            fence = "lease"
        elif any(s.storage and s.storage.fenced_when for s in config.sites):
            fence = "storage"
    # A CheckGroup or CheckDns waits inside the step for up to `wait_s`; the Wait loop spans only longer waits.
    polls, dns_polls = math.ceil(a.boot_s / wait_s), math.ceil(a.dns_insync_s / wait_s)
    paths = {}
    for mode, n in (("disaster", groups), ("drill", drill_groups)):
        spec = typical_path(mode, max(1, n), polls, dns_polls, approval=mode in approvals, fence=fence)
        paths[mode] = walk(asl, spec["choices"], spec["caught"])
    tasks = {name for name, s in asl["States"].items() if s["Type"] == "Task"}
    basis = (
        f"walked through {FAILOVER_ASL.name}: {groups} groups, {polls} CheckGroups each ({a.boot_s:g} s boots, "
        f"step_wait_s {wait_s}), {dns_polls} CheckDns; fence proof by {fence}"
    )
    return Executions(
        failover_transitions=len(paths["disaster"]),
        failover_steps=sum(1 for s in paths["disaster"] if s in tasks),
        drill_transitions=len(paths["drill"]),
        drill_steps=sum(1 for s in paths["drill"] if s in tasks),
        basis=basis,
    )
