"""The agent's two other voters, reached side by side each round within one deadline: AWS by renewing the
site's lease, the peer by a heartbeat. A renewal that answers after its round gave up on it still counts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dcwatch.adapters.agent_aws import DynamoSiteLeases, LeaseRefused, SiteLease
from dcwatch.adapters.peer_link import PeerLink
from dcwatch.agent.calls import BoundedCall, DeadlineExceeded
from dcwatch.agent.state import AgentFile
from dcwatch.config import Fencing
from dcwatch.observability import logger


@dataclass(frozen=True)
class Reached:
    """One round's answers: the renewed lease, the peer's, and a renewal of an earlier round that came late."""

    renewed: SiteLease | None
    answered: Any | None
    late: SiteLease | None


class Voters:
    def __init__(self, site: str, agent_id: str, leases: DynamoSiteLeases, link: PeerLink, deadline_s: float):
        self.site, self.agent_id, self.leases, self.link, self.deadline_s = site, agent_id, leases, link, deadline_s
        self._renewal: BoundedCall[SiteLease] = BoundedCall("lease renewal")
        self._heartbeat: BoundedCall[Any] = BoundedCall("heartbeat")
        self.lease_error = ""

    @classmethod
    def for_site(
        cls,
        site: str,
        agent_id: str,
        peer_site: str,
        fencing: Fencing,
        leases: DynamoSiteLeases,
        key: bytes,
        file: AgentFile,
        clock: Callable[[], datetime],
        deadline_s: float,
    ) -> Voters:
        """The peer as the config's fencing names it; each call awaited within `deadline_s`."""
        link = PeerLink(
            site=site,
            agent_id=agent_id,
            peer_site=peer_site,
            peer_url=fencing.agents[peer_site].peer_url,
            key=key,
            max_skew_s=fencing.max_skew_s,
            timeout_s=deadline_s,
            last_sequence=file.peer_sequence,
            clock=clock,
        )
        return cls(site, agent_id, leases, link, deadline_s)

    def reach(self, now: datetime, ttl_s: float, *, sees_peer: bool, serving: bool, state: str) -> Reached:
        """Renewal and heartbeat side by side, each awaited until the round's deadline."""

        def renew() -> SiteLease:
            return self.leases.renew(self.agent_id, ttl_s, now, sees_peer=sees_peer, serving=serving, state=state)

        # A renewal that answered after the last round gave up on it renewed the lease when it was sent.
        late = self._renewal.late()
        started = self._renewal.start(renew), self._heartbeat.start(self.link.send)
        deadline = time.monotonic() + self.deadline_s
        renewed = self._outcome(self._renewal, started[0], deadline, "aws")
        answered = self._outcome(self._heartbeat, started[1], deadline, "peer")
        if renewed is not None:
            self.lease_error = ""
        return Reached(renewed, answered, late)

    def _outcome(self, call: BoundedCall[Any], started: bool, deadline: float, voter: str) -> Any | None:
        try:
            if not started:
                raise DeadlineExceeded(f"{call.name}: the previous call has not ended yet")
            return call.wait(deadline - time.monotonic())
        except LeaseRefused as exc:
            self.lease_error = str(exc)
            logger.error("lease refused", site=self.site, agent_id=self.agent_id, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - any failure is a lost voter this round
            if voter == "aws":
                self.lease_error = f"{type(exc).__name__}: {exc}"[:300]
            logger.debug("voter not reached", site=self.site, voter=voter, error=f"{type(exc).__name__}: {exc}"[:300])
        return None
