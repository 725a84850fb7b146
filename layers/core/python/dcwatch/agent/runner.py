"""The agent's loop: every `renew_s`, reach the other two voters (`voters`), decide (`quorum`), fence when cut
off from both (`fence`), and write down what a restart must know (`state`). A second thread runs the site's own
checks and publishes the report (`reporting`), so a slow check never delays a renewal.
"""

from __future__ import annotations

import functools
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from dcwatch.adapters.agent_aws import AgentReportPublisher, DynamoSiteLeases, KeptSecrets, SiteLease, bounded_client
from dcwatch.adapters.dynamodb.audit import DynamoAuditLog
from dcwatch.agent import state as agent_state
from dcwatch.agent.calls import BoundedCall
from dcwatch.agent.credentials import AgentSecrets
from dcwatch.agent.fence import SiteFence
from dcwatch.agent.quorum import AgentView, Decision, Timing, decide
from dcwatch.agent.report import SiteAgentReport
from dcwatch.agent.reporting import run_checks, site_report
from dcwatch.agent.voters import Voters
from dcwatch.config import Config, Fencing
from dcwatch.events import ProbeResult
from dcwatch.observability import logger

DEFAULT_STATE_DIR = Path("/var/lib/dcwatch-agent")


def _notify(message: str) -> None:
    """systemd's sd_notify (READY=1, WATCHDOG=1) when run as a Type=notify unit; nothing otherwise."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), address)
    except OSError:
        pass


@dataclass(frozen=True)
class AgentSettings:
    locks_table: str
    audit_table: str
    bus_name: str
    agent_id: str
    state_file: Path


def default_agent_id(site: str) -> str:
    return f"{site}@{socket.gethostname()}"


class SiteAgent:
    def __init__(
        self,
        config: Config,
        site: str,
        settings: AgentSettings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        clients: Callable[[str, float], Any] = bounded_client,
    ):
        if config.fencing is None or site not in config.fencing.agents:
            raise ValueError(
                f"the config's fencing.agents has no agent for {site}: "
                "the agent needs its lease, peer and fence settings"
            )
        self.config, self.site, self.settings, self._clock = config, site, settings, clock
        self.fencing: Fencing = config.fencing
        self.me, self.peer_site = self.fencing.agents[site], config.other_site(site)
        self.timing = Timing(self.fencing.lease_ttl_s, self.fencing.margin_s)
        self.call_deadline_s = self.fencing.renew_s * 0.6  # renewal and heartbeat run side by side within this
        client_timeout = max(0.1, self.call_deadline_s / 2)
        # A renewal may answer after its round gave up on it and still count (from when it was sent), as long
        # as it lands before the agent would fence: so its client waits longer than the round does.
        ddb = clients("dynamodb", max(client_timeout, self.timing.fence_after.total_seconds() / 4))
        self.publisher = AgentReportPublisher(settings.bus_name, clients("events", client_timeout))
        kept = KeptSecrets(clients("secretsmanager", client_timeout), time.monotonic)
        self.secrets = AgentSecrets(site, self.fencing, self.me, kept)
        self.file = agent_state.load(settings.state_file)
        self.view = AgentView(
            started_at=clock(), last_renewal=self.file.last_renewal, last_peer_ok=self.file.last_peer_ok
        )
        leases = DynamoSiteLeases(settings.locks_table, site, ddb)
        key = self.secrets.heartbeat_key() or secrets.token_bytes(32)
        self.voters = Voters.for_site(
            site, settings.agent_id, self.peer_site, self.fencing, leases, key, self.file, clock, self.call_deadline_s
        )
        self.link = self.voters.link
        audit = DynamoAuditLog("", settings.audit_table, client=ddb)
        self.fence = SiteFence.for_site(
            config, site, settings.agent_id, settings.state_file, self.secrets, audit, clock, self.call_deadline_s
        )
        self._publish: BoundedCall[None] = BoundedCall("report")
        self.decision: Decision = decide(self._clock(), self.view, self.timing)
        self.lease: SiteLease | None = None
        self.checks: list[ProbeResult] = []
        self._lock = threading.Lock()
        self.stop = threading.Event()

    def tick(self) -> Decision:
        """One round: renewal and heartbeat side by side, the decision, a fence if it says so."""
        now = self._clock()
        previous = self.decision
        serving = any(r.ok for r in self.checks if r.service is not None and r.critical)

        reached = self.voters.reach(
            now, self.fencing.lease_ttl_s, sees_peer=self.view.peer_reached, serving=serving, state=previous.state
        )
        renewed, late = reached.renewed, reached.late
        self.view = self.view.observe(now, renewed=renewed is not None, peer_answered=reached.answered is not None)
        if late is not None and renewed is None:
            self.view = self.view.renewed_late(late.renewed_at)
            self.lease = late
        if renewed is not None:
            self.lease = renewed
            if (key := self.secrets.recovered_key()) is not None:
                self.link.set_key(key)
        decision = decide(now, self.view, self.timing)
        if decision.state != previous.state:
            log = logger.info if decision.serving_majority else logger.warning
            log(
                "quorum changed",
                site=self.site,
                state=decision.state,
                previous=previous.state,
                reason=decision.reason,
                lease_error=self.voters.lease_error,
            )
        if decision.action == "fence":
            self.file = self.fence.fence(self.file, decision, now)
            self.view = self.view.after_fence()
            decision = decide(now, self.view, self.timing)
        with self._lock:
            self.decision = decision
            self.file = agent_state.AgentFile(
                last_renewal=self.view.last_renewal,
                last_peer_ok=self.view.last_peer_ok,
                peer_sequence=self.link.last_peer_sequence,
                last_fence=self.file.last_fence,
                pending_audit=self.file.pending_audit,
            )
        if renewed is not None and self.file.pending_audit:
            self.file = self.fence.audit_pending(self.file)
        agent_state.save(self.settings.state_file, self.file)
        return decision

    def report(self, sent_at: datetime) -> SiteAgentReport:
        with self._lock:
            decision, view, lease, checks = self.decision, self.view, self.lease, self.checks
            last_fence = self.file.last_fence
        return site_report(
            self.site,
            self.settings.agent_id,
            self.peer_site,
            sent_at,
            decision=decision,
            view=view,
            lease=lease,
            lease_error=self.voters.lease_error,
            checks=checks,
            last_fence=last_fence,
            last_heartbeat_at=self.link.last_heartbeat_at,
        )

    def _reporter(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                checks = run_checks(self.config, self.site, self.secrets.vcenter_credentials, self.secrets.headers)
                with self._lock:
                    self.checks = checks
                if self.view.aws_reached:
                    report = self.report(self._clock())
                    self._publish(functools.partial(self.publisher.publish, report), self.call_deadline_s)
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                logger.warning("report not published", site=self.site, error=f"{type(exc).__name__}: {exc}"[:300])
            self.stop.wait(max(0.0, self.fencing.renew_s - (time.monotonic() - started)))

    def run(self, run_for_s: float | None = None) -> None:
        """Until `stop` is set (SIGTERM, SIGINT) or `run_for_s` has passed."""
        self.link.start(self.me.listen)
        logger.info(
            "agent started",
            site=self.site,
            agent_id=self.settings.agent_id,
            listen=self.me.listen,
            peer=self.peer_site,
            renew_s=self.fencing.renew_s,
            fence_after_s=self.fencing.fence_after_s,
        )
        _notify("READY=1")
        reporter = threading.Thread(target=self._reporter, name="dcwatch-agent-report", daemon=True)
        reporter.start()
        ends = time.monotonic() + run_for_s if run_for_s is not None else None
        try:
            while not self.stop.is_set() and (ends is None or time.monotonic() < ends):
                started = time.monotonic()
                self.tick()
                _notify("WATCHDOG=1")
                self.stop.wait(max(0.0, self.fencing.renew_s - (time.monotonic() - started)))
        finally:
            self.stop.set()
            self.link.stop()
            reporter.join(timeout=self.fencing.renew_s + 10)
            logger.info("agent stopped", site=self.site, state=self.decision.state)


def run_agent(config: Config, site: str, settings: AgentSettings, run_for_s: float | None = None) -> int:
    agent = SiteAgent(config, site, settings)

    def stop(signum: int, frame: FrameType | None) -> None:
        agent.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    agent.run(run_for_s)
    return 0
