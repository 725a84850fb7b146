"""Waits inside one step: they end when what is waited for happens, not at the next poll.

A step waits at most until its deadline, which stays below its Lambda's timeout; a wait longer than
that spans invocations, in the state machine's Wait/Choice loop (bounded by the group and DNS deadlines).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from dcwatch.ports import Watch

T = TypeVar("T")
Clock = Callable[[], datetime]
Sleep = Callable[[float], None]
MAX_LOOKS = 10_000  # a watch that neither blocks nor lets time pass still ends


def wait_for(watch: Watch[T], done: Callable[[T], bool], deadline: datetime, clock: Clock) -> T:
    """What `watch` sees as soon as `done` holds, else what it sees at `deadline`."""
    seen = watch.current()
    for _ in range(MAX_LOOKS):
        if done(seen):
            break
        left = (deadline - clock()).total_seconds()
        if left <= 0:
            break
        seen = watch.changed(left)
    return seen


class Polled(Generic[T]):
    """The watch of something that tells no one it changed (Route 53's INSYNC, a service check, a vCenter
    without WaitForUpdatesEx): read again every `interval_s`."""

    def __init__(self, read: Callable[[], T], interval_s: float, sleep: Sleep = time.sleep):
        self.read, self.interval_s, self.sleep = read, interval_s, sleep

    def current(self) -> T:
        return self.read()

    def changed(self, timeout_s: float) -> T:
        self.sleep(max(0.0, min(self.interval_s, timeout_s)))
        return self.read()


def step_deadline(now: datetime, wait_s: float, remaining_s: float | None, reserve_s: float) -> datetime:
    """Until when a step may wait: `wait_s` from `now`, and never within `reserve_s` (its own work after
    the wait) of its Lambda's timeout, `remaining_s` away (None: not run by Lambda, no timeout)."""
    budget = wait_s if remaining_s is None else min(wait_s, remaining_s - reserve_s)
    return now + timedelta(seconds=max(0.0, budget))
