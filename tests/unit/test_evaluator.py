"""The evaluator under at-least-once, unordered delivery: one incident, one failover, no more."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dcwatch.errors import TransientError
from dcwatch.evaluator import evaluate
from dcwatch.events import ProbeResult
from tests.helpers import demo_config, probe_result
from tests.unit.fakes import FakePublisher, FakeStore, FakeWorkflows

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
CONFIG = demo_config()


class World:
    def __init__(self):
        self.store, self.publisher, self.workflows = FakeStore(), FakePublisher(), FakeWorkflows()
        self.round = 0

    def feed(self, result: ProbeResult):
        return evaluate(result, CONFIG, self.store, self.publisher, self.workflows, clock=lambda: T0)

    def probe_round(self, failing: set[tuple[str, str]] = frozenset()) -> list[ProbeResult]:
        """Every check of both sites once; (site, check) pairs in `failing` fail. Standby services are off."""
        self.round += 1
        results = []
        for site in ("dc-a", "dc-b"):
            checks = [("vcenter", None)] + [(c.name, s.name) for s, at in CONFIG.services_at(site) for c in at.checks]
            for check, service in checks:
                standby_service = site == "dc-b" and service is not None
                ok = (site, check) not in failing and not standby_service
                results.append(probe_result(site, check, service, ok, T0 + timedelta(seconds=self.round)))
        for result in results:
            self.feed(result)
        return results


ALL_OF_A = {("dc-a", "vcenter"), ("dc-a", "shop-home"), ("dc-a", "radio-stream"), ("dc-a", "transit-portal")}


def test_steady_success_changes_no_site():
    world = World()
    for _ in range(5):
        world.probe_round()
    assert world.publisher.site_changes == [] and world.workflows.started == {}


def test_a_dead_active_site_is_declared_down_once_and_fails_over_once():
    world = World()
    world.probe_round()
    for _ in range(CONFIG.thresholds.failures_to_down - 1):
        world.probe_round(ALL_OF_A)
    assert world.publisher.site_changes == [], "not before the threshold"

    world.probe_round(ALL_OF_A)
    (change,) = world.publisher.site_changes
    assert (change.site, change.status, change.role) == ("dc-a", "DOWN", "active")
    assert change.action.startswith("failover to dc-b started")
    assert len(change.failed_checks) == 4 and change.threshold == 3
    assert list(world.workflows.started) == [change.incident_id]
    payload = world.workflows.started[change.incident_id]
    assert payload["from"] == "dc-a" and payload["to"] == "dc-b" and payload["trigger"] == "automatic"

    for _ in range(3):
        world.probe_round(ALL_OF_A)
    assert len(world.publisher.site_changes) == 1 and len(world.workflows.started) == 1


def test_duplicate_deliveries_change_nothing():
    world = World()
    world.probe_round()
    for _ in range(3):
        results = world.probe_round(ALL_OF_A)
    before = (list(world.publisher.site_changes), dict(world.workflows.started), dict(world.store.checks))
    for result in results:
        world.feed(result)
    late = results[0].model_copy(update={"observed_at": results[0].observed_at - timedelta(seconds=2), "ok": True})
    assert world.feed(late).stale
    assert (world.publisher.site_changes, world.workflows.started, world.store.checks) == before


def test_no_failover_when_the_standby_vcenter_is_down_and_the_event_says_why():
    world = World()
    world.probe_round()
    for _ in range(3):
        world.probe_round(ALL_OF_A | {("dc-b", "vcenter")})
    changes = {c.site: c for c in world.publisher.site_changes}
    assert changes["dc-a"].status == "DOWN"
    assert changes["dc-a"].action.startswith("no failover: standby is not proven healthy")
    assert world.workflows.started == {}


def test_one_service_down_is_not_a_site_down():
    world = World()
    world.probe_round()
    for _ in range(5):
        world.probe_round({("dc-a", "shop-home")})
    assert world.publisher.site_changes == [] and world.workflows.started == {}
    assert world.store.get_check("dc-a", "shop-home").status == "DOWN"


def test_after_a_failover_the_old_site_is_the_standby_and_its_return_is_reported_without_action():
    world = World()
    world.probe_round()
    for _ in range(3):
        world.probe_round(ALL_OF_A)
    world.store.set_active_site("dc-b", "inc")
    for _ in range(2):
        world.probe_round()
    up = world.publisher.site_changes[-1]
    assert (up.site, up.status, up.role) == ("dc-a", "UP", "standby")
    assert len(world.workflows.started) == 1


class ThrottledWorkflows(FakeWorkflows):
    """Step Functions refusing the first start, as StartExecution does under throttling."""

    def __init__(self, refusals: int = 1):
        super().__init__()
        self.refusals = refusals

    def start(self, name: str, payload: dict[str, object]) -> str:
        if self.refusals:
            self.refusals -= 1
            raise TransientError("states:StartExecution: ThrottlingException")
        return super().start(name, payload)


class RedeliveringWorld(World):
    """Lambda's asynchronous invocation: an evaluation that raised gets the same event again."""

    redeliveries = 0

    def feed(self, result: ProbeResult):
        try:
            return super().feed(result)
        except TransientError:
            self.redeliveries += 1
            return super().feed(result)


def test_a_failover_whose_start_was_throttled_is_started_when_the_result_is_delivered_again():
    # Given Step Functions throttles the first start of the failover workflow
    world = RedeliveringWorld()
    world.workflows = ThrottledWorkflows(refusals=1)
    world.probe_round()

    # When the active site fails every check long enough, and the deciding result is delivered twice
    for _ in range(CONFIG.thresholds.failures_to_down + 2):
        world.probe_round(ALL_OF_A)

    # Then the failover is started once, and announced once, all the same
    assert world.redeliveries == 1
    assert len(world.workflows.started) == 1
    assert [(c.site, c.status) for c in world.publisher.site_changes] == [("dc-a", "DOWN")]
