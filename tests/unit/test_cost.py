"""The cost model (docs/cost.md): the bill of two small configs, computed here by hand from the documented
formula, the per-result design beside it, Route 53's price for the same checks, and the workflow's
transitions walked through its ASL."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from dcwatch import cost
from dcwatch.cli import main
from dcwatch.config import parse_config
from dcwatch.wiring import FAILOVER_ASL

MONTH_S = 730 * 3600
PROBE_GB, EVALUATE_GB = 0.5, 0.25  # dcwatch.wiring: Probe 512 MB, Evaluate 256 MB


SITES = (("dc-a", "192.0.2.1"), ("dc-b", "192.0.2.2"))


def two_sites(name: str, vcenter_reach: str, checks: Callable[[str], list[dict]], **settings: Any) -> dict:
    """Sites dc-a and dc-b, each vCenter checked for login and datastores only (two parts), one service `shop`
    whose checks at a site (by its address) `checks` gives."""
    vcenter = {"reach": vcenter_reach, "probe": {"hosts": False, "alarms": False}}
    return {
        "name": name,
        "active_site": "dc-a",
        "sites": [
            {"name": s, "vcenter": {"url": f"https://vc.{s}.test/sdk", "credentials_secret": f"c/{s}", **vcenter}}
            for s, _ in SITES
        ],
        "services": [
            {
                "name": "shop",
                "dns": {"zone": "example.test.", "name": "shop.example.test."},
                "sites": {s: {"dns_values": [ip], "checks": checks(ip)} for s, ip in SITES},
            }
        ],
        **settings,
    }


def flat_config() -> dict:
    """One vantage point (no network), every minute: per site 2 vCenter parts and 1 HTTPS check with a body match."""
    return two_sites(
        "flat",
        "public",
        lambda ip: [{"name": "shop-up", "url": f"https://{ip}/", "body_contains": "OK"}],
        thresholds={"quorum": 1, "allow_single_vantage": True},
        probe={"interval_s": 60},
    )


def wide_config() -> dict:
    """Two vantage points (public and VPC) every 10 s: per site 250 public HTTP checks, 2 private vCenter parts."""
    network = {
        "vpc_id": "vpc-0a1b2c3d4e5f60718",
        "subnet_ids": ["subnet-0a1b2c3d4e5f60718"],
        "security_group_ids": ["sg-0a1b2c3d4e5f60718"],
    }
    return two_sites(
        "wide",
        "private",
        lambda ip: [{"name": f"c{i}", "url": f"http://{ip}/{i}"} for i in range(250)],
        probe={"interval_s": 10},
        network=network,
    )


def workload(doc: dict) -> cost.Workload:
    return cost.workload_from_config(parse_config(doc), "test")


def priced(doc: dict) -> tuple[cost.Workload, cost.RoundCounts, cost.CostTable]:
    """The config's workload, its assumed round counts and its monthly bill."""
    w = workload(doc)
    counts = cost.round_counts(w)
    return w, counts, cost.monthly_cost(w, counts)


def line(table: cost.CostTable, service: str, starts: str) -> cost.Line:
    [found] = [item for item in table.lines if item.service == service and item.item.startswith(starts)]
    return found


