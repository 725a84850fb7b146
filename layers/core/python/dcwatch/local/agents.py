"""The site agents as the local runtime runs them: one `dcwatch agent` process per site, as on its VM.

Each agent sees the world as it is from its site: its own vCenter and services directly (it runs there),
AWS only over its site's uplink and its peer only over the inter-site link, both fault proxies of the
local network (`dcwatch.local.links.SiteLink`). What a fence needs is on its "VM's disk", the run
directory: the shared heartbeat key, its vCenter credentials, its config and its state file. The
processes end with the runtime (and by themselves after `RUN_FOR_S`); a site that dies kills its agent.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import yaml

from dcwatch.adapters.agent_aws import DynamoSiteLeases, SiteLease
from dcwatch.adapters.secrets import Credentials
from dcwatch.agent import state as agent_state
from dcwatch.agent.report import FenceRecord
from dcwatch.config import Config
from dcwatch.local.children import die_with_parent, wait_for_port
from dcwatch.local.faults import FaultNetwork
from dcwatch.local.links import SiteLink

START_TIMEOUT_S = 40.0  # both agents up and holding their leases, even on a busy 2-core machine
STOP_TIMEOUT_S = 10.0
RUN_FOR_S = 900  # each agent ends by itself after this; the runtime starts them afresh for every scenario
POLL_S = 0.2
# DEBUG shows every renewal or heartbeat an agent missed ("voter not reached", with the error).
LOG_LEVEL = os.environ.get("DCWATCH_AGENT_LOG_LEVEL", "INFO")


@dataclass(frozen=True)
class AgentTables:
    """Where the agents write in AWS: the stack's outputs, as `agent.env` names them."""

    locks_table: str
    audit_table: str
    bus_name: str


def agent_config(
    data: dict[str, Any], site: str, run_dir: Path, peer_url: str, credentials_file: Path
) -> dict[str, Any]:
    """The config as `site`'s agent reads it on its VM: the key and its vCenter credentials in files of its
    own, its peer at `peer_url` (the inter-site link's proxy)."""
    routed = deepcopy(data)
    fencing = routed["fencing"]
    fencing["secret_file"] = str(run_dir / Path(fencing["secret_file"]).name)
    fencing["secret_id"] = None
    peer = next(s["name"] for s in routed["sites"] if s["name"] != site)
    fencing["agents"][peer]["url"] = peer_url
    fencing["agents"][site]["vcenter_credentials_file"] = str(credentials_file)
    return routed


class AgentProcess:
    """One `dcwatch agent` process, its output in `log`."""

    def __init__(self, site: str, command: list[str], env: dict[str, str], log: Path):
        self.site, self.log = site, log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=die_with_parent,
            )

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """Dies as a VM that loses power: no goodbye, no last renewal."""
        if self.running:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        if not self.running:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()


