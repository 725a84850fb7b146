"""Both serving: time during which both sites answered customers at once, added up from samples (in memory)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dcwatch.local.overlap import Overlap, OverlapSampler, Sample, Target

BOTH = {"shop": frozenset({"dc-a", "dc-b"})}
ONE = {"shop": frozenset({"dc-a"})}
AT_A = {"shop": "dc-a"}


def sample(at: float, answering=ONE, production=AT_A) -> Sample:
    return Sample(at, answering, production)


def test_one_site_serving_is_never_counted():
    overlap = Overlap(period_s=0.2)
    for n in range(10):
        overlap.add(sample(n * 0.2))
    assert overlap.seconds == 0 and overlap.samples == 10 and overlap.first_at is None


def test_both_sites_answering_while_production_points_at_one_counts_the_time_since_the_sample_before():
    # Given one site serving, then both for three samples, then one again
    overlap = Overlap(period_s=0.2)
    for at, answering in [(0.0, ONE), (0.2, BOTH), (0.4, BOTH), (0.6, BOTH), (0.8, ONE)]:
        overlap.add(sample(at, answering))
    # Then three periods count, from the first sample that saw both
    assert overlap.seconds == pytest.approx(0.6)
    assert overlap.first_at == 0.2 and overlap.services == {"shop"}
    assert overlap.summary()["both_serving_s"] == 0.6


def test_the_first_sample_seeing_both_counts_one_period_and_a_stalled_sampler_counts_at_most_max_gap():
    overlap = Overlap(period_s=0.2, max_gap_s=1.0)
    overlap.add(sample(0.0, BOTH))
    overlap.add(sample(5.0, BOTH))  # the sampler stalled for 5 s: how long both served in between is unknown
    assert overlap.seconds == pytest.approx(1.2)
    assert overlap.largest_gap_s == 5.0 and overlap.late == 1


def test_the_standby_answering_at_all_counts_as_standby_answered_whatever_production_points_at():
    # Given the standby dark, then its shop endpoint answering for two samples (once alone), then dark again
    overlap = Overlap(period_s=0.2, standby="dc-b")
    at_b = {"shop": frozenset({"dc-b"})}
    for at, answering, production in [
        (0.0, ONE, AT_A),
        (0.2, BOTH, AT_A),
        (0.4, at_b, {"shop": None}),
        (0.6, ONE, AT_A),
    ]:
        overlap.add(sample(at, answering, production))
    # Then both samples count, the one where production pointed nowhere too
    assert overlap.standby_s == pytest.approx(0.4)
    assert overlap.summary()["standby_answered_s"] == 0.4 and overlap.summary()["standby_services"] == ["shop"]


def test_without_a_standby_named_nothing_counts_as_standby_answered():
    overlap = Overlap(period_s=0.2)
    overlap.add(sample(0, BOTH))
    assert overlap.standby_s == 0 and overlap.seconds == pytest.approx(0.2)


def test_both_answering_while_production_points_at_neither_site_is_not_a_split_brain_customers_meet():
    assert sample(0, BOTH, production={"shop": None}).both_serving() == []


def test_each_service_is_judged_on_its_own():
    answering = {"shop": frozenset({"dc-a"}), "radio": frozenset({"dc-a", "dc-b"})}
    production = {"shop": "dc-a", "radio": "dc-b"}
    assert sample(0, answering, production).both_serving() == ["radio"]


def clock(times: list[float]) -> Iterator[float]:
    yield from times


def test_the_sampler_calls_every_endpoint_and_groups_the_answers_by_service():
    # Given shop answering at both sites and radio only at dc-a (as the customers' path delivers them)
    up = {("10.0.0.1", 80), ("10.0.0.2", 80), ("10.0.0.3", 81)}
    targets = [
        Target("shop", "dc-a", ("10.0.0.1", 80)),
        Target("shop", "dc-b", ("10.0.0.2", 80)),
        Target("radio", "dc-a", ("10.0.0.3", 81), "/status"),
        Target("radio", "dc-b", ("10.0.0.4", 81), "/status"),
    ]
    calls: list[tuple[str, int, str]] = []

    def answer(host: str, port: int, path: str) -> bool:
        calls.append((host, port, path))
        return (host, port) in up

    sampler = OverlapSampler(
        targets, lambda: {"shop": "dc-a", "radio": "dc-a"}, standby="dc-b", answer=answer, clock=lambda: 7.0
    )
    try:
        # When it samples once
        taken = sampler.sample()
    finally:
        sampler.stop()
    # Then every endpoint was called on its own path, and shop counts as both serving
    assert sorted(calls) == sorted((*t.address, t.path) for t in targets)
    assert taken.at == 7.0
    assert taken.answering == {"shop": frozenset({"dc-a", "dc-b"}), "radio": frozenset({"dc-a"})}
    assert taken.both_serving() == ["shop"]
    assert taken.answering_at("dc-b") == ["shop"]
