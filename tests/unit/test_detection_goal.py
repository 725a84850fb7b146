"""The demo's detection goal: 1.1 x the physical floor + one probe round, where the floor is the quorum's, or
the failed site's lease where AWS had to wait it out."""

from __future__ import annotations

from dcwatch.local.report import detection_goal
from dcwatch.local.schedule import failing_by_reason


def test_the_goal_is_the_quorum_floor_with_ten_percent_and_one_round() -> None:
    goal = detection_goal(4.0, [0.2, 0.1, 0.3], detected_s=4.5)

    assert goal == {
        "round_s": 0.2,
        "goal_floor_s": 4.0,
        "goal_floor": "quorum",
        "detection_goal_s": 4.6,
        "detection_goal_met": True,
    }


def test_a_detection_past_the_goal_is_missed_and_none_is_no_detection() -> None:
    assert detection_goal(4.0, [0.2], detected_s=4.61)["detection_goal_met"] is False
    assert detection_goal(4.0, [0.2], detected_s=None)["detection_goal_met"] is None
    assert detection_goal(4.0, [], detected_s=3.0) == {}


def test_a_lease_that_ends_after_the_quorum_floor_is_the_floor() -> None:
    """AWS may not call a site DOWN while its lease may still run: 7.1 s after the fault, past the 4 s quorum."""
    goal = detection_goal(4.0, [0.1], detected_s=7.2, lease_floor_s=7.1)

    assert (goal["goal_floor"], goal["goal_floor_s"], goal["detection_goal_s"]) == ("lease", 7.1, 7.91)
    assert goal["detection_goal_met"] is True


def test_a_lease_that_ended_before_the_quorum_floor_changes_nothing() -> None:
    assert detection_goal(4.0, [0.1], detected_s=4.0, lease_floor_s=2.5)["goal_floor"] == "quorum"


def test_a_timeline_line_names_a_few_failing_checks_per_reason() -> None:
    failed = [f"dc-a/c{i}: connection refused" for i in range(1000)] + ["dc-a/vcenter: unreachable"]

    line = failing_by_reason(failed, shown=3)

    assert line == "dc-a/c0, dc-a/c1, dc-a/c2 and 997 more: connection refused; dc-a/vcenter: unreachable"
