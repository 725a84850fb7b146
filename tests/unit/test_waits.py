"""Waits inside a step end when what they wait for happens, never past their deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dcwatch.config import parse_config
from dcwatch.errors import GroupTimeout, PowerOnFailed
from dcwatch.recovery import steps
from dcwatch.recovery.steps.dns import DNS_POLL_S
from dcwatch.recovery.waits import Polled, wait_for
from tests.helpers import demo_config
from tests.unit.fakes import Clock, FakeDns, FakeInventory
from tests.unit.test_workflow import STANDBY_VMS, request

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    return Clock(T0)


def seconds_since_start(clock: Clock) -> float:
    return (clock() - T0).total_seconds()


class Counter:
    """A watch of a number that goes up by one each second; `changed` lets the fake clock run."""

    def __init__(self, clock: Clock):
        self.clock = clock

    def current(self) -> int:
        return int(seconds_since_start(self.clock))

    def changed(self, timeout_s: float) -> int:
        self.clock.advance(min(1.0, timeout_s))
        return self.current()


def test_a_wait_returns_at_once_when_what_it_waits_for_has_happened(clock):
    assert wait_for(Counter(clock), lambda n: n >= 0, T0 + timedelta(seconds=30), clock) == 0
    assert clock() == T0


def test_a_wait_ends_with_the_change_it_waits_for_not_at_its_deadline(clock):
    assert wait_for(Counter(clock), lambda n: n >= 3, T0 + timedelta(seconds=30), clock) == 3
    assert seconds_since_start(clock) == 3


def test_a_wait_ends_at_its_deadline_with_what_it_sees_then(clock):
    assert wait_for(Counter(clock), lambda n: n >= 100, T0 + timedelta(seconds=5), clock) == 5
    assert seconds_since_start(clock) == 5


def test_a_deadline_already_past_means_one_look_and_no_wait(clock):
    assert wait_for(Counter(clock), lambda n: n >= 3, T0 - timedelta(seconds=1), clock) == 0
    assert clock() == T0


def test_a_polled_watch_sleeps_its_interval_but_never_past_what_is_left(clock):
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    polled = Polled(lambda: seconds_since_start(clock), interval_s=2.0, sleep=sleep)
    assert wait_for(polled, lambda s: s >= 100, T0 + timedelta(seconds=5), clock) == 5
    assert slept == [2.0, 2.0, 1.0]


@pytest.fixture
def standby(clock):
    return FakeInventory({vm: "poweredOff" for vm in STANDBY_VMS}, clock=clock)


def started_group_1(standby, clock, timeout_s=600):
    state = steps.validate_request(request(), demo_config(), clock)
    return steps.start_group(state, standby, timeout_s=timeout_s, clock=clock)


def test_a_group_whose_guests_boot_within_the_steps_wait_is_up_when_the_last_one_reports_in_one_step(standby, clock):
    standby.boot_s = {"shop-db-b": 2.5, "transit-db-b": 4.0}
    state = started_group_1(standby, clock)

    state = steps.check_group(state, standby, clock, wait_until=T0 + timedelta(seconds=20))

    assert state.progress.group == 1 and state.progress.group_ready
    assert seconds_since_start(clock) == 4.0, "seen up as the second guest reported, not at a poll"
    assert state.progress.powered_on == ["shop-db-b", "transit-db-b"]


def test_past_the_steps_wait_the_group_is_left_pending_for_the_state_machines_loop(standby, clock):
    standby.boot_s = {"shop-db-b": 1.0, "transit-db-b": 45.0}
    state = started_group_1(standby, clock)

    state = steps.check_group(state, standby, clock, wait_until=T0 + timedelta(seconds=20))

    assert not state.progress.group_ready and state.progress.group == 0
    assert seconds_since_start(clock) == 20
    assert state.progress.ready == ["shop-db-b"], "the one still booting is the one still pending"
    state = steps.check_group(state, standby, clock, wait_until=clock() + timedelta(seconds=40))
    assert state.progress.group == 1 and seconds_since_start(clock) == 45, "the next step sees it as it happens"


def test_without_a_wait_the_step_looks_once_as_before(standby, clock):
    standby.boot_s = {"shop-db-b": 3.0, "transit-db-b": 3.0}
    state = steps.check_group(started_group_1(standby, clock), standby, clock)
    assert not state.progress.group_ready and clock() == T0 and standby.watches == []


def test_the_wait_never_outlasts_the_group_deadline_which_then_fails_the_group(standby, clock):
    standby.no_guest = {"transit-db-b"}
    state = started_group_1(standby, clock, timeout_s=10)

    state = steps.check_group(state, standby, clock, wait_until=T0 + timedelta(seconds=20))

    assert seconds_since_start(clock) == 10
    clock.advance(0.001)
    with pytest.raises(GroupTimeout, match=r"transit-db-b \(on, no VMware Tools heartbeat and no IP yet\)"):
        steps.check_group(state, standby, clock, wait_until=clock() + timedelta(seconds=20))


def test_a_failed_power_on_is_reported_at_once_not_after_the_wait(standby, clock):
    standby.fail = {"transit-db-b": "insufficient resources"}
    with pytest.raises(PowerOnFailed, match="transit-db-b: insufficient resources"):
        steps.check_group(started_group_1(standby, clock), standby, clock, wait_until=T0 + timedelta(seconds=20))
    assert clock() == T0


def test_hooks_still_due_in_the_group_shorten_the_wait_by_their_timeouts(clock):
    doc = demo_config().model_dump(mode="json", by_alias=True, exclude_none=True)
    standby_site = next(s for s in doc["sites"] if s["name"] == "dc-b")
    hook = {"name": "warm", "url": "http://127.0.0.1:1/h", "timeout_s": 5}
    standby_site["groups"] = [{"group": 1, "post_power_on": [hook]}]
    config = parse_config(doc)
    standby = FakeInventory({vm: "poweredOff" for vm in STANDBY_VMS}, clock=clock)
    standby.no_guest = {"transit-db-b"}
    state = steps.start_group(steps.validate_request(request(), config, clock), standby, 600, clock)

    steps.check_group(state, standby, clock, wait_until=T0 + timedelta(seconds=20))

    assert seconds_since_start(clock) == 15, "5 s kept for the group's post-power-on hook"


def test_dns_in_sync_within_the_steps_wait_is_seen_at_the_next_short_poll(clock):
    dns = FakeDns(pending_polls=3)
    state = steps.validate_request(request(), demo_config(), clock)
    state = steps.switch_dns(state, dns, 300, clock)

    state = steps.check_dns(state, dns, clock, wait_until=T0 + timedelta(seconds=20), sleep=clock.advance)

    assert state.progress.dns_in_sync
    assert seconds_since_start(clock) == 3 * DNS_POLL_S


def test_dns_not_in_sync_by_the_end_of_the_steps_wait_is_left_for_the_state_machines_loop(clock):
    dns = FakeDns(pending_polls=1000)
    state = steps.switch_dns(steps.validate_request(request(), demo_config(), clock), dns, 300, clock)

    state = steps.check_dns(state, dns, clock, wait_until=T0 + timedelta(seconds=20), sleep=clock.advance)

    assert not state.progress.dns_in_sync and seconds_since_start(clock) == 20
