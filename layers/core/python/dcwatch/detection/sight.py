"""Both sites' check states as one decision reads them, and the vantage points whose view it leaves out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dcwatch.config import Config
from dcwatch.detection.decision import Reach, failing_everything, isolated_vantages
from dcwatch.model import CheckState


class SiteChecks(Protocol):
    """Where a decision reads a site's check states: the store (`ports.CheckStore`), or a round's cache."""

    def site_checks(self, site: str) -> list[CheckState]: ...


@dataclass(frozen=True)
class Sight:
    active: str
    standby: str
    checks: dict[str, list[CheckState]]  # by site
    isolated: frozenset[str]  # ISOLATED vantage points: their view counts for no site
    blind: frozenset[str]  # failing everything they run: no infrastructure verdict counts them

    @property
    def active_checks(self) -> list[CheckState]:
        return self.checks[self.active]

    @property
    def standby_checks(self) -> list[CheckState]:
        return self.checks[self.standby]


def look(checks: SiteChecks, config: Config, reach: Reach, active: str) -> Sight:
    standby = config.other_site(active)
    by_site = {site: checks.site_checks(site) for site in (active, standby)}
    both, vantages = by_site[active] + by_site[standby], config.vantage_points
    blind = failing_everything(both, active, standby, vantages, reach)
    isolated = isolated_vantages(both, active, standby, vantages, reach)
    return Sight(active, standby, by_site, isolated, blind)
