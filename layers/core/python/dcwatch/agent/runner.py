"""The agent's loop: every `renew_s`, renew the lease and heartbeat the peer (side by side, each with a
deadline), decide, fence when cut off from both, and write down what a restart must know. A second
thread runs the site's own checks and publishes the report, so a slow check never delays a renewal.
"""

from __future__ import annotations

import functools
import os
import secrets
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Generic, TypeVar

from dcwatch.adapters.agent_aws import (
    AgentReportPublisher,
    DynamoSiteLeases,
    KeptSecrets,
    LeaseRefused,
    SiteLease,
    bounded_client,
    credentials_from_text,
    read_key_file,
)
from dcwatch.adapters.dynamodb.audit import DynamoAuditLog
from dcwatch.adapters.fencer import SiteFencer
from dcwatch.adapters.hooks import HookCaller
from dcwatch.adapters.peer_link import PeerLink
from dcwatch.adapters.probers import probe_round
from dcwatch.adapters.secrets import Credentials, headers_from_text
from dcwatch.agent import state as agent_state
from dcwatch.agent.quorum import AgentView, Decision, Timing, decide
from dcwatch.agent.report import FenceRecord, LeaseView, LocalCheck, PeerView, SiteAgentReport
from dcwatch.config import Config, Fencing
from dcwatch.detection.checks import service_checks, site_checks, vcenter_checks
from dcwatch.events import ProbeResult
from dcwatch.observability import logger

T = TypeVar("T")
DEFAULT_STATE_DIR = Path("/var/lib/dcwatch-agent")
FENCE_TIMEOUT_S = 30.0


class DeadlineExceeded(Exception):
    pass


class BoundedCall(Generic[T]):
    """One call at a time in a daemon thread, awaited no longer than its deadline; a call that outlives
    it is left to end by its own socket timeouts, and the next one waits until it has. What such a call
    returns after its waiter gave up is kept for `late()`: a slow answer is still an answer."""

    def __init__(self, name: str):
        self.name = name
        self._done = threading.Event()
        self._done.set()
        self._result: tuple[T | None, BaseException | None] = (None, None)
        self._claimed = True

    def start(self, work: Callable[[], T]) -> bool:
        if not self._done.is_set():
            return False
        self._done.clear()
        self._claimed = False

        def run() -> None:
            try:
                self._result = (work(), None)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                self._result = (None, exc)
            finally:
                self._done.set()

        threading.Thread(target=run, name=f"dcwatch-agent-{self.name}", daemon=True).start()
        return True

    def wait(self, timeout_s: float) -> T:
        if not self._done.wait(max(0.0, timeout_s)):
            raise DeadlineExceeded(f"{self.name}: no answer within the deadline")
        self._claimed = True
        value, error = self._result
        if error is not None:
            raise error
        return value  # type: ignore[return-value]

    def late(self) -> T | None:
        """The value of a call that succeeded after its deadline, once; None otherwise."""
        if self._claimed or not self._done.is_set():
            return None
        self._claimed = True
        value, error = self._result
        return value if error is None else None

    def __call__(self, work: Callable[[], T], timeout_s: float) -> T:
        if not self.start(work):
            raise DeadlineExceeded(f"{self.name}: the previous call has not ended yet")
        return self.wait(timeout_s)


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


