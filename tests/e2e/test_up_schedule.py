"""A scheduled drill in the local stack (issue 17): `dcwatch up` with a config whose drill runs every minute fires
it as EventBridge Scheduler would; it passes, cleans up, and an operator finds it in `history`, in the drill
scorecard and in `drill --schedule-status`. Every command is a subprocess; every wait is bounded."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from tests.local_up import UpProcess, dcwatch, demo_config_on_free_ports

pytestmark = pytest.mark.e2e

READY_WITHIN_S = 180
RUN_FOR_S = 300  # `up` stops by itself even if this test is killed outright
DRILL_WITHIN_S = 180  # the first firing a minute after the start, then the drill itself on a busy machine
POLL_S = 3.0


def test_a_drill_on_a_one_minute_rate_fires_passes_cleans_up_and_shows_in_history_and_the_scorecard(tmp_path):
    config_path = demo_config_on_free_ports(tmp_path)
    doc = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    doc["drill"]["schedule"] = {"expression": "rate(1 minute)", "reason": "weekly drill, every minute here"}
    config_path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    up = UpProcess(config_path, tmp_path / "run", RUN_FOR_S)
    try:
        env = up.wait_ready(READY_WITHIN_S)
        deadline, drills = time.monotonic() + DRILL_WITHIN_S, []
        while time.monotonic() < deadline and not drills:
            done = dcwatch(["history", "--json", "--kind", "drill"], env)
            drills = [e for e in json.loads(done.stdout or "[]") if e["outcome"] == "drill-passed"]
            time.sleep(0 if drills else POLL_S)
        assert drills, f"no scheduled drill passed within {DRILL_WITHIN_S} s: {up.output[-3000:]}"
        shown = dcwatch(["history", "show", drills[0]["id"], "--json"], env)
        assert shown.returncode == 0, shown.stderr
        assert '"trigger": "scheduled"' in shown.stdout and "destroyed 5 clones" in shown.stdout, "it cleaned up"

        page = tmp_path / "scorecard.html"
        done = dcwatch(["report", "--scorecard", "--out", str(page)], env)
        assert done.returncode == 0, done.stderr
        assert drills[0]["id"] in page.read_text(encoding="utf-8")

        status = dcwatch(["drill", "--schedule-status", "--config", str(config_path)], env)
        assert status.returncode == 0, status.stderr
        assert "rate(1 minute)" in status.stdout and "drill-passed" in status.stdout
    finally:
        up.kill()
    assert "Traceback" not in up.output, up.output[-4000:]
