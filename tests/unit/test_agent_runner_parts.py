"""The agent's file survives a restart, and no call the agent waits on outlives its deadline."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from dcwatch.agent.calls import BoundedCall, DeadlineExceeded
from dcwatch.agent.report import FenceRecord
from dcwatch.agent.state import AgentFile, load, save

AT = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def record(fence_id: str) -> FenceRecord:
    return FenceRecord(fence_id=fence_id, fenced_at=AT, reason="cut off", vms_powered_off=["web-1"], audited=False)


def test_a_pending_fence_and_the_last_contacts_survive_a_restart(tmp_path):
    path = tmp_path / "state" / "north.json"
    assert load(path) == AgentFile()
    state = AgentFile(last_renewal=AT, last_peer_ok=AT, peer_sequence=42).fenced(record("north-fenced-1"))
    save(path, state)
    again = load(path)
    assert again == state and again.pending_audit[0].fence_id == "north-fenced-1"
    done = again.audited("north-fenced-1")
    assert done.pending_audit == () and done.last_fence is not None and done.last_fence.audited
    assert not list(path.parent.glob("*.tmp"))


def test_a_damaged_state_file_is_an_error_for_a_person_not_a_silent_fresh_start(tmp_path):
    path = tmp_path / "north.json"
    path.write_text("{half")
    with pytest.raises(ValueError, match="move it away"):
        load(path)


def test_a_call_that_hangs_is_given_up_at_its_deadline_and_never_run_twice_at_once():
    release = threading.Event()
    call: BoundedCall[str] = BoundedCall("renewal")
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        call(lambda: release.wait(5) and "late", 0.2)
    assert time.monotonic() - started < 1
    with pytest.raises(DeadlineExceeded, match="previous call"):
        call(lambda: "second", 0.2)
    release.set()
    time.sleep(0.05)
    assert call(lambda: "third", 1) == "third"


def test_a_failed_call_raises_its_own_error():
    call: BoundedCall[None] = BoundedCall("renewal")
    with pytest.raises(ConnectionError):
        call(lambda: (_ for _ in ()).throw(ConnectionError("refused")), 1)


def test_a_call_that_answers_after_its_deadline_is_handed_over_once_as_late():
    release = threading.Event()
    call: BoundedCall[str] = BoundedCall("renewal")
    with pytest.raises(DeadlineExceeded):
        call(lambda: release.wait(5) and "renewed", 0.1)
    assert call.late() is None, "still running: nothing to hand over yet"
    release.set()
    time.sleep(0.05)
    assert call.late() == "renewed"
    assert call.late() is None, "handed over once"


def test_a_call_awaited_in_time_or_failing_late_is_never_handed_over_as_late():
    call: BoundedCall[str] = BoundedCall("renewal")
    assert call(lambda: "renewed", 1) == "renewed"
    assert call.late() is None
    release = threading.Event()

    def refused() -> str:
        release.wait(5)
        raise ConnectionError("refused")

    with pytest.raises(DeadlineExceeded):
        call(refused, 0.1)
    release.set()
    time.sleep(0.05)
    assert call.late() is None
