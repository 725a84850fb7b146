"""A warm evaluator keeps the sites' check states between invocations, and never judges on a stale copy."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dcwatch.detection.evaluator import evaluate_round
from dcwatch.detection.round_cache import RoundCache
from dcwatch.errors import StaleState, TransientError
from dcwatch.events import ProbeRound
from tests.helpers import demo_config, probe_result
from tests.unit.fakes import FakeLeases, FakeNotifier, FakePublisher, FakeStore, FakeWorkflows

T0 = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
CONFIG = demo_config().model_copy(update={"fencing": None})
CHECKS = [("shop-home", "shop"), ("radio-stream", "radio"), ("transit-portal", "transit")]


def round_of(n: int, ok: bool = True, site: str = "dc-a") -> ProbeRound:
    at = T0 + timedelta(seconds=2 * n)
    results = tuple(probe_result(site, check, service, ok, at) for check, service in CHECKS)
    return ProbeRound(vantage="aws-public", site=site, round_id=f"r{n}", started_at=at, results=results)


def judge(store: FakeStore, cache: RoundCache, probe_round: ProbeRound):
    ports = (FakePublisher(), FakeWorkflows(), FakeNotifier(), FakeLeases())
    return evaluate_round(probe_round, CONFIG, store, *ports, clock=lambda: probe_round.started_at, cache=cache)


def test_a_warm_evaluator_reads_a_site_once_then_only_its_generation():
    store = FakeStore()
    cache = RoundCache(store, CONFIG.topology)

    for n in range(1, 6):
        judge(store, cache.begin(), round_of(n))

    # Then each site's states were read once (dc-b's for the first round's decision, which spans both sites);
    # each invocation read one item of dc-a, its generation
    assert store.snapshots == 2
    assert store.generation_reads == 5 + 1


def test_a_site_another_writer_changed_between_invocations_is_read_again():
    store = FakeStore()
    cache = RoundCache(store, CONFIG.topology)
    judge(store, cache.begin(), round_of(1))
    read = store.snapshots
    # Given another evaluator (an older copy still running) wrote a state of dc-a, claiming its generation first
    other = RoundCache(store, CONFIG.topology).begin()
    other._claim("dc-a")
    written = replace(store.checks[("dc-a", "shop-home", "aws-public")], reason="written elsewhere")
    store.put_checks([written])

    cache.begin()

    # Then this one reads dc-a afresh before it judges, and sees that state
    assert cache.get_check("dc-a", "shop-home", "aws-public").reason == "written elsewhere"
    assert store.snapshots == read + 2  # the other's read of dc-a, and this one's again


def test_a_write_racing_another_writer_is_refused_and_judged_again_from_a_fresh_read():
    store = FakeStore()
    cache = RoundCache(store, CONFIG.topology)
    judge(store, cache.begin(), round_of(1))
    before = dict(store.checks)
    cache.begin()
    cache.mark("dc-a", "aws-public")  # this invocation has read dc-a (its generation matched)
    RoundCache(store, CONFIG.topology).begin()._claim("dc-a")  # and now another writer claims it

    with pytest.raises(StaleState) as raised:
        judge(store, cache, round_of(2, ok=False))

    # Then nothing of the round was written, the error is one a batch is retried for, and the copy is gone
    assert store.checks == before
    assert isinstance(raised.value, TransientError)
    judge(store, cache.begin(), round_of(2, ok=False))
    assert store.checks[("dc-a", "shop-home", "aws-public")].failures == 1


def test_a_check_the_topology_no_longer_names_is_deleted_and_stands_in_no_verdict():
    store = FakeStore()
    judge(store, RoundCache(store, CONFIG.topology).begin(), round_of(1))
    # Given the state of a check since removed from the config, and one of a vantage point since gone
    kept = store.checks[("dc-a", "shop-home", "aws-public")]
    store.put_checks([replace(kept, check="old-check"), replace(kept, vantage="aws-gone")])

    cache = RoundCache(store, CONFIG.topology).begin()

    # Then reading the site leaves them out and deletes them, and says so once
    assert {(c.check, c.vantage) for c in cache.site_checks("dc-a")} == {(c, "aws-public") for c, _ in CHECKS}
    assert ("dc-a", "old-check", "aws-public") not in store.checks
    assert ("dc-a", "shop-home", "aws-gone") not in store.checks
    assert sorted(cache.pruned()) == ["old-check@aws-public at dc-a", "shop-home@aws-gone at dc-a"]
    assert cache.pruned() == []
