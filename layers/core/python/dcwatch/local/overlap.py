"""Both serving: the seconds during which both sites answered customers at once, measured, not assumed.

A sampler calls every service endpoint of both sites through the customers' path, at least every
`PERIOD_S`, and `Overlap` adds up the time during which some service answered at both sites while its
production record pointed at either (a split brain as customers would meet it). It must stay 0 in every
scenario. From the same samples, the time during which the standby's production endpoints answered at all
(`standby_answered_s`): a drill, which works on clones on an isolated network, must leave it 0.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

PERIOD_S = 0.2
ANSWER_TIMEOUT_S = 1.0
MAX_SAMPLES = 20_000  # an hour at PERIOD_S: longer than any run the runtime bounds


@dataclass(frozen=True)
class Sample:
    """One look at both sites, as customers would have seen them at `at` (seconds, monotonic)."""

    at: float
    answering: Mapping[str, frozenset[str]]  # service -> the sites whose endpoints answered
    production: Mapping[str, str | None]  # service -> the site its production record points at (None: neither)

    def both_serving(self) -> list[str]:
        """The services answering at two sites while production points at one of them."""
        return [
            service
            for service, sites in sorted(self.answering.items())
            if len(sites) >= 2 and self.production.get(service) is not None
        ]

    def answering_at(self, site: str) -> list[str]:
        """The services whose production endpoint at `site` answered."""
        return [service for service, sites in sorted(self.answering.items()) if site in sites]


@dataclass
class Overlap:
    """Adds up both-serving time: a sample that finds both serving counts the time since the sample before it
    (at most `max_gap_s`, so a stalled sampler cannot inflate it; the first sample counts one period). Likewise
    the time `standby`'s production endpoints answered, where a standby is named."""

    period_s: float = PERIOD_S
    standby: str | None = None
    standby_s: float = 0.0
    standby_services: set[str] = field(default_factory=set)
    max_gap_s: float = 1.0
    seconds: float = 0.0
    samples: int = 0
    largest_gap_s: float = 0.0
    late: int = 0  # samples that came more than half a period late (a busy machine)
    first_at: float | None = None  # when both were first seen serving
    services: set[str] = field(default_factory=set)
    _last_at: float | None = None

    def add(self, sample: Sample) -> None:
        gap = self.period_s if self._last_at is None else max(0.0, sample.at - self._last_at)
        if self._last_at is not None:
            self.largest_gap_s = max(self.largest_gap_s, gap)
            self.late += gap > self.period_s * 1.5
        self._last_at = sample.at
        self.samples += 1
        both = sample.both_serving()
        if both:
            self.seconds += min(gap, self.max_gap_s)
            self.first_at = sample.at if self.first_at is None else self.first_at
            self.services.update(both)
        lit = sample.answering_at(self.standby) if self.standby is not None else []
        if lit:
            self.standby_s += min(gap, self.max_gap_s)
            self.standby_services.update(lit)

    def summary(self) -> dict[str, object]:
        return {
            "both_serving_s": round(self.seconds, 2),
            "samples": self.samples,
            "largest_gap_s": round(self.largest_gap_s, 3),
            "late_samples": self.late,
            "services": sorted(self.services),
            "standby_answered_s": round(self.standby_s, 2),
            "standby_services": sorted(self.standby_services),
        }


def answers(host: str, port: int, path: str, timeout_s: float = ANSWER_TIMEOUT_S) -> bool:
    """The endpoint answers a GET with 200, on a new connection (a fault applies to new connections)."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        connection.request("GET", path or "/")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


@dataclass(frozen=True)
class Target:
    service: str
    site: str
    address: tuple[str, int]  # through the customers' path
    path: str = "/"


class OverlapSampler:
    """A thread sampling every `period_s` until stopped (or `MAX_SAMPLES`): each endpoint called at once."""

    def __init__(
        self,
        targets: list[Target],
        production: Callable[[], Mapping[str, str | None]],
        *,
        standby: str | None = None,
        period_s: float = PERIOD_S,
        answer: Callable[[str, int, str], bool] = answers,
        clock: Callable[[], float] = time.monotonic,
    ):
        """`production`: where each service's production record points now; `standby`: the site whose production
        endpoints are watched for answering at all."""
        self.targets, self.production, self.answer, self.clock = targets, production, answer, clock
        self.overlap = Overlap(period_s=period_s, standby=standby)
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max(1, len(targets)), thread_name_prefix="both-serving")
        self._thread = threading.Thread(target=self._run, name="both-serving", daemon=True)
        self._lock = threading.Lock()

    def start(self) -> OverlapSampler:
        self._thread.start()
        return self

    def sample(self) -> Sample:
        at = self.clock()
        production = self.production()
        answered = list(self._pool.map(lambda t: self.answer(t.address[0], t.address[1], t.path), self.targets))
        answering: dict[str, set[str]] = {}
        for target, ok in zip(self.targets, answered, strict=True):
            if ok:
                answering.setdefault(target.service, set()).add(target.site)
        return Sample(at, {s: frozenset(sites) for s, sites in answering.items()}, production)

    def _run(self) -> None:
        next_at = self.clock()
        while not self._stop.is_set() and self.overlap.samples < MAX_SAMPLES:
            sample = self.sample()
            with self._lock:
                self.overlap.add(sample)
            next_at += self.overlap.period_s
            self._stop.wait(max(0.0, next_at - self.clock()))
            next_at = max(next_at, self.clock() - self.overlap.period_s)  # a late sample does not cause a burst

    def stop(self) -> dict[str, object]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            return self.overlap.summary()
