"""The probe engine: every check yields one result, a hanging target costs only its own timeout."""

from __future__ import annotations

import asyncio
import time

from dcwatch.config import HttpCheck
from dcwatch.detection.checks import Outcome, PlannedCheck, round_times, run_round


def planned(name: str, timeout_s: float = 0.5, critical: bool = True) -> PlannedCheck:
    spec = HttpCheck(name=name, url=f"http://127.0.0.1/{name}", timeout_s=timeout_s)
    return PlannedCheck("dc-a", name, "shop", critical, timeout_s, spec)


def test_a_hanging_check_fails_with_timeout_and_costs_only_its_own_timeout():
    async def runner(check):
        await asyncio.sleep(30 if check.name == "hangs" else 0.01)
        return Outcome(True)

    started = time.perf_counter()
    results = run_round(
        [planned("hangs", 0.3), *[planned(f"ok{i}") for i in range(20)]], runner, vantage="v", round_id="r"
    )
    elapsed = time.perf_counter() - started
    by_name = {r.check: r for r in results}
    assert by_name["hangs"].ok is False and by_name["hangs"].reason == "timeout after 0.3 s"
    assert all(by_name[f"ok{i}"].ok for i in range(20))
    assert elapsed < 2, "the round waited for more than the one timeout"


def test_a_round_deadline_reports_unfinished_checks_as_timeouts():
    async def runner(check):
        await asyncio.sleep(5)
        return Outcome(True)

    results = run_round([planned("slow", timeout_s=10)], runner, vantage="v", round_id="r", deadline_s=0.2)
    assert [(r.ok, r.reason) for r in results] == [(False, "timeout: round deadline of 0.2 s passed")]


def test_concurrency_is_bounded():
    running, peak = 0, 0

    async def runner(check):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return Outcome(True)

    results = run_round([planned(f"c{i}") for i in range(50)], runner, vantage="v", round_id="r", concurrency=7)
    assert len(results) == 50 and peak == 7


def test_a_crashing_runner_is_a_failed_check_not_a_lost_one():
    async def runner(check):
        raise RuntimeError("boom")

    (result,) = run_round([planned("x")], runner, vantage="v", round_id="r")
    assert not result.ok and result.reason == "check error: RuntimeError: boom"


def test_a_warning_outcome_is_reported_as_non_critical():
    async def runner(check):
        return Outcome(False, "cert expires in 14 d", warning=True)

    (result,) = run_round([planned("cert")], runner, vantage="v", round_id="r")
    assert (result.ok, result.critical, result.reason) == (False, False, "cert expires in 14 d")


def test_results_carry_site_check_service_vantage_and_latency():
    async def runner(check):
        return Outcome(True)

    (result,) = run_round([planned("home")], runner, vantage="aws-public", round_id="round-7")
    assert (result.site, result.check, result.service, result.vantage, result.round_id) == (
        "dc-a",
        "home",
        "shop",
        "aws-public",
        "round-7",
    )
    assert result.latency_ms >= 0 and result.observed_at.tzinfo is not None


def test_sub_minute_intervals_run_several_aligned_rounds_per_scheduled_call():
    assert round_times(1000.0, 60, 10) == [1000.0, 1010.0, 1020.0, 1030.0, 1040.0, 1050.0]
    assert round_times(1003.5, 60, 10) == [1010.0, 1020.0, 1030.0, 1040.0, 1050.0, 1060.0]
    assert round_times(1003.5, 60, 60) == [1003.5]
    assert round_times(1003.5, 60, 120) == [1003.5]
