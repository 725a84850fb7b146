"""Why a judged condition waits (`ports.Condition.blocked`): typed in the domain, stored and audited as its text."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


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
