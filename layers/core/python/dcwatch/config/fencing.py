"""The `fencing` section: the site agents' lease, heartbeats and self-fencing."""

from __future__ import annotations

from pydantic import Field, field_validator

from dcwatch.config.fields import ConfigModel, http_url
from dcwatch.config.sites import Hook


class SiteAgent(ConfigModel):
    """The site agent of one site: where it listens for its peer's heartbeats and how it fences its site."""

    listen: str = Field(description="host:port the agent's heartbeat server binds, e.g. 10.1.0.5:7440")
    url: str | None = Field(
        default=None, description="how the peer agent reaches this one over the inter-site link (http://<listen>)"
    )
    power_off_vms: bool = Field(default=True, description="a fence powers off the site's service VMs")
    fence_hook: Hook | None = Field(
        default=None, description="called by a fence (payload mode: fence, site, reason), e.g. to take volumes offline"
    )
    vcenter_credentials_file: str | None = Field(
        default=None,
        description="JSON {username, password} on the agent's VM, so that a fence needs no AWS; else the site's "
        "vcenter.credentials_secret, read while AWS answers and kept in memory",
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port, got {value!r}")
        return value

    _check_url = field_validator("url")(classmethod(lambda cls, v: v if v is None else http_url(v)))

    @property
    def peer_url(self) -> str:
        return self.url or f"http://{self.listen}"


class Fencing(ConfigModel):
    """The site agents' lease and self-fencing (see docs/deploy.md, "Site agents"): a site cut off from AWS
    and from its peer fences itself at lease_ttl_s - margin_s after its last renewal; AWS may act on an
    expired lease no earlier than lease_ttl_s + margin_s after it."""

    renew_s: float = Field(default=5.0, gt=0, description="seconds between lease renewals and heartbeats")
    lease_ttl_s: float = Field(default=30.0, gt=0, description="a lease not renewed for this long has expired")
    margin_s: float = Field(default=10.0, gt=0, description="allowance for clock error and delivery")
    max_skew_s: float = Field(
        default=5.0, gt=0, description="a heartbeat sent further than this in the past or future is refused"
    )
    secret_file: str | None = Field(
        default=None, description="file on the agent's VM holding the shared heartbeat key (recommended)"
    )
    secret_id: str | None = Field(
        default=None, min_length=1, description="or: the Secrets Manager secret holding the shared heartbeat key"
    )
    agents: dict[str, SiteAgent] = Field(
        default={}, description="one agent per site, by site name; none: no lease proof, no self-fencing"
    )
    trust_quorum: bool = Field(
        default=False,
        description="promote the standby on the quorum verdict alone when no proof says the failed site is "
        "fenced, instead of asking a human: a cut path from AWS then runs both sites at once (warned about)",
    )
    proof_waits: int = Field(
        default=6,
        ge=0,
        le=20,
        description="how many times the workflow waits for the failed site's lease to expire (and the standby's "
        "agent to confirm it lost that site) before it asks a human to approve an unproven promotion",
    )

    @property
    def fence_after_s(self) -> float:
        """The agent fences this long after its last renewal (and last answered heartbeat)."""
        return self.lease_ttl_s - self.margin_s

    @property
    def act_after_s(self) -> float:
        """AWS may act on an expired lease no earlier than this long after the last renewal it recorded."""
        return self.lease_ttl_s + self.margin_s

    @property
    def proof_wait_budget_s(self) -> float:
        """The longest the workflow can wait for the lease proof: each wait lasts at most until the lease
        could have expired and the standby's next report is in."""
        return self.proof_waits * (self.act_after_s + self.renew_s + PROOF_REPORT_SLACK_S)


# A wait for the lease proof also covers the delivery of the standby agent's next report.
PROOF_REPORT_SLACK_S = 2.0
TRUST_QUORUM_WARNING = (
    "fencing.trust_quorum is on: when no proof says the failed site is fenced (its vCenter powered its VMs off, "
    "its lease expired and the standby's agent lost it, or its storage is offline), the workflow promotes the "
    "standby on the quorum verdict alone; if only the paths from AWS to that site are cut, both sites then "
    "serve and write the mirrored data at once"
)
