"""How probe results become check and site states, and when a failover may start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from dcwatch.config import Thresholds
from dcwatch.health import CheckState, advance, failover_decision, incident_id, site_verdict
from tests.helpers import probe_result

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
THRESHOLDS = Thresholds(failures_to_down=3, successes_to_up=2)


def result(ok: bool, second: int, check: str = "shop-home", site: str = "dc-a", service: str | None = "shop"):
    return probe_result(site, check, service, ok, T0 + timedelta(seconds=second), reason="status 503")


def run(*outcomes: bool) -> CheckState | None:
    state = None
    for second, ok in enumerate(outcomes):
        state = advance(state, result(ok, second), THRESHOLDS) or state
    return state


def test_a_first_success_proves_the_check_up():
    assert run(True).status == "UP"


def test_a_single_lost_probe_never_takes_a_check_down():
    state = run(True, False)
    assert state.status == "UP" and state.failures == 1 and state.reason == "status 503"


def test_the_configured_number_of_consecutive_failures_takes_a_check_down():
    assert run(True, False, False).status == "UP"
    assert run(True, False, False, False).status == "DOWN"


def test_a_success_between_failures_resets_the_count():
    assert run(True, False, False, True, False, False).status == "UP"


def test_a_down_check_needs_consecutive_successes_to_come_back():
    assert run(True, False, False, False, True).status == "DOWN"
    assert run(True, False, False, False, True, True).status == "UP"


def test_a_duplicate_or_late_result_changes_nothing():
    state = advance(None, result(True, 5), THRESHOLDS)
    assert advance(state, result(False, 5), THRESHOLDS) is None
    assert advance(state, result(False, 4), THRESHOLDS) is None


def checks(site: str, **statuses: str) -> list[CheckState]:
    return [
        CheckState(site, name, None if name == "vcenter" else "svc", True, status) for name, status in statuses.items()
    ]


def test_the_active_site_is_down_only_when_every_critical_check_is_down():
    assert site_verdict("dc-a", "active", checks("dc-a", vcenter="DOWN", web="DOWN", radio="UP")).status == "UP"
    verdict = site_verdict("dc-a", "active", checks("dc-a", vcenter="DOWN", web="DOWN", radio="DOWN"))
    assert verdict.status == "DOWN" and len(verdict.failed) == 3


def test_warning_checks_do_not_decide_a_site():
    states = checks("dc-a", vcenter="DOWN", web="DOWN") + [CheckState("dc-a", "slow", "svc", False, "UP")]
    assert site_verdict("dc-a", "active", states).status == "DOWN"


def test_the_standby_is_judged_on_its_vcenter_because_its_services_are_meant_to_be_off():
    assert site_verdict("dc-b", "standby", checks("dc-b", vcenter="UP", web="DOWN")).status == "UP"
    assert site_verdict("dc-b", "standby", checks("dc-b", vcenter="DOWN", web="DOWN")).status == "DOWN"


def test_a_site_with_no_evidence_is_not_declared_down():
    assert site_verdict("dc-a", "active", []).status == "UP"


def test_a_failover_starts_for_a_down_active_site_with_a_proven_standby():
    down = site_verdict("dc-a", "active", checks("dc-a", vcenter="DOWN", web="DOWN"))
    decision = failover_decision(down, "UP", checks("dc-b", vcenter="UP"))
    assert decision.start and "vcenter passing" in decision.reason


def test_no_failover_to_a_standby_that_is_down_or_unproven():
    down = site_verdict("dc-a", "active", checks("dc-a", vcenter="DOWN"))
    assert not failover_decision(down, "DOWN", checks("dc-b", vcenter="DOWN")).start
    refused = failover_decision(down, "UP", checks("dc-b", vcenter="UNKNOWN"))
    assert not refused.start and "human" in refused.reason


def test_no_failover_for_a_standby_that_goes_down():
    down = site_verdict("dc-b", "standby", checks("dc-b", vcenter="DOWN"))
    assert not failover_decision(down, "UP", checks("dc-a", vcenter="UP")).start


def test_the_incident_id_names_the_site_and_second_and_fits_an_execution_name():
    assert incident_id("dc-a", T0) == "dc-a-down-20261125T030000Z"


def test_a_standby_vcenter_failing_right_now_is_not_proof_even_below_the_threshold():
    down = site_verdict("dc-a", "active", checks("dc-a", vcenter="DOWN"))
    failing = [CheckState("dc-b", "vcenter", None, True, "UP", failures=1)]
    assert not failover_decision(down, "UP", failing).start


def test_the_incident_id_is_in_utc_whatever_the_offset_of_the_deciding_result():
    at = datetime(2026, 11, 25, 5, 0, tzinfo=timezone(timedelta(hours=2)))
    assert incident_id("dc-a", at) == "dc-a-down-20261125T030000Z"
