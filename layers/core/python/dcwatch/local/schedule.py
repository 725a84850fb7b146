"""The schedules, locally: every vantage point's probe each interval, as EventBridge Scheduler fires them, and
each round's results on the timeline; the scheduled drill (`drill.schedule`)."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Self

from dcwatch.config.schedule import next_fire, parse_expression
from dcwatch.local.deployment import LocalDeployment
from dcwatch.local.pipeline import LocalPipeline
from dcwatch.local.timeline import Timeline

SHOWN_PER_REASON = 8  # failing checks a timeline line names per reason


def failing_by_reason(failed: list[str], shown: int = SHOWN_PER_REASON) -> str:
    """`a: why; b: why` as `a, b: why`: the parts of a vCenter that is down share one reason. At most `shown`
    checks per reason are named (a thousand refused checks are one line of the timeline, not a screenful)."""
    by_reason: dict[str, list[str]] = {}
    for entry in failed:
        check, _, reason = entry.partition(": ")
        by_reason.setdefault(reason, []).append(check)
    return "; ".join(f"{_first(checks, shown)}: {reason}" for reason, checks in by_reason.items())


def _first(names: list[str], shown: int) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


class Schedule:
    """A schedule's thread: `_run` fires until `stop` (bounded by each schedule's own count)."""

    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=30)


class ProbeSchedule(Schedule):
    """Stands in for EventBridge Scheduler locally: invokes the probe function every interval."""

    MAX_ROUNDS = 1000

    def __init__(self, pipeline: LocalPipeline, interval_s: float, timeline: Timeline, max_rounds: int = MAX_ROUNDS):
        """`max_rounds`: the bound of the loop (`dcwatch up` runs for hours; a scenario for a minute or two)."""
        super().__init__("probe-schedule")
        self.pipeline, self.interval_s, self.timeline = pipeline, interval_s, timeline
        self.max_rounds = max_rounds
        self.rounds = 0
        # Each round: when it ended, and per vantage point the (site, check) that failed.
        self.history: list[tuple[float, dict[str, set[tuple[str, str]]]]] = []
        self.durations_s: list[float] = []  # each round, from the schedule firing to every probe's return
        self._last = ""

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set() and self.rounds < self.max_rounds:
            self.rounds += 1
            parts, failing = [], []
            failed: dict[str, set[tuple[str, str]]] = {}
            fired = time.monotonic()
            answers = self.pipeline.probe(f"round-{self.rounds}")
            self.durations_s.append(time.monotonic() - fired)
            for vantage, (payload, error) in answers.items():
                if error:
                    self.timeline.add(
                        "probe_error", f"{vantage}: {payload.get('errorType')}: {payload.get('errorMessage')}"
                    )
                    continue
                for done in payload["rounds"]:
                    parts.append(f"{vantage} {done['checks'] - len(done['failed'])}/{done['checks']}")
                    for entry in done["failed"]:
                        check, _, reason = entry.partition(": ")
                        failing.append(f"{check}@{vantage}: {reason}")
                        site, _, name = check.partition("/")
                        failed.setdefault(vantage, set()).add((site, name))
            self.history.append((self.timeline.now(), failed))
            summary = ", ".join(parts) + " checks pass"
            if parts and summary != self._last:
                self.timeline.add(
                    "probe_round",
                    summary + (f"; failing: {failing_by_reason(failing)}" if failing else ""),
                    round=self.rounds,
                )
                self._last = summary
            next_at += self.interval_s
            self._stop.wait(max(0.0, next_at - time.monotonic()))


class DrillSchedule(Schedule):
    """Stands in for the drill's EventBridge Scheduler schedule locally: StartExecution of the workflow with the
    config's scheduled drill request, as Scheduler does (an execution name of its own, the request as input).
    Once started, at the times the config's expression says (`config.schedule.next_fire`, from the start), or
    every `period_s` when given (tests); or one firing at a time with `fire`."""

    MAX_FIRINGS = 100

    def __init__(self, deployment: LocalDeployment, period_s: float | None = None):
        schedule = deployment.config.drill.schedule if deployment.config.drill else None
        if schedule is None:
            raise ValueError("the config has no drill.schedule")
        super().__init__("drill-schedule")
        self.deployment, self.period_s, self.request = deployment, period_s, schedule.request()
        self.expression, self.time_zone = parse_expression(schedule.expression), schedule.time_zone
        self.started = datetime.now(UTC)
        self.fired: list[str] = []  # the executions started, in order

    def next_at(self, now: datetime) -> datetime | None:
        """When it fires next after `now` (None: never again)."""
        if self.period_s is not None:
            return now + timedelta(seconds=self.period_s)
        return next_fire(self.expression, self.time_zone, now, since=self.started)

    def fire(self) -> str:
        """One firing: the execution's ARN."""
        name = f"scheduled-drill-{uuid.uuid4().hex[:12]}"
        arn = self.deployment.start_failover(self.request, name=name)
        self.fired.append(arn)
        return arn

    def _run(self) -> None:
        while len(self.fired) < self.MAX_FIRINGS and (at := self.next_at(datetime.now(UTC))) is not None:
            if self._stop.wait(max(0.0, (at - datetime.now(UTC)).total_seconds())):
                return
            self.fire()
