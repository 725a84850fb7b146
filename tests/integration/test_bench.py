"""`make bench` cannot rot: its targets, both clients and its honesty checks work on a small scale.

Speed is not asserted here (that is the benchmark's job); counts of passes and failures are.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bench.compare import BLACKBOX, OURS, Round, Settings, Targets, problems, report, run, target_server

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SMALL = Settings(targets=20, concurrency=10, latency_ms=5, timeout_s=0.5, rounds=1)


def test_the_target_server_gives_each_target_its_own_port_and_makes_one_in_twenty_slow():
    with target_server(SMALL) as targets:
        ports = {url.split(":")[2].split("/")[0] for url in targets.urls}
        assert len(targets.urls) == 20 and len(ports) == 20
        assert targets.slow == {19}


def test_the_target_server_stops_when_the_bench_is_interrupted():
    with pytest.raises(KeyboardInterrupt), target_server(SMALL) as targets:
        port = int(targets.urls[0].split(":")[2].split("/")[0])
        raise KeyboardInterrupt
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_both_sides_pass_the_fast_targets_and_fail_the_slow_one_after_its_timeout():
    rounds = run(SMALL)

    assert [r.side for r in rounds] == [OURS, BLACKBOX]
    for one in rounds:
        assert len(one.latencies_ms) == 20
        assert one.failed == {19}
        assert one.latencies_ms[19] >= 475
        assert max(one.latencies_ms[:19]) < 475
    assert rounds[0].reasons == {"timeout after 0.5 s"}
    text = report(SMALL, rounds)
    assert "dcwatch" in text and "blackbox_exporter" in text and "[1] (= the slow targets, verified)" in text


def test_figures_are_refused_when_a_fast_target_fails_or_a_slow_one_fails_early():
    targets = Targets([f"http://127.0.0.1:{9000 + i}/t/{i}" for i in range(4)], {3})
    honest = Round(OURS, 1.0, 0.1, [5, 5, 5, 500], {3}, {"timeout after 0.5 s"})
    refused = Round(BLACKBOX, 1.0, 0.1, [5, 5, 5, 20], {1, 3})

    assert problems([honest], targets, 0.5) == []
    assert problems([honest, refused], targets, 0.5) == [
        "round 1 of blackbox_exporter: unexpected failures [1], slow targets that passed []",
        "round 1 of blackbox_exporter: slow targets [3] failed before the 0.5 s timeout",
    ]


def test_make_bench_prints_the_comparison():
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--targets", "20", "--rounds", "1", "--timeout", "0.5", "--latency-ms", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "ratio dcwatch / blackbox_exporter" in done.stdout
    assert done.stdout.count("(= the slow targets, verified)") == 2


def figure(text: str, label: str) -> float:
    (line,) = [line for line in text.splitlines() if line.strip().startswith(label)]
    return float(re.search(r"(-?[0-9]+\.[0-9]+) s", line).group(1))


def test_the_workflow_bench_runs_a_whole_failover_and_its_figures_add_up():
    done = subprocess.run(
        [sys.executable, "-m", "bench.workflow", "--vms", "6", "--groups", "2", "--boot-s", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = done.stdout
    assert "(SUCCEEDED, 6 of 6 VMs powered on at b)" in text
    labels = ("failover time", "simulated boot waits", "orchestration overhead")
    total, waits, overhead = (figure(text, label) for label in labels)
    assert waits == 0.0
    assert overhead == pytest.approx(total - waits, abs=0.011)
    per_vm_ms, per_group_s = re.search(r"\(([0-9]+) ms per VM, ([0-9.]+) s per group\)", text).groups()
    assert int(per_vm_ms) == pytest.approx(1000 * overhead / 6, abs=2)
    assert float(per_group_s) == pytest.approx(overhead / 2, abs=0.011)
    parts = ("seeing groups up", "in other Task states", "in other Wait states", "between states")
    assert sum(figure(text, part) for part in parts) == pytest.approx(overhead, abs=0.041)
    assert 0 <= figure(text, "of which starting") <= figure(text, "between states") + 0.011
    steps = {
        line.split()[0]: int(line.split()[2]) for line in text.splitlines() if re.match(r" {4}\w+ +\w+ +\d+ ", line)
    }
    assert steps["StartGroup"] == 2, "one StartGroup per priority group"
    assert steps["CheckGroup"] == 2 and "WaitForGroup" not in steps, "each group seen up within its CheckGroup"
    for step in ("Fence", "VerifyServices", "SwitchDns", "CheckDns", "Notify", "RecordAudit"):
        assert steps[step] == 1, f"{step} ran once in the failover"


def test_the_evaluation_bench_counts_what_a_round_costs_each_design_at_two_sizes(monkeypatch, capsys):
    # Given moto in-process (no endpoint), two small deployments of 3 vantage points
    from bench import evaluation
    from tests.helpers import moto_credentials

    moto_credentials(monkeypatch, region="us-east-1")

    # When the bench runs every phase at 10 and 40 checks
    figures = evaluation.main(["--sizes", "10", "40"])

    # Then it prints one row per phase, size and design, and the growth between sizes
    out = capsys.readouterr().out
    assert len(figures) == 3 * 2 * 3 and "growth between sizes" in out
    new = {(f.phase, f.checks): f for f in figures if f.design == "new"}
    old = {(f.phase, f.checks): f for f in figures if f.design == "old"}
    for (phase, checks), f in new.items():
        # the new design: one invocation per vantage point and round (the probe's entries: one per site)
        assert f.invocations == 3, (phase, checks)
        # the old design: one invocation and one probe entry per result
        assert old[(phase, checks)].invocations == f.results, (phase, checks)
        assert old[(phase, checks)].entries - old[(phase, checks)].results == f.entries - 3 * 2, "and the DOWN"
    # steady state: the same number of requests at both sizes, and nothing written but the round marks and the
    # sites' generations (one of each per vantage point and site)
    assert new[("steady", 10)].requests == new[("steady", 40)].requests
    assert new[("steady", 40)].written == 3 * 2 * 2 and new[("steady", 40)].entries == 3 * 2
    # the outage round: the old design reads every check state per changed result, the new one each site once
    assert old[("outage", 40)].read > 10 * new[("outage", 40)].read
    # warm: the same invocations; a steady round reads each site's generation, not its states, at any size
    warm = {(f.phase, f.checks): f for f in figures if f.design == "warm"}
    assert {f.invocations for f in warm.values()} == {3}
    assert warm[("steady", 10)].read == warm[("steady", 40)].read < new[("steady", 10)].read
    assert warm[("steady", 40)].requests == warm[("steady", 10)].requests
