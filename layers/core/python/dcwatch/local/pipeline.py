"""The local pipeline: both simulated sites, moto with dcwatch's resources, and the event plumbing.

Built from the config alone (sites, VMs, services, records), so any valid config runs. Used by
`dcwatch demo`, `dcwatch scenarios` and the integration and end-to-end tests; stops everything it
started. With a `fencing` section, both sites' agents run as processes of their own (`dcwatch.local.agents`).
The network is the deployed one (`dcwatch.local.links`, from `config.topology`): every vantage
point has its own probe function, and every function reaches the sites only through the faultable links
of its placement (`dcwatch.local.faults`), with the config as that placement sees the sites. `reset()`
brings a running pipeline back to its state after start, so a matrix of scenarios shares one moto server
and one vcsim per site.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import yaml

from dcwatch.adapters.agent_aws import DynamoSiteLeases, SiteLease
from dcwatch.adapters.dynamodb import DynamoLeases, DynamoStateStore
from dcwatch.adapters.route53 import Route53Dns
from dcwatch.adapters.secrets import Credentials
from dcwatch.adapters.stepfunctions import Approvals
from dcwatch.config import Config, load_config
from dcwatch.control import answer_approval
from dcwatch.local.agents import AgentTables, LocalAgents
from dcwatch.local.cloud import LocalCloud, QueuePump, Resources
from dcwatch.local.faults import FaultNetwork, routed_config
from dcwatch.local.lambdas import ACCOUNT, LocalLambdas, running_function
from dcwatch.local.links import PROBE, SiteLink, placements
from dcwatch.local.services import DemoServices
from dcwatch.local.vcsim import VcsimProcess, converge_vms, create_vms, power_states
from dcwatch.observability import logger
from dcwatch.wiring import FUNCTIONS, RULES, function, message_group

Listener = Callable[[dict[str, Any]], None]
EXECUTIONS_END_TIMEOUT_S = 60.0
APPROVAL_TOKEN = re.compile(r"--token (\S+)")
DENIED_AT_RESET = "the local runtime resets between scenarios: no one approved"
# Concurrent copies of each rule's target: results of every vantage point arrive each interval, as in AWS.
RULE_WORKERS = 4


class EvaluatorCrashed(RuntimeError):
    """Injected: the evaluator's process dies after updating check state, before it starts the workflow."""


@dataclass
class BusFaults:
    """Faults of the event bus and of the evaluator, set by scenarios; none while at rest."""

    duplicate: bool = False  # every ProbeRound is delivered twice
    late_s: int = 0  # and once more this many seconds later, behind newer results
    evaluator_crashes: int = 0  # the next N evaluations that would start a workflow die first


