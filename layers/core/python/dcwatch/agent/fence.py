"""The agent's one action: fence its site (power its service VMs off, call the fence hook), write it down before
anything else can fail, and audit it once AWS answers again."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from dcwatch.adapters.fencer import SiteFencer
from dcwatch.adapters.hooks import HookCaller
from dcwatch.agent import state as agent_state
from dcwatch.agent.calls import BoundedCall
from dcwatch.agent.credentials import AgentSecrets
from dcwatch.agent.quorum import Decision
from dcwatch.agent.report import FenceRecord
from dcwatch.config import Config
from dcwatch.observability import logger
from dcwatch.ports import AuditLog

FENCE_TIMEOUT_S = 30.0


class SiteFence:
    def __init__(
        self,
        site: str,
        agent_id: str,
        fencer: SiteFencer,
        audit: AuditLog,
        state_file: Path,
        clock: Callable[[], datetime],
        deadline_s: float,
    ):
        self.site, self.agent_id, self.fencer, self.audit = site, agent_id, fencer, audit
        self.state_file, self._clock, self.deadline_s = state_file, clock, deadline_s
        self._audit_call: BoundedCall[None] = BoundedCall("audit")

    @classmethod
    def for_site(
        cls,
        config: Config,
        site: str,
        agent_id: str,
        state_file: Path,
        secrets: AgentSecrets,
        audit: AuditLog,
        clock: Callable[[], datetime],
        deadline_s: float,
    ) -> SiteFence:
        """Its service VMs powered off (if it says so) and its fence hook, as the config's fencing names them."""
        me = secrets.me
        fencer = SiteFencer(
            site=site,
            vcenter=config.site(site).vcenter,
            credentials=lambda: secrets.vcenter_credentials(config.site(site).vcenter.credentials_secret),
            vms=[vm.name for _, at in config.services_at(site) for vm in at.vms],
            power_off=me.power_off_vms,
            hook=me.fence_hook,
            timeout_s=FENCE_TIMEOUT_S,
            hooks=HookCaller(headers=secrets.headers),
        )
        return cls(site, agent_id, fencer, audit, state_file, clock, deadline_s)

    def fence(self, file: agent_state.AgentFile, decision: Decision, now: datetime) -> agent_state.AgentFile:
        """The agent's file with the fence in it, saved."""
        fence_id = f"{self.site}-fenced-{now.strftime('%Y%m%dT%H%M%SZ')}"
        logger.critical("fencing the site", site=self.site, fence_id=fence_id, reason=decision.reason)
        outcome = self.fencer.fence(decision.reason, self.agent_id, now)
        record = FenceRecord(
            fence_id=fence_id,
            fenced_at=now,
            reason=decision.reason,
            vms_powered_off=outcome.powered_off,
            errors=outcome.errors,
            audited=False,
        )
        file = file.fenced(record)
        agent_state.save(self.state_file, file)  # before anything else can fail
        log = logger.error if outcome.errors else logger.critical
        log("site fenced", site=self.site, fence_id=fence_id, powered_off=outcome.powered_off, errors=outcome.errors)
        return file

    def audit_pending(self, file: agent_state.AgentFile) -> agent_state.AgentFile:
        """The file without the fences now audited; the first that cannot be written is kept, and those after it."""
        for record in file.pending_audit:
            entry = {
                "kind": "site fenced",
                "site": self.site,
                "agentId": self.agent_id,
                **record.model_dump(mode="json", by_alias=True, exclude={"audited"}),
                "recordedAt": self._clock().isoformat(),
            }
            try:
                write = functools.partial(self.audit.append_audit, record.fence_id, entry)
                self._audit_call(write, self.deadline_s)
            except Exception as exc:  # noqa: BLE001 - kept on disk, written with a later renewal
                logger.warning("fence audit not written yet", site=self.site, fence_id=record.fence_id, error=str(exc))
                return file
            file = file.audited(record.fence_id)
            logger.info("fence audited", site=self.site, fence_id=record.fence_id)
        return file
