"""Small values shared across the rooms (detection, recovery, the ports and their adapters): a check's state,
a round's mark, the automation switch, the last failover, a stored status. Plain data and the small
readings of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

CheckStatus = Literal["UNKNOWN", "UP", "DOWN"]


@dataclass(frozen=True)
class CheckState:
    site: str
    check: str
    service: str | None
    critical: bool
    status: CheckStatus = "UNKNOWN"
    failures: int = 0
    successes: int = 0
    last_observed_at: datetime | None = None
    reason: str = ""
    failing_since: datetime | None = None  # the first failure of the current streak; None while passing
    vantage: str = ""
    changes: tuple[datetime, ...] = ()  # when it changed between UP and DOWN, within the flap window
    flapping: bool = False
    # when the streak's first failure was known (its start plus its latency): whatever it met was there by then
    failure_known_at: datetime | None = None

    @property
    def label(self) -> str:
        """How decision records name it: `shop-home@aws-vpc`."""
        return f"{self.check}@{self.vantage}"

    @property
    def is_infrastructure(self) -> bool:
        return self.service is None


@dataclass(frozen=True)
class RoundMark:
    """The latest probe round of one site judged from one vantage point: which of its chunks are in.

    The evaluator writes no state for a result that only repeats its check's state (`health.repeats`); the mark
    stands for those results.
    """

    vantage: str
    started_at: datetime  # the round's earliest observation
    chunks: int
    seen: frozenset[int]

    @property
    def whole(self) -> bool:
        return len(self.seen) >= self.chunks

    @classmethod
    def after(cls, mark: RoundMark | None, vantage: str, started_at: datetime, chunk: int, chunks: int) -> RoundMark:
        """The mark once that chunk is judged too: its round's chunks so far, or it alone for a newer round."""
        same_round = mark is not None and mark.started_at == started_at
        seen = mark.seen | {chunk} if mark is not None and same_round else frozenset({chunk})
        return cls(vantage, started_at, chunks, seen)

    def judged(self, started_at: datetime, chunk: int) -> bool:
        """Whether that chunk was judged already: a duplicate, or a chunk of an older round come late."""
        return started_at < self.started_at or (started_at == self.started_at and chunk in self.seen)


@dataclass(frozen=True)
class AutomationSwitch:
    """The global switch: off, the evaluator decides and announces but never starts a failover."""

    enabled: bool = True
    reason: str = ""
    changed_by: str = ""
    changed_at: datetime | None = None

    def describe(self) -> str:
        state = "on" if self.enabled else "off"
        if self.changed_at is None:
            return f"automation {state} (never switched)"
        return (
            f"automation {state} since {self.changed_at.isoformat()} by {self.changed_by or 'unknown'}: {self.reason}"
        )


@dataclass(frozen=True)
class LastFailover:
    incident: str
    at: datetime


@dataclass(frozen=True)
class StoredStatus:
    """The stored status of something judged: a site, a service at a site, a vantage point.

    `version` makes every change a conditional write: of two evaluators, one wins, the other re-reads.
    """

    status: str
    since: datetime | None = None  # when it entered this status
    incident_id: str | None = None
    blocked: str | None = None  # a DOWN active site whose failover is held back: why (re-judged every round)
    alerted: bool = False  # its change was announced, so its return is announced too
    version: int = 0