class LocalPipeline:
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
    ):
        """`log_dir`: where the site agents write their logs (the run directory when None); `run_agents`: start
        the config's site agents (False: a test plays their part, writing leases and reports itself)."""
        self.run_agents = run_agents
        self.boot_s = boot_s
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.config_path = str(Path(config_path).resolve())
        self.config: Config = load_config(self.config_path)
        self.credentials = {s.name: Credentials("dcwatch", secrets.token_urlsafe(12)) for s in self.config.sites}
        self.site_status: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self.listen(on_site_status, on_notification, on_power_on)
        self._on_site_built = on_site_built
        self._lock = threading.Lock()
        self._stack = ExitStack()
        self.vcsims: dict[str, VcsimProcess] = {}
        self.network = FaultNetwork()
        self.probes: dict[str, str] = {}  # vantage point -> its probe function
        self.placement_configs: dict[str, Path] = {}  # placement -> the config as code there sees the sites
        self.bus = BusFaults()
        self._replayed: set[str] = set()
        self.pump: QueuePump | None = None
        self.agents: LocalAgents | None = None
        # What the simulated vCenters accept, where a scenario changed it (AWS's secrets keep `credentials`).
        self.vcenter_logins = dict(self.credentials)

    def listen(
        self,
        on_site_status: Listener = lambda event: None,
        on_notification: Listener = lambda body: None,
        on_power_on: Callable[[str, str], None] = lambda site, vm: None,
    ) -> None:
        """Who hears site decisions, notifications and VMs coming up (replaced per scenario)."""
        self._on_site_status, self._on_notification, self._on_power_on = on_site_status, on_notification, on_power_on

    def __enter__(self) -> LocalPipeline:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _vms(self, site: str) -> list[tuple[str, bool]]:
        """The site's VMs as built: on at the active site, off at the standby."""
        on = site == self.config.active_site
        return [(vm.name, on) for _, at in self.config.services_at(site) for vm in at.vms]

    def _start(self) -> None:
        config, stack = self.config, self._stack
        for site in config.sites:
            process = VcsimProcess(site.name, site.vcenter, self.credentials[site.name]).start()
            stack.callback(process.stop)
            self.vcsims[site.name] = process
            create_vms(site.vcenter, self.credentials[site.name], self._vms(site.name))
            self._on_site_built(site.name, len(self._vms(site.name)))

        self.cloud = LocalCloud(config, self.config_path).start()
        stack.callback(self.cloud.stop)
        self.resources: Resources = self.cloud.provision(self.credentials)
        assert self.cloud.lambdas is not None
        self.lambdas: LocalLambdas = self.cloud.lambdas
        self._crash_hook_installed()
        stack.callback(self._remove_crash_hook)

        self.network.start()
        stack.callback(self.network.stop)
        self.run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dcwatch-run-")))
        self._place_functions(self.run_dir)
        # Each vantage point's probe in a process of its own, as each is its own Lambda function: a round of a
        # thousand checks then shares no interpreter lock with the evaluator, the workflow or the other probes.
        for name in self.probes.values():
            self.lambdas.isolate(name, stdout=_fileno(sys.stdout))
        stack.callback(self.lambdas.close)
        self._probe_pool = ThreadPoolExecutor(max(1, len(self.probes)), thread_name_prefix="probe")
        stack.callback(self._probe_pool.shutdown, cancel_futures=True)

        logins = self.vcenter_logins
        self.services = DemoServices(config, logins, on_power_on=self._power_on, boot_s=self.boot_s).start()
        stack.callback(self.services.stop)
        self._start_pump()
        stack.callback(self._stop_pump)
        if config.fencing is not None and config.fencing.agents and self.run_agents:
            self.agents = LocalAgents(
                config,
                config.model_dump(mode="json"),
                self.credentials,
                self.network,
                self.run_dir,
                self.log_dir or self.run_dir,
            )
            stack.callback(self.agents.stop)
            self._start_agents()

    def _start_agents(self) -> None:
        if self.agents is not None:
            r = self.resources
            self.agents.start(self.cloud.endpoint, AgentTables(r.locks_table_name, r.audit_table_name, r.bus_name))

    def _place_functions(self, workdir: Path) -> None:
        """Every function sees the sites as its placement does: one routed config per placement, the
        functions there and its vantage point's probe all reading it (so they share its links)."""
        topology, plain = self.config.topology, self.config.model_dump(mode="json")
        for name, placement in placements(topology).items():
            path = self.placement_configs[name] = workdir / f"{name}.yaml"
            path.write_text(yaml.safe_dump(routed_config(plain, placement, topology, self.network)), encoding="utf-8")
        for spec in FUNCTIONS:
            if spec.key != PROBE:
                self.lambdas.set_environment(spec, self._environment(topology.placement(spec.key).name))
        for vantage in topology.vantage_points:
            env = self._environment(vantage.placement.name, vantage.name)
            self.probes[vantage.name] = self.lambdas.add_copy(function(PROBE), vantage.name, env)
        # The schedule's own target is deployed as the first vantage point's probe.
        first = topology.vantage_points[0]
        self.lambdas.set_environment(function(PROBE), self._environment(first.placement.name, first.name))

    def _environment(self, placement: str, vantage: str | None = None) -> dict[str, str]:
        env = {"DCWATCH_CONFIG": str(self.placement_configs[placement])}
        return env | ({"DCWATCH_VANTAGE": vantage} if vantage else {})

    def _start_pump(self) -> None:
        def keep(into: list[dict[str, Any]], listener: str) -> Listener:
            def consume(item: dict[str, Any]) -> None:
                with self._lock:
                    into.append(item)
                getattr(self, listener)(item)

            return consume

        self.pump = QueuePump(self.cloud)
        for rule in RULES:
            url = self.resources.rule_queues[rule.name]
            if rule.queue is not None:
                self.pump.route_batches(
                    url, partial(self._deliver_batch, rule.target, rule.name), rule.queue.batch_size
                )
            else:
                self.pump.route(url, partial(self._deliver, rule.target, rule.name), workers=RULE_WORKERS)
        self.pump.route(self.resources.site_status_queue, keep(self.site_status, "_on_site_status"))
        self.pump.route(self.resources.notification_queue, keep(self.notifications, "_on_notification"))
        self.pump.start()

    def _stop_pump(self) -> None:
        if self.pump is not None:
            self.pump.stop()

    def _power_on(self, site: str, vm: str) -> None:
        self._on_power_on(site, vm)

    def probe(self, round_id: str) -> dict[str, tuple[Any, str | None]]:
        """One scheduled call of every vantage point's probe, all at once, as their schedules fire."""
        event = {"id": round_id, "source": "local.scheduler"}
        futures = {v: self._probe_pool.submit(self.lambdas.invoke, name, event) for v, name in self.probes.items()}
        return {vantage: future.result() for vantage, future in futures.items()}

    def reset(self) -> None:
        """Back to the state after start: both sites as built, fresh AWS resources, every path healthy, both
        agents started afresh."""
        if self.agents is not None:
            self.agents.stop()
        self.network.heal()
        self.bus = BusFaults()
        self.deny_waiting_approvals()
        self.wait_executions_end(EXECUTIONS_END_TIMEOUT_S)
        self._stop_pump()
        self.cloud.reset()
        self.resources = self.cloud.provision(self.credentials)
        self.lambdas.cold_start()
        for site in self.config.sites:
            process = self.vcsims[site.name]
            if process.credentials != self.credentials[site.name]:
                process.stop()
                process.credentials = self.vcenter_logins[site.name] = self.credentials[site.name]
            if not process.running:
                process.start()
            converge_vms(site.vcenter, self.credentials[site.name], self._vms(site.name))
        self.services.revive()
        with self._lock:
            self.site_status.clear()
            self.notifications.clear()
            self.lambdas.invocations.clear()
            self._replayed.clear()
        self._start_pump()
        self._start_agents()

    def deny_waiting_approvals(self) -> list[str]:
        """Deny every approval asked for (no one answers between scenarios), as an operator would with `dcwatch
        deny`: the waiting workflows end, nothing changed. The tokens are in the APPROVAL NEEDED messages."""
        with self._lock:
            messages = [str(n.get("Message") or "") for n in self.notifications]
        tokens = sorted({token for text in messages for token in APPROVAL_TOKEN.findall(text)})
        approvals, denied = Approvals(self.cloud.client("stepfunctions")), []
        for token in tokens:
            try:
                answer_approval(
                    self.store, approvals, token, False, DENIED_AT_RESET, "local-runtime", datetime.now(UTC)
                )
                denied.append(token)
            except Exception as exc:  # noqa: BLE001 - its workflow ended already
                logger.info("approval not answered", error=str(exc)[:200])
        return denied

    def wait_executions_end(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while any(e["status"] == "RUNNING" for e in self.executions()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"failover workflows still running after {timeout_s:g} s")
            time.sleep(0.2)

    def _crash_hook_installed(self) -> None:
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register("before-call.sfn.StartExecution", self._maybe_crash)  # type: ignore[union-attr]

    def _remove_crash_hook(self) -> None:
        if boto3.DEFAULT_SESSION is not None:
            boto3.DEFAULT_SESSION.events.unregister("before-call.sfn.StartExecution", self._maybe_crash)

    def _maybe_crash(self, **_: Any) -> None:
        if not running_function().endswith("-Evaluate"):
            return
        with self._lock:
            if self.bus.evaluator_crashes <= 0:
                return
            self.bus.evaluator_crashes -= 1
        raise EvaluatorCrashed("injected: the evaluator died before starting the workflow")

    def _deliver(self, key: str, rule: str, event: dict[str, Any]) -> None:
        """A rule's target invoked with the matched event, as EventBridge invokes a Lambda target."""
        event.setdefault("account", ACCOUNT)  # moto's delivery to SQS leaves out `account`
        self._misdeliver(rule, event)
        payload, error = self.lambdas.invoke(f"{self.cloud.prefix}-{key}", event)
        if error:
            raise RuntimeError(f"{key}: {payload.get('errorType')}: {payload.get('errorMessage')}")

    def _deliver_batch(self, key: str, rule: str, event: dict[str, Any]) -> dict[str, str]:
        """A queued rule's target invoked with a batch, as Lambda's event source mapping invokes it; the
        message ids it reports failed (partial batch response), or all of them when it failed as a whole."""
        for record in event["Records"]:
            self._misdeliver(rule, json.loads(record["body"]))
        payload, error = self.lambdas.invoke(f"{self.cloud.prefix}-{key}", event)
        if error:
            raise RuntimeError(f"{key}: {payload.get('errorType')}: {payload.get('errorMessage')}")
        failed = (payload or {}).get("batchItemFailures", [])
        return {str(item["itemIdentifier"]): f"{key} reported it failed" for item in failed}

    def _misdeliver(self, rule: str, event: dict[str, Any]) -> None:
        """At-least-once and unordered, as EventBridge may deliver: the same event again, now and later (a
        FIFO queue's own deduplication lasts 5 minutes; these copies stand for a redelivery it does not catch)."""
        bus = self.bus
        if not (bus.duplicate or bus.late_s) or event.get("id") in self._replayed:
            return
        self._replayed.add(str(event.get("id")))
        sqs, body = self.cloud.client("sqs"), json.dumps(event)
        queue = self.resources.rule_queues[rule]
        fifo = queue.endswith(".fifo")

        def send(copy: str) -> None:
            if fifo:
                group = message_group(self.config.name)
                dedup = f"{event.get('id')}-{copy}"
                sqs.send_message(QueueUrl=queue, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=dedup)
            else:
                sqs.send_message(QueueUrl=queue, MessageBody=body, DelaySeconds=bus.late_s if copy == "late" else 0)

        if bus.duplicate:
            send("again")
        if bus.late_s:
            if fifo:  # a FIFO queue delays no single message: the copy is sent late instead
                timer = threading.Timer(bus.late_s, send, args=("late",))
                timer.daemon = True
                timer.start()
            else:
                send("late")

    def function(self, key: str) -> str:
        return f"{self.cloud.prefix}-{key}"

    def invoke(self, key: str, event: dict[str, Any]) -> tuple[Any, str | None]:
        return self.lambdas.invoke(self.function(key), event)

    def fail_site(self, site: str) -> None:
        """The outage: the site's vCenter stops, every one of its services goes dark, and its agent dies."""
        self.vcsims[site].stop()
        self.services.fail_site(site)
        self.kill_agent(site)

    def kill_agent(self, site: str) -> None:
        """The site's agent dies (its VM loses power); the site itself runs on."""
        if self.agents is None:
            raise RuntimeError("no site agents run: the config has no fencing section")
        self.agents.kill(site)

    def refuse_vcenter_logins(self, site: str) -> None:
        """The site's vCenter refuses every login from now on (its identity source broken): it comes back at once
        with its VMs as they were, accepting a password no one has; only the simulated guests still read it."""
        vcenter, process = self.config.site(site).vcenter, self.vcsims[site]
        names = [name for name, _ in self._vms(site)]
        powered = power_states(vcenter, self.vcenter_logins[site], names)
        with self.services.holding(site):  # the VMs run on while their vCenter comes back
            process.stop()
            process.credentials = self.vcenter_logins[site] = Credentials("dcwatch", secrets.token_urlsafe(12))
            process.start()
            create_vms(vcenter, process.credentials, [(name, powered.get(name) == "poweredOn") for name in names])

    def customer_address(self, site: str, host: str, port: int) -> tuple[str, int]:
        """Where a customer's connection to one of the site's service addresses goes: the customers' path."""
        return self.network.route(SiteLink(site, "customers"), host, port)

    def stop_vcenter(self, site: str) -> None:
        """The site's vCenter stops; its VMs and services run on."""
        self.vcsims[site].stop()

    def start_failover(self, request: dict[str, Any], name: str) -> str:
        sfn = self.cloud.client("stepfunctions")
        return str(
            sfn.start_execution(stateMachineArn=self.resources.state_machine_arn, name=name, input=json.dumps(request))[
                "executionArn"
            ]
        )

    def wait_execution(self, arn: str, timeout_s: float = 60) -> dict[str, Any]:
        sfn = self.cloud.client("stepfunctions")
        deadline = time.monotonic() + timeout_s
        while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {arn} still running after {timeout_s:g} s")
            time.sleep(0.1)
        return dict(described)

    def history(self, arn: str) -> list[dict[str, Any]]:
        return list(
            self.cloud.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
        )

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.cloud.client("stepfunctions")
        return list(sfn.list_executions(stateMachineArn=self.resources.state_machine_arn)["executions"])

    @property
    def store(self) -> DynamoStateStore:
        return DynamoStateStore(
            self.resources.table_name, self.resources.audit_table_name, self.cloud.client("dynamodb")
        )

    @property
    def leases(self) -> DynamoLeases:
        return DynamoLeases(self.resources.locks_table_name, self.cloud.client("dynamodb"))

    def site_lease(self, site: str) -> SiteLease | None:
        """The site's agent lease as the locks table holds it."""
        return DynamoSiteLeases(self.resources.locks_table_name, site, self.cloud.client("dynamodb")).read()

    @property
    def dns(self) -> Route53Dns:
        return Route53Dns(self.cloud.client("route53"), zone_ids=self.resources.zone_ids)

    def dns_values(self) -> dict[str, list[str]]:
        dns = self.dns
        return {s.dns.name: dns.values(s.dns.zone, s.dns.name, s.dns.type) for s in self.config.services}


def _fileno(stream: Any) -> int | None:
    """The file descriptor behind `stream` (the demo's log file, where it redirects stdout); None if none."""
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None
