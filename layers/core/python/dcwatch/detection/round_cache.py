"""The check states as a round's evaluator sees them: each site's read once and kept in memory, written back
in batches, guarded by the site's generation."""

from __future__ import annotations

from functools import cached_property

from dcwatch.detection.health import refreshed
from dcwatch.errors import StaleState
from dcwatch.events import ProbeRound
from dcwatch.model import CheckState, RoundMark
from dcwatch.ports import CheckStore
from dcwatch.topology import Topology


class RoundCache:
    """The check store as the round evaluator sees it: each site's check states and round marks read once,
    kept in memory as the rounds judge them (the rest of the state, its decisions read from the store itself).

    It may outlive an invocation (a warm Lambda keeps it): each invocation (`begin`) first reads the site's
    generation, one item, and reads the site again only where it changed. Every write of the site's states or
    marks first claims a new generation, conditionally on the one read: a second writer (an older copy of
    the function still running, a test) makes that claim fail, and the batch is judged again from a fresh
    read. A batch that failed forgets everything (`forget`), as a cold start would.

    Only the checks the topology names now are kept: a check removed or renamed in the config, or one of a
    vantage point gone, would otherwise stand in the site's verdict with its last state for good (under
    `site_rule: all`, its last UP would keep the site from ever being DOWN). They are deleted from the store
    when a site is read (`pruned` names them, once).
    """

    def __init__(self, store: CheckStore, topology: Topology):
        self.store = store
        self.topology = topology
        self._pruned: list[str] = []
        self._checks: dict[str, dict[tuple[str, str], CheckState]] = {}
        self._marks: dict[str, dict[str, RoundMark]] = {}
        self._generations: dict[str, str | None] = {}
        self._current: set[str] = set()  # sites known current in this invocation
        self._claimed: set[str] = set()  # sites this invocation holds a new generation of

    def begin(self) -> RoundCache:
        """A new invocation: each site's copy is checked against its generation before it is used."""
        self._current.clear()
        self._claimed.clear()
        return self

    def forget(self) -> None:
        self._checks.clear()
        self._marks.clear()
        self._generations.clear()
        self.begin()

    def _site(self, site: str) -> dict[tuple[str, str], CheckState]:
        if site in self._current:
            return self._checks[site]
        generation = self.store.generation(site)
        if site not in self._checks or generation != self._generations.get(site):
            # The generation first: a write between the two reads leaves a copy older than it says, read again.
            checks, marks = self.store.site_snapshot(site)
            gone = [c for c in checks if not self._named(c)]
            if gone:
                self.store.delete_checks(gone)
                self._pruned += [f"{c.label} at {c.site}" for c in gone]
            self._checks[site] = {(c.check, c.vantage): c for c in checks if self._named(c)}
            self._marks[site] = marks
            self._generations[site] = generation
        self._current.add(site)
        return self._checks[site]

    def _named(self, state: CheckState) -> bool:
        """A check the topology has now, run from a vantage point it has now."""
        return state.vantage in self._vantages and self.topology.vantage(state.vantage).runs(state.site, state.check)

    @cached_property
    def _vantages(self) -> frozenset[str]:
        return frozenset(self.topology.vantage_names)

    def pruned(self) -> list[str]:
        """The check states deleted since the last call, as `check@vantage at site`."""
        out, self._pruned = self._pruned, []
        return out

    def _claim(self, site: str) -> None:
        """Before this invocation's first write of the site: a new generation, or StaleState when it moved."""
        self._site(site)
        if site in self._claimed:
            return
        claimed = self.store.claim_generation(site, self._generations.get(site))
        if claimed is None:
            self.forget()
            raise StaleState(f"{site}'s check states were written by another evaluator meanwhile: judged again")
        self._generations[site] = claimed
        self._claimed.add(site)

    def mark(self, site: str, vantage: str) -> RoundMark | None:
        self._site(site)
        return self._marks[site].get(vantage)

    def get_check(self, site: str, check: str, vantage: str) -> CheckState | None:
        state = self._site(site).get((check, vantage))
        return None if state is None else refreshed(state, self._marks[site].get(vantage))

    def keep(self, state: CheckState) -> None:
        self._site(state.site)[(state.check, state.vantage)] = state

    def put_checks(self, states: list[CheckState]) -> None:
        for site in sorted({s.site for s in states}):
            self._claim(site)
        self.store.put_checks(states)

    def mark_round(self, probe_round: ProbeRound) -> None:
        """Mark the chunk judged, in the store and here (a later round reads it from here)."""
        p = probe_round
        self._claim(p.site)
        self.store.mark_round(p.site, p.vantage, p.started_at, p.chunk, p.chunks)
        marks = self._marks[p.site]
        marks[p.vantage] = RoundMark.after(marks.get(p.vantage), p.vantage, p.started_at, p.chunk, p.chunks)

    def site_checks(self, site: str) -> list[CheckState]:
        checks, marks = self._site(site), self._marks[site]
        return [refreshed(c, marks.get(c.vantage)) for c in checks.values()]
