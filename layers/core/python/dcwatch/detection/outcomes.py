"""What evaluating a result caused (`Evaluation`), and one result of a round with the check state it leads to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from dcwatch.detection.health import repeats
from dcwatch.events import ProbeResult, SiteStatusChanged
from dcwatch.model import CheckState

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Evaluation:
    """What one result caused, for the handler's log line."""

    check_status: str | None
    site_change: SiteStatusChanged | None = None
    execution: str | None = None
    detection_s: float | None = None  # a site gone DOWN: from its first failed observation to the decision
    ignored: str = ""  # why a result changed nothing although it was new

    @property
    def stale(self) -> bool:
        return self.check_status is None


@dataclass(frozen=True)
class Judged:
    """One result of a round and the check state it leads to."""

    result: ProbeResult
    previous: CheckState | None
    state: CheckState
    redelivered: bool = False  # already judged (exact redelivery): its decision may have been interrupted

    @property
    def changed(self) -> bool:
        """As `evaluate` calls it: a new check, or its status or flapping changed (or a redelivery)."""
        if self.redelivered or self.previous is None:
            return True
        return (self.previous.status, self.previous.flapping) != (self.state.status, self.state.flapping)

    @property
    def written(self) -> bool:
        """Everything but a result that only repeats its check's state, which the round mark records."""
        if self.redelivered:
            return False
        return self.previous is None or not repeats(self.previous, self.state)

    @property
    def part(self) -> str | None:
        return self.result.service


def one_per_part(judged: list[Judged]) -> list[Judged]:
    """The latest result of each part (a service, or the site's infrastructure) among `judged`."""
    latest: dict[str | None, Judged] = {}
    for j in judged:
        if j.part not in latest or j.result.observed_at >= latest[j.part].result.observed_at:
            latest[j.part] = j
    return list(latest.values())
