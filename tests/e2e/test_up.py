"""The operators' view end to end (issue 17): `dcwatch up` in one "terminal", and in a second one, with its env file
sourced, exactly what an operator does against AWS: status, kill the active site, watch status turn to the
failover and back to all well at the standby, the history with the incident and the failover's RTO, its report;
then the dead site's power back, a failback by hand, and all well at the original site again.

Every command is a subprocess; every wait is bounded; `up` is stopped in a finally."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from dcwatch.config import load_config
from tests.local_up import UpProcess, dcwatch, demo_config_on_free_ports

pytestmark = pytest.mark.e2e

READY_WITHIN_S = 180
RUN_FOR_S = 480  # `up` stops by itself even if this test is killed outright
STEADY_WITHIN_S = 60  # first probe rounds in: everything well
FAILOVER_WITHIN_S = 150  # detection, fencing (the dead site's lease), the groups, DNS, on a busy 2-core machine
REVIVED_WITHIN_S = 60  # the vCenter and agent started again, then successes_to_up probe rounds
SETTLED_WITHIN_S = 60  # after the failback: the services' checks back UP at the original site
POLL_S = 2.0


def poll(what: str, attempt: Callable[[], Any], within_s: float) -> Any:
    """`attempt()` until it returns something truthy; fails naming `what` and the last answer after `within_s`."""
    deadline, last = time.monotonic() + within_s, None
    while time.monotonic() < deadline:
        last = attempt()
        if last and last[0]:
            return last
        time.sleep(POLL_S)
    raise AssertionError(f"{what} not seen within {within_s:g} s; last: {last!r}")


def test_an_operator_plays_a_site_outage_against_the_local_stack(tmp_path):
    config_path = demo_config_on_free_ports(tmp_path)
    config = load_config(config_path)
    active, standby = config.active_site, config.other_site(config.active_site)
    up = UpProcess(config_path, tmp_path / "run", RUN_FOR_S)
    try:
        env = up.wait_ready(READY_WITHIN_S)

        # All is well once the first probe rounds are in
        def status() -> tuple[bool, Any]:
            done = dcwatch(["status"], env)
            return done.returncode == 0, done.stdout + done.stderr

        poll("`dcwatch status` exit 0", status, STEADY_WITHIN_S)

        # The operator kills the active site
        killed = dcwatch(["fault", "kill-site", "active"], env)
        assert killed.returncode == 0, killed.stderr
        up.wait_for("fault_injected", timeout_s=10)

        # status turns to the failover, and back to all well with production at the standby
        def failed_over() -> tuple[bool, Any]:
            done = dcwatch(["status", "--json"], env)
            view = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
            return done.returncode == 0 and view.get("activeSite") == standby, (done.returncode, view)

        _, (_, view) = poll(f"status at {standby} with exit 0", failed_over, FAILOVER_WITHIN_S)
        assert view["healthy"] is True
        assert view["lastFailover"]["to"] == standby and view["lastFailover"]["rtoS"] > 0

        # history shows the incident and the failover with its RTO
        done = dcwatch(["history", "--json"], env)
        assert done.returncode == 0, done.stderr
        events = json.loads(done.stdout)
        kinds = {event["kind"] for event in events}
        assert {"incident", "failover"} <= kinds, events
        failover = next(event for event in events if event["kind"] == "failover")
        assert failover["rtoS"] is not None and failover["rtoS"] > 0
        assert active in failover["summary"] or standby in failover["summary"]

        # and its report renders as one HTML page
        page = tmp_path / "report.html"
        done = dcwatch(["report", failover["id"], "--out", str(page)], env)
        assert done.returncode == 0, done.stderr
        html = page.read_text(encoding="utf-8")
        assert html.lstrip().lower().startswith("<!doctype html") and "<svg" in html

        # The power returns at the dead site, and the operator fails back to it by hand
        revived = dcwatch(["fault", "revive-site", active], env)
        assert revived.returncode == 0, revived.stderr

        def site_up() -> tuple[bool, Any]:
            done = dcwatch(["status", "--json"], env)
            view = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
            return view.get("sites", {}).get(active, {}).get("status") == "UP", view

        poll(f"{active} UP again", site_up, REVIVED_WITHIN_S)
        options = ["--config", env["DCWATCH_CONFIG"], "--table", env["DCWATCH_TABLE_NAME"]]
        options += ["--state-machine-arn", env["DCWATCH_STATE_MACHINE_ARN"], "--wait"]
        back = dcwatch(["failback", "--from", standby, "--to", active, "--reason", "power is back", *options], env)
        assert back.returncode == 0, back.stdout + back.stderr
        assert "SUCCEEDED; timeline" in back.stdout and "CheckDns: Route 53 changes INSYNC" in back.stdout

        # All well at the original site: nothing the outage stored of its vCenter and services stands
        def failed_back() -> tuple[bool, Any]:
            done = dcwatch(["status", "--json"], env)
            view = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
            return done.returncode == 0 and view.get("activeSite") == active, (done.returncode, view)

        _, (_, view) = poll(f"status at {active} with exit 0", failed_back, SETTLED_WITHIN_S)
        assert view["attention"] == []
    finally:
        up.kill()
    assert "Traceback" not in up.output, up.output[-4000:]
