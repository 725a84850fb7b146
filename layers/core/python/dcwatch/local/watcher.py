"""What a run sees from outside, as customers and an operator would: the workflows' steps, the records, the
customers' view and the agents' self-fencing, polled and turned into timeline events."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from dcwatch.adapters.probers import probe_round
from dcwatch.adapters.secrets import Credentials
from dcwatch.config import Config, HttpCheck
from dcwatch.detection.checks import PlannedCheck
from dcwatch.local.overlap import Target
from dcwatch.local.pipeline import LocalPipeline
from dcwatch.local.timeline import Timeline

WATCH_POLL_S = 0.2
# The workflow's states that wait for a human's answer (a task token): an approval gate.
GATES = ("RequestApproval", "RequestApprovalForFencing")
# The steps whose `fencing` says whether the failed site was fenced: proof (a), or the other proofs.
FENCING_STEPS = ("Fence", "ProveFenced")


Route = Callable[[str, str, int], tuple[str, int]]


def _direct(site: str, host: str, port: int) -> tuple[str, int]:
    return host, port


def site_of(config: Config, service: str, values: Iterable[str]) -> str | None:
    """The site whose addresses for `service` these record values are (None: neither site's)."""
    wanted = set(values)
    at = next(s for s in config.services if s.name == service).sites
    return next((site for site, where in at.items() if wanted and wanted <= set(where.dns_values)), None)


def client_view(config: Config, resolved: dict[str, tuple[str, ...]], route: Route = _direct) -> dict[str, bool]:
    """What a customer sees: call each service at the addresses its name resolved to, over the customers' path
    to the site those addresses are at (`route`: site, host, port -> where the connection goes)."""
    calls = []
    for service in config.services:
        check = next(c for c in next(iter(service.sites.values())).checks if isinstance(c, HttpCheck))
        url = urlparse(check.url)
        for value in resolved.get(service.dns.name, ()):
            site = site_of(config, service.name, [value])
            host, port = route(site, value, url.port or 80) if site else (value, url.port or 80)
            target = url._replace(netloc=f"{host}:{port}").geturl()
            spec = check.model_copy(update={"url": target, "timeout_s": 0.5})
            calls.append(PlannedCheck("customer", check.name, service.name, True, 0.5, spec))
    results = probe_round(calls, _no_credentials, vantage="customer", round_id="customer")
    return {s.name: any(r.ok for r in results if r.service == s.name) for s in config.services}


def _no_credentials(secret: str) -> Credentials:
    raise LookupError(f"a customer has no credentials ({secret})")


def customer_targets(pipeline: LocalPipeline) -> list[Target]:
    """Every service's endpoint at both sites, as customers reach it: over the customers' path to that site."""
    targets = []
    for service in pipeline.config.services:
        for site, at in service.sites.items():
            check = next((c for c in at.checks if isinstance(c, HttpCheck)), None)
            if check is None:
                continue
            url = urlparse(check.url)
            address = pipeline.customer_address(site, url.hostname or "", url.port or 80)
            targets.append(Target(service.name, site, address, url.path or "/"))
    return targets


@dataclass
class Observations:
    powered_on: list[str] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    executions: dict[str, dict[str, Any]] = field(default_factory=dict)


class Watcher:
    """Polls Step Functions, Route 53 and the customer's view; turns changes into timeline events."""

    def __init__(self, pipeline: LocalPipeline, timeline: Timeline, obs: Observations):
        self.pipeline, self.config, self.timeline, self.obs = pipeline, pipeline.config, timeline, obs
        self.dns = pipeline.dns
        self.fault_at: float | None = None
        self.restored_at: float | None = None
        self.lost_at: float | None = None  # customers first failed to reach a service after the fault
        self.self_fenced: dict[str, float] = {}  # site -> when its agent fenced it
        self._moved = False  # a record changed after the fault
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watcher", daemon=True)
        self._seen_steps: dict[str, int] = {}
        self._dns_state: dict[str, tuple[str, ...]] = {}
        self._state_lock = threading.Lock()

    def start(self) -> Watcher:
        self._records()  # where production points from the first moment on
        self._thread.start()
        return self

    def production(self) -> dict[str, str | None]:
        """Where each service's production record points now: a site, or None."""
        with self._state_lock:
            dns = dict(self._dns_state)
        return {s.name: site_of(self.config, s.name, dns.get(s.dns.name, ())) for s in self.config.services}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(WATCH_POLL_S):
            self.poll()

    def poll(self) -> None:
        try:
            self._executions()
            self._records()
            self._customers()
            self._self_fences()
        except Exception as exc:  # noqa: BLE001 - a watcher hiccup must not end the demo
            self.timeline.add("watcher_error", str(exc)[:200])

    def _executions(self) -> None:
        for item in self.pipeline.executions():
            arn, name = item["executionArn"], item["name"]
            known = self.obs.executions.get(arn)
            if known is None:
                known = self.obs.executions[arn] = {"name": name, "status": "RUNNING"}
                t = self.timeline.add(
                    "failover_started",
                    f"workflow {name} started",
                    t=self.timeline.at(item["startDate"]),
                    execution=name,
                )
                known["started_at"] = t
            history = self.pipeline.history(arn)
            for event in history[self._seen_steps.get(arn, 0) :]:
                _add_history_event(self.timeline, name, known, event)
            self._seen_steps[arn] = len(history)
            if item["status"] != known["status"]:
                known["status"] = item["status"]
                kind = "failover_succeeded" if item["status"] == "SUCCEEDED" else "failover_ended"
                self.timeline.add(
                    kind,
                    f"workflow {name} {item['status']}",
                    t=self.timeline.at(item["stopDate"]),
                    execution=name,
                    status=item["status"],
                )

    def _self_fences(self) -> None:
        """A site's agent that fenced its own site, as its state file on the site's disk says."""
        agents = self.pipeline.agents
        for site, fence in (agents.fences() if agents is not None else {}).items():
            if site in self.self_fenced:
                continue
            off = ", ".join(fence.vms_powered_off) or "nothing"
            errors = f"; errors: {'; '.join(fence.errors)}" if fence.errors else ""
            self.self_fenced[site] = self.timeline.add(
                "site_self_fenced",
                f"{site}'s agent fenced its site: {fence.reason}; powered off {off}{errors}",
                t=self.timeline.at(fence.fenced_at),
                site=site,
            )

    def _records(self) -> None:
        for service in self.config.services:
            values = tuple(self.dns.values(service.dns.zone, service.dns.name, service.dns.type))
            if self._dns_state.get(service.dns.name) not in (None, values):
                self.timeline.add(
                    "dns_changed",
                    f"{service.dns.name} -> {', '.join(values)}",
                    record=service.dns.name,
                    values=list(values),
                )
                self._moved = self.fault_at is not None
            with self._state_lock:
                self._dns_state[service.dns.name] = values

    def _customers(self) -> None:
        if self.fault_at is None or self.restored_at is not None:
            return
        # The names as this poll resolved them, so "restored" can never precede the DNS change it needs.
        view = client_view(self.config, self._dns_state, self.pipeline.customer_address)
        if not all(view.values()):
            self.lost_at = self.lost_at if self.lost_at is not None else self.timeline.now()
        # Restored after a loss or a move: a fault customers do not feel yet (a VPN cut) restores nothing.
        elif self.lost_at is not None or self._moved:
            self.restored_at = self.timeline.add(
                "service_restored", f"customers reach {', '.join(view)} through DNS again"
            )


def _add_history_event(timeline: Timeline, name: str, known: dict[str, Any], event: dict[str, Any]) -> None:
    """One event of execution `name`'s history as the timeline tells it: an approval asked, a step done (with
    what fencing did), a function that failed; `known` keeps the gate the execution waits at."""
    if event["type"] == "TaskStateEntered" and event["stateEnteredEventDetails"]["name"] in GATES:
        gate = event["stateEnteredEventDetails"]["name"]
        known["waiting_at"] = gate
        timeline.add(
            "approval_asked",
            f"workflow {name} waits at {gate} for a human",
            t=timeline.at(event["timestamp"]),
            execution=name,
            gate=gate,
        )
    if event["type"] == "TaskStateExited":
        known.pop("waiting_at", None)
        step = event["stateExitedEventDetails"]["name"]
        # What Fence did or ProveFenced proved is the point of a network scenario: the timeline says it.
        fencing, proof = _fencing(event) if step in FENCING_STEPS else (None, None)
        timeline.add(
            "workflow_step",
            f"{step} done" + (f": {fencing}" if fencing else ""),
            t=timeline.at(event["timestamp"]),
            step=step,
            execution=name,
            **({"fencing": fencing} if fencing else {}),
            **({"proof": proof} if proof else {}),
        )
    elif event["type"] == "LambdaFunctionFailed":
        details = event.get("lambdaFunctionFailedEventDetails", {})
        timeline.add(
            "workflow_error",
            f"{details.get('error')}: {details.get('cause', '')[:160]}",
            t=timeline.at(event["timestamp"]),
            execution=name,
        )


def _fencing(event: dict[str, Any]) -> tuple[str | None, str | None]:
    """What a fencing step reported, and the proof it holds when it holds one (vcenter, lease, storage,
    trust_quorum: `dcwatch.recovery.fencing`)."""
    try:
        output = json.loads(event["stateExitedEventDetails"].get("output") or "{}")
    except json.JSONDecodeError:
        return None, None
    if not isinstance(output, dict):
        return None, None
    proof = output.get("fenceProof") or {}
    kind = str(proof["kind"]) if isinstance(proof, dict) and proof.get("proven") and proof.get("kind") else None
    return (str(output["fencing"]) if output.get("fencing") else None), kind
