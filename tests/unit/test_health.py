"""How probe results become check and site states, and when a failover may start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from dcwatch.config import Thresholds
from dcwatch.detection.health import advance, incident_id
from dcwatch.model import CheckState
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


def test_a_failing_streak_remembers_when_its_first_failure_started_and_when_it_was_known():
    state = run(True, False, False, False)
    # The first failure started at second 1 and took 2 ms: whatever failed it was there by then
    assert state.failing_since == T0 + timedelta(seconds=1)
    assert state.failure_known_at == T0 + timedelta(seconds=1, milliseconds=2)
    assert run(True, False, True).failure_known_at is None


def test_a_down_check_needs_consecutive_successes_to_come_back():
    assert run(True, False, False, False, True).status == "DOWN"
    assert run(True, False, False, False, True, True).status == "UP"


def test_a_duplicate_or_late_result_changes_nothing():
    state = advance(None, result(True, 5), THRESHOLDS)
    assert advance(state, result(False, 5), THRESHOLDS) is None
    assert advance(state, result(False, 4), THRESHOLDS) is None


def test_a_check_that_keeps_changing_between_up_and_down_is_flapping():
    thresholds = Thresholds(failures_to_down=1, successes_to_up=1, flap_changes=3, flap_window_s=60)
    state = None
    for second, ok in enumerate([True, False, True, False]):
        state = advance(state, result(ok, second), thresholds)
    assert state.changes and len(state.changes) == 3 and state.flapping


def test_flapping_ends_when_the_changes_leave_the_window():
    thresholds = Thresholds(failures_to_down=1, successes_to_up=1, flap_changes=3, flap_window_s=10)
    state = None
    for second, ok in enumerate([True, False, True, False]):
        state = advance(state, result(ok, second), thresholds)
    assert state.flapping
    state = advance(state, result(False, 12), thresholds)
    assert not state.flapping and state.status == "DOWN"


def test_a_first_verdict_and_a_steady_streak_are_no_changes():
    thresholds = Thresholds(failures_to_down=1, successes_to_up=1, flap_changes=2, flap_window_s=60)
    state = None
    for second in range(5):
        state = advance(state, result(False, second), thresholds)
    assert state.status == "DOWN" and state.changes == () and not state.flapping


def test_each_vantage_point_keeps_its_own_state_of_a_check():
    state = advance(None, probe_result("dc-a", "shop-home", "shop", True, T0, vantage="aws-vpc"), THRESHOLDS)
    assert state.vantage == "aws-vpc" and state.label == "shop-home@aws-vpc"


def test_the_incident_id_names_the_site_and_second_and_fits_an_execution_name():
    assert incident_id("dc-a", T0) == "dc-a-down-20261125T030000Z"


def test_the_incident_id_is_in_utc_whatever_the_offset_of_the_deciding_result():
    at = datetime(2026, 11, 25, 5, 0, tzinfo=timezone(timedelta(hours=2)))
    assert incident_id("dc-a", at) == "dc-a-down-20261125T030000Z"
