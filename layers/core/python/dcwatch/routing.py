"""How Route 53 picks the record sets that answer for one name and type, without health checks.

Weighted: only the sets of non-zero weight answer (all of them when every weight is 0), one per
query, chosen in proportion to the weights. Failover: PRIMARY answers, as a failover record without a
health check is healthy; SECONDARY only when there is no PRIMARY. Simple: the one record set.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from dcwatch.ports import RecordValues


def answering(sets: Sequence[RecordValues]) -> list[RecordValues]:
    """The record sets a query may be answered from."""
    weighted = [s for s in sets if s.weight is not None]
    if weighted:
        return [s for s in weighted if s.weight] or weighted
    for role in ("PRIMARY", "SECONDARY"):
        if chosen := [s for s in sets if s.failover == role]:
            return chosen[:1]
    return list(sets[:1])


def answered_values(sets: Sequence[RecordValues]) -> list[str]:
    """Every value a client may be answered, in order, without repeats."""
    return list(dict.fromkeys(v for s in answering(sets) for v in s.values))


def pick(sets: Sequence[RecordValues], rng: random.Random | None = None) -> RecordValues | None:
    """The record set one query is answered from, as Route 53 would choose it; None when nothing answers."""
    candidates = answering(sets)
    if not candidates:
        return None
    weights = [s.weight or 0 for s in candidates]
    return (rng or random).choices(candidates, weights=weights if any(weights) else None)[0]
