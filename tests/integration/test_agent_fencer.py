"""A fence from inside the site (vcsim): the service VMs are powered off, and when the site's vCenter
refuses the login the fence hook still runs and the fence says what it could not do."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from dcwatch.adapters.fencer import SiteFencer
from dcwatch.adapters.secrets import Credentials
from dcwatch.config import Hook
from dcwatch.ports import HookResult
from tests.hook_server import HookServer
from tests.integration.test_site_agent import power

pytestmark = pytest.mark.integration
AT = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


class RecordingHooks:
    """The hook runner's port, remembering each payload; the real HTTP hook runs in the other test."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []

    def run(self, hook: Hook, payload: Any) -> HookResult:
        self.payloads.append(dict(payload))
        return HookResult(True, "done")


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    server = HookServer().start()
    yield server
    server.stop()


def test_a_fence_powers_off_exactly_the_sites_service_vms_and_calls_the_hook_with_mode_fence(vcsim_site):
    site = vcsim_site([("web-1", True), ("db-1", True), ("other", True)], name="north")
    recorded = RecordingHooks()
    fencer = SiteFencer(
        site="north",
        vcenter=site.vcenter,
        credentials=lambda: site.credentials,
        vms=["web-1", "db-1"],
        power_off=True,
        hook=Hook(name="fence-north", url="http://127.0.0.1:1/"),
        timeout_s=10,
        hooks=recorded,
    )
    outcome = fencer.fence("cut off from AWS and the peer", "north@vm", AT)
    assert (sorted(outcome.powered_off), outcome.errors) == (["db-1", "web-1"], [])
    assert power(site, ["web-1", "db-1", "other"]) == {
        "web-1": "poweredOff",
        "db-1": "poweredOff",
        "other": "poweredOn",
    }
    assert recorded.payloads == [
        {
            "mode": "fence",
            "site": "north",
            "reason": "cut off from AWS and the peer",
            "agentId": "north@vm",
            "at": AT.isoformat(),
        }
    ]
    # A second fence finds them off and says so: nothing to undo, nothing failed
    assert sorted(fencer.fence("again", "north@vm", AT).powered_off) == ["db-1", "web-1"]


def test_when_the_vcenter_refuses_the_login_the_hook_still_fences_and_the_refusal_is_reported(vcsim_site, hooks):
    site = vcsim_site([("web-1", True)], name="north")
    fencer = SiteFencer(
        site="north",
        vcenter=site.vcenter,
        credentials=lambda: Credentials(site.credentials.username, "wrong"),
        vms=["web-1"],
        power_off=True,
        hook=Hook(name="fence-north", url=hooks.url("/hook/fence-north"), timeout_s=5),
        timeout_s=5,
    )
    outcome = fencer.fence("cut off", "north@vm", AT)
    assert outcome.powered_off == [] and hooks.calls == ["fence-north"]
    assert len(outcome.errors) == 1 and "refused the login" in outcome.errors[0]
    assert power(site, ["web-1"]) == {"web-1": "poweredOn"}