def test_a_flat_config_checked_every_minute_costs_what_the_formula_says():
    # Given one vantage point running 3 checks per site (2 vCenter parts, 1 service check), one round a minute
    rounds = MONTH_S / 60
    # When the model prices it
    _, counts, bill = priced(flat_config())
    # Then per round: one event per site (3 results, 600 + 3 x 300 bytes: one 64 KB chunk), one evaluator call,
    # which reads each site's generation (one item, one 4 KB unit read consistently) and writes each site's
    # round mark and generation
    assert (counts.putevents_entries, counts.event_chunks, counts.evaluator_invocations) == (2, 2, 1)
    assert (counts.dynamodb_reads, counts.dynamodb_read_units, counts.dynamodb_write_units) == (2, 2.0, 4)
    assert counts.evaluator_ms == pytest.approx(150 + 0.2 * 6)
    # and a month of it
    assert line(bill, "DynamoDB", "reads").quantity == pytest.approx(2.0 * rounds)
    assert line(bill, "DynamoDB", "reads").usd == pytest.approx(2.0 * rounds * 0.125 / 1e6)
    assert line(bill, "DynamoDB", "writes").usd == pytest.approx(4 * rounds * 0.625 / 1e6)
    assert line(bill, "EventBridge", "custom events").usd == pytest.approx(2 * rounds * 1.00 / 1e6)
    assert line(bill, "SQS FIFO", "receives").quantity == pytest.approx(2 * rounds + 5 * MONTH_S / 20)
    assert line(bill, "Lambda", "evaluator duration").quantity == pytest.approx(0.1512 * rounds * EVALUATE_GB)
    # and the probe, one round per call, bills only that round (1 s + 2 ms per check)
    assert line(bill, "Lambda", "probe duration").quantity == pytest.approx(rounds * (1.0 + 0.002 * 6) * PROBE_GB)
    # and CloudWatch: 2 metrics per site and vantage point, 2 per check (6 endpoints), 1 per vantage point;
    # alarms: the watchdog, the probe's errors and lost results, and 6 for the evaluator and the workflow (its
    # failed notifications among them: their metric is emitted only when one fails, so it is not billed here)
    assert line(bill, "CloudWatch", "custom metrics").quantity == 2 * 2 + 2 * 6 + 1
    assert line(bill, "CloudWatch", "alarms").quantity == 1 + 2 + 6 + 2  # and the dead letters of both rules
    # and no VPC: no NAT gateway
    assert not [item for item in bill.lines if item.service == "VPC"]


def test_a_wide_config_checked_every_10_s_from_two_vantage_points_costs_what_the_formula_says():
    # Given aws-public running 250 checks per site and aws-vpc the same plus 2 vCenter parts, every 10 s
    rounds = MONTH_S / 10
    _, counts, bill = priced(wide_config())
    # Then each vantage point sends 1 event per site (250 or 252 results, at most 500 an event: 600 + 250 x 300
    # bytes = 75,600, two 64 KB chunks)
    assert (counts.putevents_entries, counts.event_chunks, counts.evaluator_invocations) == (4, 8, 2)
    # and a warm evaluator reads each site's generation, not its 502 states (125,500 bytes, 31 units of 4 KB)
    assert counts.dynamodb_reads == 4
    assert counts.dynamodb_read_units == pytest.approx(4 * 1.0)
    assert line(bill, "DynamoDB", "reads").usd == pytest.approx(4 * rounds * 0.125 / 1e6)
    assert line(bill, "DynamoDB", "writes").usd == pytest.approx(8 * rounds * 0.625 / 1e6)
    assert counts.evaluator_ms == pytest.approx(2 * 150 + 0.2 * (500 + 504))
    # and a probe call sleeps between 6 rounds: 60 - 10/2 s on average, plus its own round
    mean_s = ((1 + 0.002 * 500) + (1 + 0.002 * 504)) / 2 + 55
    assert line(bill, "Lambda", "probe duration").quantity == pytest.approx(2 * MONTH_S / 60 * mean_s * PROBE_GB)
    # and the VPC's probe needs a NAT gateway, the whole month
    assert line(bill, "VPC", "NAT gateway").usd == pytest.approx(730 * 0.045)


def test_the_per_result_design_pays_one_event_one_invocation_and_one_write_per_result():
    w = workload(wide_config())
    old = cost.per_result_counts(w)
    assert (old.putevents_entries, old.evaluator_invocations, old.dynamodb_write_units) == (1004, 1004, 1004)
    bill = cost.monthly_cost(w, old)
    assert line(bill, "EventBridge", "custom events").usd == pytest.approx(1004 * MONTH_S / 10 / 1e6)
    assert not [item for item in bill.lines if item.service == "SQS FIFO"]


