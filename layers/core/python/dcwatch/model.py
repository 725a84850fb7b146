"""Small values shared across the rooms (detection, recovery, the ports and their adapters): a check's state,
a round's mark, the automation switch, the last failover, a stored status and why it waits (`HeldBack`). Plain
data and the small readings of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
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
    blocked: HeldBack | None = None  # a DOWN active site whose failover is held back: why (re-judged every round)
    alerted: bool = False  # its change was announced, so its return is announced too
    version: int = 0


# Why a judged condition waits (`StoredStatus.blocked`): typed in the domain, stored and audited as its text.


class Hold(Enum):
    PENDING = "pending"  # a part's DOWN waits for the site's other results observed since
    FLAPPING = "flapping"  # a service's DOWN left to its checks' one FLAPPING alert
    RECOVERING = "recovering"  # a service's DOWN while a recovery holds the failover lock: its own doing
    GATES = "gates"  # a DOWN active site's failover held back by the decision (automation, cooldown, ...)
    LOCK_HELD = "lock held"  # ... by another incident's failover lock
    PRODUCTION_MOVED = "production moved"  # ... as a recovery moved production away meanwhile
    PARTITIONED = "partitioned"  # the vantage points see the site DOWN, its agent reports it serving
    INTERRUPTED = "interrupted"  # a decision to go DOWN that failed half-way and was given back


_PENDING = "pending: waiting for the site's other results observed since"
_PARTITIONED = "partitioned: the vantage points see it DOWN, its agent reports it alive and serving"
_RECOVERING = "a recovery holds the failover lock: "
_LOCK_HELD = "the failover lock is held by "
_PRODUCTION_MOVED = "production moved"
_INTERRUPTED = "decision interrupted ("
# How a stored text names its kind: each text below is only ever written for its kind.
_EXACT = {_PENDING: Hold.PENDING, _PARTITIONED: Hold.PARTITIONED}
_PREFIXES = (
    ("flapping: ", Hold.FLAPPING),
    (_RECOVERING, Hold.RECOVERING),
    (_LOCK_HELD, Hold.LOCK_HELD),
    (_PRODUCTION_MOVED, Hold.PRODUCTION_MOVED),
    (_INTERRUPTED, Hold.INTERRUPTED),
)


@dataclass(frozen=True)
class HeldBack:
    """What holds a condition back, and the words the audit trail and the state table keep for it."""

    kind: Hold
    text: str

    def __str__(self) -> str:
        return self.text

    @classmethod
    def parse(cls, text: str) -> HeldBack:
        """The stored text read back (the state table keeps the text alone)."""
        if text in _EXACT:
            return cls(_EXACT[text], text)
        kind = next((k for prefix, k in _PREFIXES if text.startswith(prefix)), Hold.GATES)
        return cls(kind, text)

    @classmethod
    def pending(cls) -> HeldBack:
        return cls(Hold.PENDING, _PENDING)

    @classmethod
    def partitioned(cls) -> HeldBack:
        return cls(Hold.PARTITIONED, _PARTITIONED)

    @classmethod
    def flapping(cls, labels: tuple[str, ...]) -> HeldBack:
        return cls(Hold.FLAPPING, f"flapping: {', '.join(labels)}")

    @classmethod
    def recovering(cls, owner: str) -> HeldBack:
        return cls(Hold.RECOVERING, f"{_RECOVERING}{owner}")

    @classmethod
    def gates(cls, reason: str) -> HeldBack:
        return cls(Hold.GATES, reason)

    @classmethod
    def lock_held(cls, owner: str, until: str) -> HeldBack:
        return cls(Hold.LOCK_HELD, f"{_LOCK_HELD}{owner} until {until}")

    @classmethod
    def production_moved(cls, active: str) -> HeldBack:
        return cls(Hold.PRODUCTION_MOVED, f"{_PRODUCTION_MOVED} to {active} meanwhile")

    @classmethod
    def interrupted(cls, error: str) -> HeldBack:
        return cls(Hold.INTERRUPTED, f"{_INTERRUPTED}{error}); judged again on the next failing result")


def held(blocked: HeldBack | None, kind: Hold) -> bool:
    return blocked is not None and blocked.kind is kind


# The milestone a drill's RTO is measured to: its clones up and answering on the drill records. The drill step
# measures it, the notification, `status`, `history` and the report read it by this name.
DRILL_RECORDS_IN_SYNC = "drill records in sync"
