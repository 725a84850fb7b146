"""Shared test helpers: the canonical events in `events/` and the demo config."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from dcwatch.agent.report import SiteAgentReport
from dcwatch.config import Config, load_config
from dcwatch.events import ProbeResult
from dcwatch.local.demo import DEMO_CONFIG

EVENTS = Path(__file__).resolve().parents[1] / "events"


def load_event(name: str) -> Any:
    """The parsed JSON of events/<name>, e.g. "samples/ProbeResult.json" or "failover-manual.json"."""
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def demo_config() -> Config:
    return load_config(DEMO_CONFIG)


def probe_result(
    site: str,
    check: str,
    service: str | None,
    ok: bool,
    observed_at: datetime,
    reason: str = "connection refused",
    vantage: str = "aws-public",
) -> ProbeResult:
    """A critical check's result; service None makes it the site's vCenter check."""
    return ProbeResult(
        site=site,
        check=check,
        service=service,
        kind="http" if service else "vcenter",
        critical=True,
        ok=ok,
        reason="" if ok else reason,
        latency_ms=2.0,
        observed_at=observed_at,
        vantage=vantage,
        round_id=observed_at.isoformat(),
    )


def agent_report(
    site: str,
    peer: str,
    sent_at: datetime,
    *,
    reached: bool = True,
    last_heard_at: datetime | None = None,
    serving: bool = True,
    ttl_s: float = 30,
) -> SiteAgentReport:
    """The canonical SiteAgentReport (events/samples) of `site`'s agent, sent at `sent_at` with its lease
    just renewed; `last_heard_at` defaults to `sent_at` while the peer is reached."""
    detail = load_event("samples/SiteAgentReport.json")["detail"]
    heard = last_heard_at if last_heard_at is not None or not reached else sent_at
    state = ("SERVING" if reached else "DEGRADED") if serving else "DEGRADED"
    return SiteAgentReport.model_validate(
        {
            **detail,
            "site": site,
            "agentId": f"{site}@agent",
            "sentAt": sent_at.isoformat(),
            "state": state,
            "serving": serving,
            "checks": [{**c, "ok": serving or c["service"] is None} for c in detail["checks"]],
            "lease": {
                "held": True,
                "renewedAt": sent_at.isoformat(),
                "expiresAt": (sent_at + timedelta(seconds=ttl_s)).isoformat(),
            },
            "peer": {
                "site": peer,
                "reached": reached,
                "lastAnsweredAt": heard.isoformat() if heard else None,
                "lastHeardAt": heard.isoformat() if heard else None,
            },
        }
    )


def site_power(pipeline: Any, name: str) -> dict[str, str]:
    """Power state of each service VM at `name`, read from its vCenter (a running LocalPipeline's)."""
    from pyVmomi import vim

    from dcwatch.adapters.vsphere import vcenter_session

    site = pipeline.config.site(name)
    names = [vm.name for _, at in pipeline.config.services_at(name) for vm in at.vms]
    with vcenter_session(site.vcenter, pipeline.credentials[name]) as si:
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
        try:
            return {vm.name: vm.runtime.powerState for vm in view.view if vm.name in names}
        finally:
            view.Destroy()


def moto_credentials(monkeypatch: Any, region: str = "eu-west-1") -> None:
    """Test credentials and a region for boto3 under `mock_aws`, and no endpoint that would leave moto's mock."""
    for key, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": region}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def answer_by_cli(pipeline: Any, verb: str, token: str, reason: str, by: str) -> int:
    """`dcwatch approve|deny` as an operator runs it, against a running LocalPipeline's tables."""
    from dcwatch.cli import main

    tables = ["--table", pipeline.store.table, "--audit-table", pipeline.store.audit_table]
    return int(main([verb, "--token", token, "--reason", reason, "--by", by, *tables]))


def approval_request(pipeline: Any, before: int, timeout_s: float = 30) -> tuple[dict[str, Any], str]:
    """The first APPROVAL NEEDED message sent after `before` notifications, and the task token it names."""
    from dcwatch.local.services import wait_until

    def asking() -> list[dict[str, Any]]:
        return [n for n in pipeline.notifications[before:] if n["Subject"].startswith("[dcwatch] APPROVAL NEEDED")]

    assert wait_until(lambda: bool(asking()), timeout_s), "no approval was asked for"
    note = asking()[0]
    token = re.search(r"dcwatch approve --token (\S+)", note["Message"])
    assert token is not None, note["Message"]
    return note, token.group(1)


class Hello(BaseHTTPRequestHandler):
    """Answers every GET with 200 "OK", quietly: a healthy endpoint on loopback."""

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return