def test_the_round_design_keeps_evaluator_calls_and_reads_per_round_constant_as_checks_grow():
    small, large = (cost.round_counts(cost.synthetic_workload(n, 10, 3)) for n in (50, 1000))
    assert large.evaluator_invocations == small.evaluator_invocations == 3
    assert large.dynamodb_reads == small.dynamodb_reads == 6
    assert large.dynamodb_read_units == small.dynamodb_read_units == 6.0
    # events stay one per vantage point and site up to 500 results; the billed 64 KB chunks grow with the results
    assert (small.putevents_entries, large.putevents_entries) == (6, 6)
    assert (small.event_chunks, large.event_chunks) == (6, 18)


def test_route53_prices_each_public_check_with_its_features_and_names_what_it_cannot_check():
    # The flat config: 2 HTTPS checks with a body match (per-check latency metrics on), every 60 s (not fast);
    # its 4 vCenter parts need the vCenter API
    r53 = cost.route53_cost(workload(flat_config()))
    assert r53.total == pytest.approx(2 * 0.75 + 2 * 3 * 2.00)
    assert any("4 checks have no Route 53 equivalent" in note for note in r53.notes)
    # The wide config: 500 plain HTTP checks every 10 s: fast interval and latency on each; private vCenters cannot
    wide = cost.route53_cost(workload(wide_config()))
    assert wide.total == pytest.approx(500 * 0.75 + 500 * 2 * 2.00)


TINY_ASL = {
    "StartAt": "Start",
    "States": {
        "Start": {"Type": "Task", "Next": "Poll", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed"}]},
        "Poll": {"Type": "Task", "Next": "Done?"},
        "Done?": {"Type": "Choice", "Choices": [{"Next": "Poll"}], "Default": "End"},
        "End": {"Type": "Succeed"},
        "Failed": {"Type": "Fail"},
    },
}


def test_the_walk_counts_each_state_entered_loops_included_and_follows_catches():
    assert cost.walk(TINY_ASL, {"Done?": ["Poll", "Poll", "End"]}) == ["Start"] + ["Poll", "Done?"] * 3 + ["End"]
    assert cost.walk(TINY_ASL, {}, caught=["Start"]) == ["Start", "Failed"]


def test_a_path_that_no_longer_fits_the_asl_is_an_error_not_a_figure():
    with pytest.raises(cost.PathError, match="cannot go on to Start"):
        cost.walk(TINY_ASL, {"Done?": ["Start"]})
    with pytest.raises(cost.PathError, match="no pick left"):
        cost.walk(TINY_ASL, {"Done?": ["Poll"]})


def test_each_further_poll_of_a_group_costs_three_transitions_of_the_real_workflow():
    asl = json.loads(FAILOVER_ASL.read_text(encoding="utf-8"))

    def transitions(polls: int) -> int:
        spec = cost.typical_path("disaster", 2, polls, 1, approval=False, fence="lease")
        return len(cost.walk(asl, spec["choices"], spec["caught"]))

    assert transitions(3) - transitions(2) == 2 * 3  # WaitForGroup, CheckGroup, GroupDone for each of 2 groups


def test_measured_round_counts_replace_the_assumed_ones_and_say_where_they_come_from():
    assumed = cost.round_counts(workload(flat_config()))
    fields = {k: v for k, v in vars(assumed).items() if k not in ("basis", "queue")}
    measured = cost.RoundCounts.from_json(
        json.dumps(fields | {"dynamodb_writes": 5, "dynamodb_write_units": 5}), "bench.json"
    )
    assert measured.basis == "measured (bench.json)"
    bill = cost.monthly_cost(workload(flat_config()), measured)
    assert line(bill, "DynamoDB", "writes").quantity == pytest.approx(5 * MONTH_S / 60)


@pytest.mark.parametrize(
    "argv",
    [
        ["cost"],
        ["cost", "--checks", "50", "--interval", "10"],
        ["cost", "--checks", "1000", "--interval", "10", "--vantages", "3"],
    ],
)
def test_the_cost_table_prints_for_the_demo_config_and_for_50_and_1000_checks(argv, capsys):
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "list price" in out and "the per-result design" in out and "Route 53 health checks" in out
    assert "$0.125 per million read request units" in out


def test_cost_refuses_a_config_and_synthetic_checks_together(capsys):
    assert main(["cost", "--config", "x.yaml", "--checks", "10"]) == 2
    assert "not both" in capsys.readouterr().err