class LocalAgents:
    """Both sites' agents: written, started, killed, started afresh."""

    def __init__(
        self,
        config: Config,
        data: dict[str, Any],
        credentials: dict[str, Credentials],
        network: FaultNetwork,
        run_dir: Path,
        log_dir: Path,
        run_for_s: float = RUN_FOR_S,
    ):
        """`run_for_s`: how long each agent runs before it ends by itself (`dcwatch up`: as long as it runs)."""
        assert config.fencing is not None, "the config has no fencing section: no agents to run"
        self.config, self.fencing, self.network = config, config.fencing, network
        self.run_dir, self.log_dir, self.run_for_s = run_dir, log_dir, run_for_s
        self.sites = [s.name for s in config.sites]
        self.processes: dict[str, AgentProcess] = {}
        self._configs = {site: self._write(data, site, credentials[site]) for site in self.sites}
        self.started_at: float | None = None

    def _write(self, data: dict[str, Any], site: str, credentials: Credentials) -> Path:
        key = self.run_dir / Path(self.fencing.secret_file or "dcwatch-agent.key").name
        if not key.exists():
            key.write_text(secrets.token_hex(32), encoding="utf-8")
            key.chmod(0o600)
        vcenter = self.run_dir / f"{site}-vcenter.json"
        vcenter.write_text(json.dumps({"username": credentials.username, "password": credentials.password}))
        vcenter.chmod(0o600)
        peer = self.config.other_site(site)
        listen = urlparse(self.fencing.agents[peer].peer_url)
        host, port = self.network.route(SiteLink(site, "inter-site"), listen.hostname or "", listen.port or 80)
        path = self.run_dir / f"agent-{site}.yaml"
        routed = agent_config(data, site, self.run_dir, f"http://{host}:{port}", vcenter)
        path.write_text(yaml.safe_dump(routed, sort_keys=False), encoding="utf-8")
        return path

    def start(self, aws_endpoint: str, tables: AgentTables) -> LocalAgents:
        """Both agents afresh (no state file from an earlier run), each reaching AWS over its uplink; returns
        once both listen and hold their leases with their peer seen."""
        self.stop()
        for site in self.sites:
            self._state(site).unlink(missing_ok=True)
            self._spawn(site, aws_endpoint, tables)
        self.started_at = time.monotonic()
        self._await_ready(aws_endpoint, tables)
        return self

    def restart(self, site: str, aws_endpoint: str, tables: AgentTables) -> None:
        """The site's agent starts again, as its VM does when the site's power returns: with its state file (its
        last fence kept), listening once this returns."""
        if self.running(site):
            return
        self._spawn(site, aws_endpoint, tables)
        self._await_listening([site], time.monotonic() + START_TIMEOUT_S)

    def _spawn(self, site: str, aws_endpoint: str, tables: AgentTables) -> None:
        aws = urlparse(aws_endpoint)
        host, port = self.network.route(SiteLink(site, "uplink"), aws.hostname or "", aws.port or 80)
        command = [sys.executable, "-m", "dcwatch.cli", "agent", "--config", str(self._configs[site])]
        command += ["--site", site, "--agent-id", f"{site}@local", "--state-file", str(self._state(site))]
        command += ["--locks-table", tables.locks_table, "--audit-table", tables.audit_table]
        command += ["--bus", tables.bus_name, "--run-for", f"{self.run_for_s:g}"]
        env = {**os.environ, "AWS_ENDPOINT_URL": f"http://{host}:{port}", "POWERTOOLS_LOG_LEVEL": LOG_LEVEL}
        env.pop("AWS_ENDPOINT_URL_SFN", None)
        log = self.log_dir / f"dcwatch-agent-{site}.log"
        self.processes[site] = AgentProcess(site, command, env, log)

    def _await_ready(self, aws_endpoint: str, tables: AgentTables) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        self._await_listening(self.sites, deadline)
        ddb = boto3.client("dynamodb", endpoint_url=aws_endpoint)
        while time.monotonic() < deadline:
            leases = {site: self.lease(ddb, tables, site) for site in self.sites}
            if all(lease is not None and lease.sees_peer for lease in leases.values()):
                return
            time.sleep(POLL_S)
        raise RuntimeError(
            f"the agents hold no leases with their peers seen after {START_TIMEOUT_S:g} s; see {self.log_dir}"
        )

    def _await_listening(self, sites: list[str], deadline: float) -> None:
        for site in sites:
            listen = self.fencing.agents[site].listen
            host, _, port = listen.rpartition(":")
            try:
                wait_for_port(host, int(port), deadline - time.monotonic(), self.processes[site].process)
            except TimeoutError as exc:
                log = self.processes[site].log
                raise RuntimeError(f"the agent of {site} did not start: {exc}; see {log}") from None

    @staticmethod
    def lease(ddb: Any, tables: AgentTables, site: str) -> SiteLease | None:
        try:
            return DynamoSiteLeases(tables.locks_table, site, ddb).read()
        except Exception:  # noqa: BLE001 - not there yet, or the table is being created again
            return None

    def fences(self) -> dict[str, FenceRecord]:
        """Each agent's fence since it started (its state file, as a restart would read it)."""
        found = {}
        for site in self.sites:
            try:
                fence = agent_state.load(self._state(site)).last_fence
            except ValueError:  # being written: the agent renames a whole file over it, so read it once more
                fence = agent_state.load(self._state(site)).last_fence
            if fence is not None:
                found[site] = fence
        return found

    def _state(self, site: str) -> Path:
        return self.run_dir / f"agent-{site}-state.json"

    def running(self, site: str) -> bool:
        process = self.processes.get(site)
        return process is not None and process.running

    def kill(self, site: str) -> None:
        if site in self.processes:
            self.processes[site].kill()

    def describe(self) -> str:
        parts = []
        for site in self.sites:
            process = self.processes.get(site)
            state = f"pid {process.process.pid}" if process and process.running else "not running"
            parts.append(f"{site} {state} on {self.fencing.agents[site].listen}")
        f = self.fencing
        timing = f"renew {f.renew_s:g} s, lease {f.lease_ttl_s:g} s, margin {f.margin_s:g} s"
        return f"site agents: {', '.join(parts)} ({timing}; fence after {f.fence_after_s:g} s cut off)"

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()
        self.processes.clear()
