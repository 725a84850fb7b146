"""The evaluator under at-least-once, unordered delivery, with quorum and the failover gates:
one incident, one failover, no more; and never a failover that the rules hold back.

Every test runs twice: fed result by result (`evaluate`, the per-result design the semantics were written
for) and fed as the probe publishes now, one ProbeRound per vantage point and site (`evaluate_round`). The
round evaluator must keep every one of these semantics.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from dcwatch.config import Config, ConfigError, MaintenanceWindow, parse_config
from dcwatch.detection.evaluator import evaluate, evaluate_round
from dcwatch.detection.outcomes import Evaluation
from dcwatch.detection.round_cache import RoundCache
from dcwatch.errors import TransientError
from dcwatch.events import ProbeResult, ProbeRound, probe_rounds
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.model import AutomationSwitch, LastFailover
from tests.helpers import demo_config, probe_result
from tests.unit.fakes import FakeLeases, FakeNotifier, FakePublisher, FakeStore, FakeWorkflows

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
_DEMO = demo_config()
# The arithmetic below is written for 1 s rounds and 3 failures to DOWN, whatever the demo uses, and without the
# site agents the demo runs (tests/unit/test_agent_watch.py adds them).
CONFIG = _DEMO.model_copy(
    update={
        "thresholds": _DEMO.thresholds.model_copy(update={"failures_to_down": 3}),
        "probe": _DEMO.probe.model_copy(update={"interval_s": 1}),
        "fencing": None,
    }
)
VANTAGES = CONFIG.vantage_points


@pytest.fixture(autouse=True, params=["per result", "per round", "per round, warm"])
def delivery(request):
    """Which evaluator the World feeds: every test of this module runs with each. Warm: one RoundCache serves
    every round, as a warm Lambda's does (a new invocation per round, checked against the sites' generation)."""
    World.rounds = request.param.startswith("per round")
    World.warm = request.param.endswith("warm")
    yield request.param
    World.rounds = World.warm = False


class World:
    rounds = False  # feed ProbeRounds to evaluate_round (else each ProbeResult to evaluate)
    warm = False  # one RoundCache across rounds

    def __init__(self, config: Config = CONFIG):
        self.config = config
        self.store, self.publisher, self.workflows = FakeStore(), FakePublisher(), FakeWorkflows()
        self.notifier, self.leases = FakeNotifier(), FakeLeases()
        self.round = 0
        self.late: list[ProbeResult | ProbeRound] = []
        self.cache = RoundCache(self.store, self.config.topology)

    @property
    def now(self) -> datetime:
        return T0 + timedelta(seconds=self.round)

    def feed(self, item: ProbeResult | ProbeRound) -> Evaluation:
        ports = (self.store, self.publisher, self.workflows, self.notifier, self.leases)
        if isinstance(item, ProbeResult) and not self.rounds:
            return evaluate(item, self.config, *ports, clock=lambda: self.now)
        if isinstance(item, ProbeResult):  # on its own: a round of one
            item = ProbeRound(
                vantage=item.vantage,
                site=item.site,
                round_id=item.round_id,
                started_at=item.observed_at,
                results=(item,),
            )
        cache = self.cache.begin() if self.warm else None
        outcome = evaluate_round(item, self.config, *ports, clock=lambda: self.now, cache=cache)
        if outcome.refused:
            return Evaluation(None, ignored=outcome.refused)
        if outcome.stale or outcome.ignored:
            return Evaluation(None, ignored="; ".join(outcome.ignored))
        return outcome.decision

    def publish(self, results: list[ProbeResult], hold=None) -> None:
        """As the probe publishes them; results `hold` picks are kept back until `deliver_late` (per round:
        they are their round's second chunk, delivered late)."""
        if not self.rounds:
            for result in results:
                if hold is not None and hold(result):
                    self.late.append(result)
                else:
                    self.feed(result)
            return
        for whole in probe_rounds(results):
            held = [r for r in whole.results if hold is not None and hold(r)]
            sent = [r for r in whole.results if r not in held]
            parts = [p for p in (sent, held) if p]
            for n, part in enumerate(parts):
                chunk = whole.model_copy(update={"chunk": n, "chunks": len(parts), "results": tuple(part)})
                if part is held:
                    self.late.append(chunk)
                else:
                    self.feed(chunk)

    def probe_round(
        self, failing: set[tuple[str, str]] = frozenset(), vantages=None, blind: set[str] = frozenset(), hold=None
    ) -> list[ProbeResult]:
        """Each vantage point runs, once, every check of both sites the topology says it reaches (the
        private vCenters only from aws-vpc); (site, check) pairs in `failing` fail, and from a vantage point
        in `blind` everything fails. Standby services are off. Results `hold` picks are kept back until
        `deliver_late`."""
        self.round += 1
        results = []
        for vantage in vantages or VANTAGES:
            runs = self.config.topology.vantage(vantage).runs
            for site in ("dc-a", "dc-b"):
                checks = [("vcenter", None)] + [
                    (c.name, s.name) for s, at in self.config.services_at(site) for c in at.checks
                ]
                for check, service in [(check, service) for check, service in checks if runs(site, check)]:
                    standby_service = site == "dc-b" and service is not None
                    ok = (site, check) not in failing and not standby_service and vantage not in blind
                    results.append(probe_result(site, check, service, ok, self.now, vantage=vantage))
        self.publish(results, hold)
        return results

    def deliver_late(self) -> None:
        while self.late:
            self.feed(self.late.pop(0))

    def subjects(self) -> list[str]:
        return [subject for subject, _ in self.notifier.sent]


ALL_OF_A = {("dc-a", "vcenter"), ("dc-a", "shop-home"), ("dc-a", "radio-stream"), ("dc-a", "transit-portal")}
THRESHOLD = CONFIG.thresholds.failures_to_down


def with_changes(**sections) -> Config:
    return CONFIG.model_copy(update=sections)


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
    assert changes["dc-a"].action.startswith("failover to dc-b not started: standby dc-b is not proven healthy")
    assert world.workflows.started == {}


def test_one_service_down_is_not_a_site_down():
    world = World()
    world.probe_round()
    for _ in range(5):
        world.probe_round({("dc-a", "shop-home")})
    assert world.publisher.site_changes == [] and world.workflows.started == {}
    assert {world.store.get_check("dc-a", "shop-home", v).status for v in VANTAGES} == {"DOWN"}


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
    """Lambda's asynchronous invocation: an evaluation that raised gets the same event again, at once
    (or, with `redeliver` off, only after newer results: too late to count, as if lost)."""

    redeliver = True
    redeliveries = 0

    def feed(self, item: ProbeResult | ProbeRound):
        try:
            return super().feed(item)
        except TransientError:
            self.redeliveries += 1
            return super().feed(item) if self.redeliver else None


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


def test_a_decision_interrupted_mid_way_is_taken_on_the_next_failing_result_even_if_its_own_is_lost():
    # Given the evaluator dies twice as it starts the failover, and those deliveries never come back in time
    world = RedeliveringWorld()
    world.redeliver = False
    world.workflows = ThrottledWorkflows(refusals=2)
    world.probe_round()

    # When the active site keeps failing every check
    for _ in range(CONFIG.thresholds.failures_to_down + 2):
        world.probe_round(ALL_OF_A)

    # Then a later failing result takes the decision: one DOWN, one failover
    assert world.redeliveries == 2
    assert len(world.workflows.started) == 1
    assert [(c.site, c.status) for c in world.publisher.site_changes] == [("dc-a", "DOWN")]


def fail_over(world: World) -> None:
    world.probe_round()
    for _ in range(THRESHOLD):
        world.probe_round(ALL_OF_A)


def test_one_vantage_point_seeing_the_active_site_fail_is_no_quorum_and_no_failover():
    world = World()
    world.probe_round()
    for _ in range(THRESHOLD + 3):
        world.probe_round(ALL_OF_A, vantages=["aws-public"])
        world.probe_round(vantages=["aws-vpc"])
    assert world.publisher.site_changes == [] and world.workflows.started == {}


def test_a_vantage_point_cut_off_from_everything_is_isolated_alerted_once_and_never_moves_production():
    world = World()
    world.probe_round()
    for _ in range(THRESHOLD + 3):
        world.probe_round(blind={"aws-vpc"})
    assert world.publisher.site_changes == [] and world.workflows.started == {}
    assert world.subjects() == ["[dcwatch] ISOLATED vantage point aws-vpc: its view is not counted"]
    for _ in range(2):
        world.probe_round()
    assert world.subjects()[1:] == ["[dcwatch] vantage point aws-vpc sees the sites again"]
    assert [r["status"] for r in world.store.audits["vantage-aws-vpc"]] == ["ISOLATED", "OK"]


def test_a_vantage_point_cut_off_is_isolated_even_when_its_rounds_are_judged_before_the_others():
    # aws-public's rounds come first: when its checks go DOWN (2 failures), aws-vpc's newest pass is a round
    # older than its first failure (a steady check is dated by its round's start), and nothing changes after.
    world = World(with_changes(thresholds=CONFIG.thresholds.model_copy(update={"failures_to_down": 2})))
    world.rounds = True  # about the round marks: fed per round under either parametrization
    world.probe_round()
    for _ in range(5):
        world.probe_round(blind={"aws-public"})
    assert world.publisher.site_changes == [] and world.workflows.started == {}
    assert world.subjects() == ["[dcwatch] ISOLATED vantage point aws-public: its view is not counted"]


def test_a_vantage_point_being_cut_off_never_turns_the_standby_down_on_its_half_judged_round():
    # aws-vpc alone reaches the standby's vCenter. Its round is judged result by result: when the standby's
    # vCenter goes DOWN first, its other checks have failed too but are not DOWN yet, so aws-vpc is not yet
    # ISOLATED. A vantage point failing everything it runs still says nothing about the standby alone.
    world = World()
    world.probe_round()
    standby_vcenter_first = lambda r: not (r.site == "dc-b" and r.check == "vcenter")  # noqa: E731
    for _ in range(THRESHOLD + 2):
        world.probe_round(blind={"aws-vpc"}, hold=standby_vcenter_first)
        world.deliver_late()
    assert world.publisher.site_changes == [] and world.workflows.started == {}
    assert world.subjects() == ["[dcwatch] ISOLATED vantage point aws-vpc: its view is not counted"]


def test_the_vpn_to_the_standby_down_turns_the_standby_down_from_the_only_vantage_point_that_reaches_it():
    world = World()
    world.probe_round()
    for _ in range(THRESHOLD):
        world.probe_round({("dc-b", "vcenter")})
    assert [(c.site, c.status) for c in world.publisher.site_changes] == [("dc-b", "DOWN")]
    assert world.workflows.started == {}


def test_alerts_are_edge_triggered_one_on_down_and_one_on_recovery_with_the_outage_duration():
    world = World()
    world.store.set_automation(AutomationSwitch(False, "drill", "bob", T0))
    fail_over(world)
    for _ in range(5):
        world.probe_round(ALL_OF_A)
    for _ in range(CONFIG.thresholds.successes_to_up + 2):
        world.probe_round()
    assert world.subjects() == [
        "[dcwatch] DOWN dc-a (active): no failover",
        "[dcwatch] RECOVERED dc-a (active) after 9 s",
    ], "services failing with their site's vCenter are the site's outage, announced once"


def test_every_site_change_writes_a_decision_record_that_explains_itself():
    world = World()
    fail_over(world)
    (change,) = world.publisher.site_changes
    (record,) = world.store.audits[change.incident_id]
    assert record["explanation"] == change.explanation
    assert change.explanation.startswith(
        "4 of 4 critical checks DOWN from 2 of 2 vantage points (quorum 2, rule all, 3 consecutive failures each)"
    )
    assert record["action"].startswith("failover to dc-b started: active site DOWN, standby dc-b UP")
    assert "vcenter: connection refused" in record["failedChecks"]


def test_with_automation_off_the_failover_waits_and_starts_on_the_first_round_after_it_is_switched_on():
    world = World()
    world.store.set_automation(AutomationSwitch(False, "storage migration", "alice", T0))
    fail_over(world)
    (change,) = world.publisher.site_changes
    assert "not started: automation off since" in change.action and "storage migration" in change.action
    assert world.workflows.started == {}
    world.probe_round(ALL_OF_A)
    assert world.workflows.started == {}, "held back every round while off"

    world.store.set_automation(AutomationSwitch(True, "migration done", "alice", world.now))
    world.probe_round(ALL_OF_A)
    assert list(world.workflows.started) == [change.incident_id]
    world.probe_round(ALL_OF_A)
    assert len(world.workflows.started) == 1 and len(world.publisher.site_changes) == 1
    actions = [r["action"] for r in world.store.audits[change.incident_id]]
    assert actions[-1].startswith("failover to dc-b started")


def test_a_maintenance_window_on_the_site_holds_the_failover_back():
    window = {"site": "dc-a", "start": T0, "end": T0 + timedelta(hours=1), "reason": "UPS test"}
    world = World(CONFIG.model_validate(CONFIG.model_dump() | {"maintenance": [window]}))
    fail_over(world)
    (change,) = world.publisher.site_changes
    assert change.status == "DOWN" and "maintenance window open: dc-a" in change.action and "UPS test" in change.action
    assert world.workflows.started == {}


def test_a_maintenance_window_opened_by_hand_holds_the_failover_back_like_one_in_the_config():
    world = World()
    window = MaintenanceWindow(site="dc-a", start=T0, end=T0 + timedelta(hours=1), reason="opened by alice")
    world.store.open_maintenance(window)
    fail_over(world)
    (change,) = world.publisher.site_changes
    assert "maintenance window open: dc-a" in change.action and "opened by alice" in change.action
    assert world.workflows.started == {}


def test_a_service_in_maintenance_does_not_count_but_the_rest_of_the_site_still_decides():
    window = {"site": "dc-a", "service": "shop", "start": T0, "end": T0 + timedelta(hours=1)}
    world = World(CONFIG.model_validate(CONFIG.model_dump() | {"maintenance": [window]}))
    world.probe_round()
    for _ in range(THRESHOLD + 1):
        world.probe_round({("dc-a", "shop-home")})
    assert world.publisher.site_changes == []
    for _ in range(THRESHOLD):
        world.probe_round(ALL_OF_A - {("dc-a", "shop-home")})
    (change,) = world.publisher.site_changes
    assert change.status == "DOWN" and "in maintenance, not counted: shop" in change.explanation
    assert len(world.workflows.started) == 1


def test_a_second_automatic_failover_within_the_cooldown_waits_for_a_human_acknowledgement():
    world = World()
    world.store.record_failover(LastFailover("dc-b-down-20261125T025500Z", T0))
    fail_over(world)
    (change,) = world.publisher.site_changes
    assert "cooldown: failover dc-b-down-20261125T025500Z was 4 s ago (cooldown 3600 s)" in change.action
    world.probe_round(ALL_OF_A)
    assert world.workflows.started == {}

    world.store.acknowledge(change.incident_id, "alice", "dc-a really is gone")
    world.probe_round(ALL_OF_A)
    assert list(world.workflows.started) == [change.incident_id]


def test_starting_an_automatic_failover_does_not_start_the_cooldown_moving_production_does():
    world = World()
    fail_over(world)
    assert len(world.workflows.started) == 1
    # The workflow's RecordAudit starts it, with the record of the move; a start that then fails moved nothing.
    assert world.store.last_failover() is None


def test_a_failover_needs_the_lock_and_waits_while_another_holds_it():
    world = World()
    world.leases.acquire("manual-dc-a-20261125T025900Z", 60, T0)
    fail_over(world)
    (change,) = world.publisher.site_changes
    assert "the failover lock is held by manual-dc-a-20261125T025900Z" in change.action
    assert world.workflows.started == {}
    world.leases.release("manual-dc-a-20261125T025900Z")
    world.probe_round(ALL_OF_A)
    assert list(world.workflows.started) == [change.incident_id]
    assert world.leases.holder().owner == change.incident_id, "the workflow inherits the incident's lease"


def test_a_site_a_recovery_is_moving_production_away_from_is_not_declared_down_while_it_holds_the_lock():
    # Given an operator's failover of dc-a that has fenced it and not yet recorded dc-b as active
    world = World()
    world.leases.acquire("manual-dc-a-1", 60, T0, leaving="dc-a")
    fail_over(world)
    assert world.publisher.site_changes == [] and world.workflows.started == {}
    assert not any("DOWN" in subject for subject in world.subjects()), "its own notification speaks for it"
    # When it has moved production and given the lock back, dc-a is the standby: judged by its vCenter
    world.store.set_active_site("dc-b", "manual-dc-a-1")
    world.leases.release("manual-dc-a-1")
    world.probe_round({("dc-a", "shop-home"), ("dc-a", "radio-stream"), ("dc-a", "transit-portal")})
    assert world.publisher.site_changes == [] and world.workflows.started == {}


def test_a_drill_holding_the_lock_does_not_hide_the_active_site_going_down():
    world = World()
    world.leases.acquire("drill-dc-b-1", 60, T0, leaving=None)
    fail_over(world)
    (change,) = world.publisher.site_changes
    assert change.status == "DOWN" and "the failover lock is held by drill-dc-b-1" in change.action


class MovedMeanwhile(FakeLeases):
    """The lock as it is just after another recovery moved production to dc-b and released it: taking it
    succeeds, but the active site the decision read is no longer the active one."""

    def __init__(self, store: FakeStore) -> None:
        super().__init__()
        self.store = store

    def acquire(self, owner, ttl_s, now, leaving=None):
        self.store.set_active_site("dc-b", "manual-dc-a-1")
        return super().acquire(owner, ttl_s, now, leaving)


def test_a_failover_decided_before_another_recovery_moved_production_is_neither_started_nor_announced():
    world = World()
    world.leases = MovedMeanwhile(world.store)
    fail_over(world)
    assert world.workflows.started == {} and world.leases.holder() is None, "the lock is given back"
    assert world.publisher.site_changes == [] and world.notifier.sent == [], "dc-a was failing as the active site"
    world.probe_round(ALL_OF_A)
    assert world.workflows.started == {} and world.publisher.site_changes == [], "dc-a is the standby now"


def test_a_flapping_check_is_alerted_once_and_holds_the_failover_back():
    config = CONFIG.model_copy(
        update={"thresholds": CONFIG.thresholds.model_copy(update={"flap_changes": 2, "flap_window_s": 600})}
    )
    world = World(config)
    world.probe_round()
    for _ in range(THRESHOLD):
        world.probe_round({("dc-a", "shop-home")})
    for _ in range(config.thresholds.successes_to_up):
        world.probe_round()
    flapping = [s for s in world.subjects() if "FLAPPING" in s]
    assert flapping == ["[dcwatch] FLAPPING shop-home at dc-a: no automatic action"], "once, not per vantage point"
    for _ in range(THRESHOLD):
        world.probe_round(ALL_OF_A)
    (change,) = world.publisher.site_changes
    assert "flapping checks need a human decision: shop-home@aws-public, shop-home@aws-vpc" in change.action
    assert world.workflows.started == {}


def test_one_service_down_is_alerted_once_without_action():
    world = World()
    world.probe_round()
    for _ in range(THRESHOLD + 3):
        world.probe_round({("dc-a", "shop-home")})
    assert world.subjects() == ["[dcwatch] SERVICE DOWN shop at dc-a: no automatic action"]
    for _ in range(CONFIG.thresholds.successes_to_up):
        world.probe_round()
    assert world.subjects()[1].startswith("[dcwatch] SERVICE RECOVERED shop at dc-a after")
    assert world.workflows.started == {}


def test_services_failing_before_their_vcenter_results_arrive_are_the_site_outage_not_service_alerts():
    # Given a hard outage whose vCenter results reach the evaluator only after the services went DOWN
    world = World()
    world.probe_round()
    for _ in range(THRESHOLD):
        world.probe_round(ALL_OF_A, hold=lambda r: r.site == "dc-a" and r.service is None)
    # (the services' DOWN is taken but pending: the vCenter has no result since then)
    assert world.subjects() == []
    world.deliver_late()
    for _ in range(2):
        world.probe_round(ALL_OF_A)
    # Then the site outage speaks alone: its DOWN, no SERVICE alert
    assert [s for s in world.subjects() if "SERVICE" in s] == []
    assert world.subjects()[0].startswith("[dcwatch] DOWN dc-a (active)")
    assert {r["status"] for r in world.store.records("service")} == {"DOWN"}, "each service's DOWN is recorded"


def test_results_from_a_vantage_point_the_config_does_not_name_change_nothing():
    world = World()
    result = probe_result("dc-a", "vcenter", None, False, T0, vantage="somewhere-else")
    outcome = world.feed(result)
    assert outcome.stale and "somewhere-else is not one of aws-public, aws-vpc" in outcome.ignored
    assert world.store.checks == {}


def single_vantage_config(**thresholds) -> Config:
    """The demo without `network` (and so without its drill, whose network only the VPC reaches), its vCenters
    public: aws-public is the only vantage point deployed."""
    doc = yaml.safe_load(DEMO_CONFIG.read_text())
    del doc["network"], doc["drill"]
    for site in doc["sites"]:
        site["vcenter"]["reach"] = "public"
    doc["thresholds"] |= {"failures_to_down": THRESHOLD} | thresholds
    doc["probe"]["interval_s"] = 1
    return parse_config(doc)


def test_a_single_vantage_point_never_fails_over_unless_the_operator_accepted_that():
    # The default quorum with one vantage point is refused when the config loads, naming a deciding check ...
    with pytest.raises(ConfigError) as refused:
        single_vantage_config()
    assert "services[0].sites.dc-a.checks[0]" in str(refused.value)
    # ... and a config that skipped validation still never fails over on one vantage point's view.
    accepted = single_vantage_config(quorum=1, allow_single_vantage=True)
    assert accepted.vantage_points == ["aws-public"]
    single = accepted.model_copy(update={"thresholds": CONFIG.thresholds})
    world = World(single)
    fail_over_from_one = lambda w: [w.probe_round(ALL_OF_A, vantages=["aws-public"]) for _ in range(THRESHOLD + 1)]  # noqa: E731
    fail_over_from_one(world)
    assert world.publisher.site_changes == [] and world.workflows.started == {}
    world = World(accepted)
    fail_over_from_one(world)
    assert len(world.workflows.started) == 1


def flap(world: World, cycles: int) -> None:
    """shop-home at dc-a goes DOWN and comes back `cycles` times, from every vantage point."""
    for _ in range(cycles):
        for _ in range(THRESHOLD):
            world.probe_round({("dc-a", "shop-home")})
        for _ in range(world.config.thresholds.successes_to_up):
            world.probe_round()


def kinds(world: World) -> list[str]:
    return [" ".join(s.split()[1:3]) for s in world.subjects()]


def flap_config(window_s: int = 600) -> Config:
    return with_changes(thresholds=CONFIG.thresholds.model_copy(update={"flap_changes": 4, "flap_window_s": window_s}))


def test_a_flapping_check_alerts_once_and_its_service_changes_are_recorded_but_not_alerted():
    world = World(flap_config())
    world.probe_round()
    flap(world, 4)  # eight changes: the fourth one makes the check FLAPPING
    # DOWN, RECOVERED, DOWN are news before anything flaps; from the fourth change on, FLAPPING speaks for it.
    assert kinds(world) == ["SERVICE DOWN", "SERVICE RECOVERED", "SERVICE DOWN", "FLAPPING shop-home"]
    decisions = world.store.records("service")
    assert [r["status"] for r in decisions] == ["DOWN", "UP"] * 4, "every change is still decided and recorded"
    assert [r["alerted"] for r in decisions] == [True, True, True] + [False] * 5
    assert decisions[3]["heldBack"] == "flapping: shop-home@aws-public", "the first vantage point to see it flap"
    assert all(r["heldBack"] == "flapping: shop-home@aws-public, shop-home@aws-vpc" for r in decisions[4:])
    assert world.workflows.started == {}


def test_a_service_held_down_while_it_flapped_has_its_recovery_alerted_once_the_check_settled():
    world = World(flap_config(window_s=20))
    world.probe_round()
    flap(world, 3)
    for _ in range(THRESHOLD):
        world.probe_round({("dc-a", "shop-home")})  # DOWN while flapping: recorded, not alerted
    assert kinds(world)[-1] == "FLAPPING shop-home"
    for _ in range(21):  # the changes leave the flap window while it keeps failing
        world.probe_round({("dc-a", "shop-home")})
    assert world.subjects()[-1] == "[dcwatch] SETTLED shop-home at dc-a: DOWN"
    for _ in range(CONFIG.thresholds.successes_to_up):
        world.probe_round()
    assert world.subjects()[-1].startswith("[dcwatch] SERVICE RECOVERED shop at dc-a after")
    assert kinds(world).count("FLAPPING shop-home") == 1


def test_the_active_vcenter_down_while_its_services_answer_is_one_warning_and_one_recovery_never_a_failover():
    world = World()
    world.probe_round()
    for _ in range(THRESHOLD + 3):
        world.probe_round({("dc-a", "vcenter")})
    assert world.subjects() == ["[dcwatch] VCENTER DOWN at dc-a (active): its services answer; no automatic action"]
    assert world.publisher.site_changes == [] and world.workflows.started == {}
    # Alerted once results of the services observed since the vCenter went DOWN show them answering: per
    # result, those come after the vCenter's (taken pending first); per round, with it (alerted at once).
    *pending, record = world.store.records("vcenter")
    if World.rounds:
        assert pending == []
    else:
        assert pending[0]["status"] == "DOWN" and not pending[0]["alerted"]
        assert pending[0]["heldBack"].startswith("pending")
    assert record["status"] == "DOWN" and record["alerted"]
    # The vCenter is private: aws-vpc alone reaches it, so its one view is the whole quorum.
    assert "1 of 1 critical checks DOWN from 1 of 1 vantage points (quorum 1" in str(record["explanation"])
    for _ in range(CONFIG.thresholds.successes_to_up):
        world.probe_round()
    # DOWN on the third failing round (round 4), UP on the second passing one (round 9).
    assert world.subjects()[1:] == ["[dcwatch] VCENTER RECOVERED at dc-a after 5 s"]


def test_a_vcenter_failing_along_with_every_service_is_announced_as_the_site_outage_alone():
    world = World()
    fail_over(world)
    subjects = world.subjects()
    assert not [s for s in subjects if "VCENTER" in s or "SERVICE" in s], subjects
    assert [r["alerted"] for r in world.store.records("vcenter")] == [False], "decided and recorded all the same"


def test_services_stopping_while_a_recovery_holds_the_lock_are_its_fencing_recorded_without_alerts():
    world = World()
    world.probe_round()
    world.leases.acquire("manual-dc-a-1", 600, world.now)  # a planned move: the workflow fences dc-a
    for _ in range(THRESHOLD):
        world.probe_round({("dc-a", "shop-home"), ("dc-a", "radio-stream"), ("dc-a", "transit-portal")})
    assert world.subjects() == []
    records = world.store.records("service")
    assert len(records) == 3 and not any(r["alerted"] for r in records)
    assert {r["heldBack"] for r in records} == {"a recovery holds the failover lock: manual-dc-a-1"}
    world.leases.release("manual-dc-a-1")
    world.probe_round()
    world.probe_round()  # back UP: its DOWN was never announced, so neither is its return
    assert world.subjects() == []
