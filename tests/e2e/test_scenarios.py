"""The scenario matrix end to end: every scenario file played against the local runtime, judged by its own file.

One run of the whole matrix (one moto server, one vcsim per site, reset between scenarios) feeds
every test here. Scenarios whose rules live on the decision branch of issue 5 (quorum, isolation,
flapping, maintenance windows, the automation switch, the lease lock, edge-triggered alerts) are
strict xfails on this branch: the merge removes the marks, and a mark left over fails the run.
"""

from __future__ import annotations

import re
import socket

import pytest

from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.local.matrix import load_matrix, run_matrix, table
from dcwatch.local.scenario import scenario_files

pytestmark = pytest.mark.e2e

NEEDS_RULES = "needs decision rules of issue 5 branch"
NAMES = [f.stem for f in scenario_files()]
# scenario -> why its decision (failover, DOWN decisions, detection) cannot hold on this branch
DECISION_XFAIL = {
    "vantage-isolated": "quorum and ISOLATED vantage points",
    "maintenance-window": "maintenance windows",
    "automation-off": "the automation switch",
    "two-manual-triggers": "the lease lock",
    # Found by this scenario: the decision given back after the crash is retried by a redelivery that
    # newer results of the same checks have overtaken; it is then dropped as stale and never taken.
    "evaluator-crash": "re-judging the site on every result, not only on a check's change",
}
# scenario -> why its alerts cannot match on this branch (no edge-triggered DOWN, ISOLATED, FLAPPING alerts yet)
ALERTS_XFAIL = {
    "hard-outage": "the DOWN alert",
    "flapping-check": "the FLAPPING alert",
    "vantage-isolated": "the ISOLATED alert",
    "standby-down": "DOWN alerts",
    "automation-off": "the automation switch and the DOWN alert",
    "maintenance-window": "maintenance windows",
    "duplicate-reordered-events": "the DOWN alert",
    "two-manual-triggers": "the lease lock",
    "evaluator-crash": "the DOWN alert",
}


# Without per-vantage state, results of both vantage points interleave on one count per check, so whether
# the isolated vantage point's failures add up to a DOWN depends on delivery order: it fails only sometimes.
INTERMITTENT = frozenset({"vantage-isolated"})


def _marked(table_: dict[str, str], intermittent: frozenset[str] = frozenset()) -> list:
    def mark(name: str) -> pytest.MarkDecorator:
        return pytest.mark.xfail(strict=name not in intermittent, reason=f"{NEEDS_RULES}: {table_[name]}")

    return [pytest.param(n, marks=mark(n)) if n in table_ else n for n in NAMES]


def free_port() -> int:
    """A port free on every loopback address the demo config serves on."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        try:
            for host in ("127.0.10.1", "127.0.20.1"):
                with socket.socket() as sock:
                    sock.bind((host, port))
            return int(port)
        except OSError:
            continue
    raise RuntimeError("no free port on the demo's loopback addresses")


@pytest.fixture(scope="module")
def matrix(tmp_path_factory) -> dict[str, dict]:
    """The demo config on ports of its own, so a demo running elsewhere on this machine cannot collide."""
    tmp = tmp_path_factory.mktemp("matrix")
    text = DEMO_CONFIG.read_text()
    ports: dict[str, str] = {}
    for fixed in sorted(set(re.findall(r":(1[89]\d\d\d)\b", text))):
        while (port := str(free_port())) in ports.values():
            pass
        ports[fixed] = port
    config = tmp / "config.yaml"
    config.write_text(re.sub(r":(1[89]\d\d\d)\b", lambda m: ":" + ports[m.group(1)], text))
    reports = run_matrix(load_matrix(), out=lambda line: None, log_path=tmp / "scenarios.log", config=config)
    print("\n".join(table(reports)))
    return {r["verdict"]["scenario"]: r for r in reports}


def test_every_scenario_file_was_played(matrix):
    assert sorted(matrix) == sorted(NAMES)
    assert len(NAMES) >= 12


@pytest.mark.parametrize("name", _marked(DECISION_XFAIL, INTERMITTENT))
def test_the_scenario_moves_production_exactly_as_its_file_expects(matrix, name):
    verdict = matrix[name]["verdict"]
    assert verdict["decision_passed"], verdict["problems"]
    assert verdict["false_failovers"] == 0 and verdict["missed_failovers"] == 0


@pytest.mark.parametrize("name", _marked(ALERTS_XFAIL))
def test_the_scenario_sends_exactly_the_alerts_its_file_expects(matrix, name):
    verdict = matrix[name]["verdict"]
    assert verdict["alerts_passed"], verdict["problems"]


@pytest.mark.xfail(strict=True, reason=f"{NEEDS_RULES}: the lease lock (two manual triggers both switch DNS)")
def test_the_matrix_has_no_false_and_no_missed_failover(matrix):
    assert sum(r["verdict"]["false_failovers"] for r in matrix.values()) == 0
    assert sum(r["verdict"]["missed_failovers"] for r in matrix.values()) == 0


@pytest.mark.xfail(
    strict=False,
    reason=f"{NEEDS_RULES}: per-vantage thresholds; here both vantage points' results add up on one count "
    "per check, so detection sometimes beats the floor",
)
def test_the_hard_outage_is_detected_no_sooner_than_its_physical_floor_allows(matrix):
    report = matrix["hard-outage"]
    verdict, scenario = report["verdict"], report["scenario"]
    interval = scenario["probe_interval_s"]
    assert verdict["detection_floor_s"] == interval * scenario["failures_to_down"]
    # The fault may land just before a round: one interval less than the floor is the earliest possible.
    assert verdict["detection_floor_s"] - interval <= verdict["detection_s"]


def test_faults_reach_the_probers_as_network_behaviour_not_as_edited_results(matrix):
    rounds = [e["text"] for e in matrix["one-vantage-latency"]["events"] if e["kind"] == "probe_round"]
    after = rounds[-1]
    assert "aws-vpc: dc-a/" in after and "aws-public: dc-a/" not in after, after
    assert "timeout" in after