def _local(result: ProbeResult) -> LocalCheck:
    """A probe result as the report carries it: without site, vantage and round, which the report says once."""
    return LocalCheck.model_validate(result.model_dump(include=set(LocalCheck.model_fields)))


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
        self._key_missing = False
        if config.fencing is None or site not in config.fencing.agents:
            raise ValueError(
                f"the config's fencing.agents has no agent for {site}: "
                "the agent needs its lease, peer and fence settings"
            )
        self.config, self.site, self.settings, self._clock = config, site, settings, clock
        self.fencing: Fencing = config.fencing
        self.me, self.peer_site = self.fencing.agents[site], config.other_site(site)
        self.timing = Timing(self.fencing.lease_ttl_s, self.fencing.margin_s)
        renew_s = self.fencing.renew_s
        self.call_deadline_s = renew_s * 0.6  # renewal and heartbeat run side by side within this
        client_timeout = max(0.1, self.call_deadline_s / 2)
        # A renewal may answer after its round gave up on it and still count (from when it was sent), as long
        # as it lands before the agent would fence: so its client waits longer than the round does.
        ddb = clients("dynamodb", max(client_timeout, self.timing.fence_after.total_seconds() / 4))
        self.leases = DynamoSiteLeases(settings.locks_table, site, ddb)
        self.audit = DynamoAuditLog("", settings.audit_table, client=ddb)
        self.publisher = AgentReportPublisher(settings.bus_name, clients("events", client_timeout))
        self.secrets = KeptSecrets(clients("secretsmanager", client_timeout), time.monotonic)
        self.file = agent_state.load(settings.state_file)
        self.view = AgentView(
            started_at=clock(), last_renewal=self.file.last_renewal, last_peer_ok=self.file.last_peer_ok
        )
        self.link = PeerLink(
            site=site,
            agent_id=settings.agent_id,
            peer_site=self.peer_site,
            peer_url=self.fencing.agents[self.peer_site].peer_url,
            key=self._heartbeat_key() or secrets.token_bytes(32),
            max_skew_s=self.fencing.max_skew_s,
            timeout_s=self.call_deadline_s,
            last_sequence=self.file.peer_sequence,
            clock=clock,
        )
        vms = [vm.name for _, at in config.services_at(site) for vm in at.vms]
        self.fencer = SiteFencer(
            site=site,
            vcenter=config.site(site).vcenter,
            credentials=lambda: self._vcenter_credentials(config.site(site).vcenter.credentials_secret),
            vms=vms,
            power_off=self.me.power_off_vms,
            hook=self.me.fence_hook,
            timeout_s=FENCE_TIMEOUT_S,
            hooks=HookCaller(headers=self._secret_headers),
        )
        self._renewal: BoundedCall[SiteLease] = BoundedCall("lease renewal")
        self._heartbeat: BoundedCall[Any] = BoundedCall("heartbeat")
        self._audit_call: BoundedCall[None] = BoundedCall("audit")
        self._publish: BoundedCall[None] = BoundedCall("report")
        self.decision: Decision = decide(self._clock(), self.view, self.timing)
        self.lease: SiteLease | None = None
        self.lease_error = ""
        self.checks: list[ProbeResult] = []
        self._lock = threading.Lock()
        self.stop = threading.Event()

    def _heartbeat_key(self) -> bytes | None:
        """The shared key; None while its secret cannot be read (AWS away at start), so that the agent still
        runs, counts no peer contact, and fences on time if it reaches neither voter."""
        if self.fencing.secret_file is not None:
            return read_key_file(self.fencing.secret_file)
        assert self.fencing.secret_id is not None
        try:
            return self.secrets.get(self.fencing.secret_id).strip().encode()
        except Exception as exc:  # noqa: BLE001 - read again once AWS answers
            logger.error("heartbeat key unavailable", site=self.site, secret=self.fencing.secret_id, error=str(exc))
            self._key_missing = True
            return None

    def _vcenter_credentials(self, secret_id: str) -> Credentials:
        if self.me.vcenter_credentials_file is not None:
            path = self.me.vcenter_credentials_file
            return credentials_from_text(Path(path).read_text(encoding="utf-8"), path)
        return credentials_from_text(self.secrets.get(secret_id), f"secret {secret_id}")

    def _secret_headers(self, secret_id: str) -> dict[str, str]:
        return headers_from_text(self.secrets.get(secret_id), f"headers_secret {secret_id}")

    def tick(self) -> Decision:
        """One round: renewal and heartbeat side by side, the decision, a fence if it says so."""
        now = self._clock()
        previous = self.decision
        serving = any(r.ok for r in self.checks if r.service is not None and r.critical)

        def renew() -> SiteLease:
            return self.leases.renew(
                self.settings.agent_id,
                self.fencing.lease_ttl_s,
                now,
                sees_peer=self.view.peer_reached,
                serving=serving,
                state=previous.state,
            )

        # A renewal that answered after the last round gave up on it renewed the lease when it was sent.
        late = self._renewal.late()
        started = self._renewal.start(renew), self._heartbeat.start(self.link.send)
        deadline = time.monotonic() + self.call_deadline_s
        renewed = self._outcome(self._renewal, started[0], deadline, "aws")
        answered = self._outcome(self._heartbeat, started[1], deadline, "peer")
        self.view = self.view.observe(now, renewed=renewed is not None, peer_answered=answered is not None)
        if late is not None and renewed is None:
            self.view = self.view.renewed_late(late.renewed_at)
            self.lease = late
        if renewed is not None:
            self.lease, self.lease_error = renewed, ""
            if self._key_missing and (key := self._heartbeat_key()) is not None:
                self._key_missing = False
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
                lease_error=self.lease_error,
            )
        if decision.action == "fence":
            self._fence(decision, now)
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
            self._flush_audit()
        agent_state.save(self.settings.state_file, self.file)
        return decision

    def _outcome(self, call: BoundedCall[Any], started: bool, deadline: float, voter: str) -> Any | None:
        try:
            if not started:
                raise DeadlineExceeded(f"{call.name}: the previous call has not ended yet")
            return call.wait(deadline - time.monotonic())
        except LeaseRefused as exc:
            self.lease_error = str(exc)
            logger.error("lease refused", site=self.site, agent_id=self.settings.agent_id, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - any failure is a lost voter this round
            if voter == "aws":
                self.lease_error = f"{type(exc).__name__}: {exc}"[:300]
            logger.debug("voter not reached", site=self.site, voter=voter, error=f"{type(exc).__name__}: {exc}"[:300])
        return None

    def _fence(self, decision: Decision, now: datetime) -> None:
        fence_id = f"{self.site}-fenced-{now.strftime('%Y%m%dT%H%M%SZ')}"
        logger.critical("fencing the site", site=self.site, fence_id=fence_id, reason=decision.reason)
        outcome = self.fencer.fence(decision.reason, self.settings.agent_id, now)
        record = FenceRecord(
            fence_id=fence_id,
            fenced_at=now,
            reason=decision.reason,
            vms_powered_off=outcome.powered_off,
            errors=outcome.errors,
            audited=False,
        )
        self.file = self.file.fenced(record)
        agent_state.save(self.settings.state_file, self.file)  # before anything else can fail
        log = logger.error if outcome.errors else logger.critical
        log("site fenced", site=self.site, fence_id=fence_id, powered_off=outcome.powered_off, errors=outcome.errors)

    def _flush_audit(self) -> None:
        for record in self.file.pending_audit:
            entry = {
                "kind": "site fenced",
                "site": self.site,
                "agentId": self.settings.agent_id,
                **record.model_dump(mode="json", by_alias=True, exclude={"audited"}),
                "recordedAt": self._clock().isoformat(),
            }
            try:
                write = functools.partial(self.audit.append_audit, record.fence_id, entry)
                self._audit_call(write, self.call_deadline_s)
            except Exception as exc:  # noqa: BLE001 - kept on disk, written with a later renewal
                logger.warning("fence audit not written yet", site=self.site, fence_id=record.fence_id, error=str(exc))
                return
            self.file = self.file.audited(record.fence_id)
            logger.info("fence audited", site=self.site, fence_id=record.fence_id)

    def report(self, sent_at: datetime) -> SiteAgentReport:
        with self._lock:
            decision, view, lease, checks = self.decision, self.view, self.lease, self.checks
            last_fence = self.file.last_fence
        heard = [t for t in (view.last_peer_ok, self.link.last_heartbeat_at) if t is not None]
        login = next((r for r in checks if r.kind == "vcenter" and r.check == "vcenter"), None)
        return SiteAgentReport(
            site=self.site,
            agent_id=self.settings.agent_id,
            sent_at=sent_at,
            state=decision.state,
            reason=decision.reason,
            serving=any(r.ok for r in checks if r.service is not None and r.critical),
            lease=LeaseView(
                held=view.aws_reached,
                renewed_at=lease.renewed_at if lease else None,
                expires_at=lease.expires_at if lease else None,
                error="" if view.aws_reached else self.lease_error,
            ),
            peer=PeerView(
                site=self.peer_site,
                reached=view.peer_reached,
                last_answered_at=view.last_peer_ok,
                last_heard_at=max(heard) if heard else None,
            ),
            vcenter=_local(login) if login else None,
            checks=[_local(r) for r in checks if r is not login],
            last_fence=last_fence,
        )

    def run_checks(self) -> list[ProbeResult]:
        planned = vcenter_checks(self.config, self.site) + site_checks(self.config, self.site)
        planned += service_checks(self.config, self.site)
        deadline = max(c.timeout_s for c in planned) + 1
        return probe_round(
            planned,
            self._vcenter_credentials,
            headers=self._secret_headers,
            vantage=f"agent-{self.site}",
            round_id=uuid.uuid4().hex,
            deadline_s=deadline,
        )

    def _reporter(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                checks = self.run_checks()
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
