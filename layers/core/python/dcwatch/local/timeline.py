"""A run's output: its timeline of events (printed as they happen, kept for the report), whole lines to the
console, and the handlers' logs to a file of their own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from dcwatch.observability import logger


class Timeline:
    """Events in seconds since the start; printed as they happen, kept for the report."""

    def __init__(self, out: Callable[[str], None]):
        self.t0_wall = datetime.now(UTC)
        self.t0 = time.monotonic()
        self.events: list[dict[str, Any]] = []
        self._out = out
        self._lock = threading.Lock()

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 2)

    def at(self, when: datetime) -> float:
        return round((when - self.t0_wall).total_seconds(), 2)

    def add(self, kind: str, text: str, t: float | None = None, **details: Any) -> float:
        t = self.now() if t is None else t
        with self._lock:
            self.events.append({"t": t, "kind": kind, "text": text, **details})
        self._out(f"{t:7.2f} s  {kind:<20} {text}")
        return t

    def first(self, kind: str, **match: Any) -> float | None:
        with self._lock:
            times = [e["t"] for e in self.events if e["kind"] == kind and all(e.get(k) == v for k, v in match.items())]
        return min(times) if times else None


def console_writer(console: TextIO) -> Callable[[str], None]:
    """Whole lines to the console: the timeline is written from the dispatcher's and the prober's threads,
    and `print` writes a line and its newline apart, so two threads could share one line."""
    lock = threading.Lock()

    def write(line: str) -> None:
        with lock:
            console.write(line + "\n")
            console.flush()

    return write


@contextmanager
def handler_logs_to(stream: TextIO) -> Iterator[None]:
    handler = logger.registered_handler
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
