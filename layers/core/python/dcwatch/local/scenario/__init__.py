"""Scenario files: a timeline of faults against the local runtime, and the outcome the decision rules owe.

A scenario (YAML, in `scenarios/`) names steps at +t seconds after its steady phase (kill a site, stop
a service, cut or degrade links of the deployed network, flip the automation switch, misdeliver events,
crash the evaluator, trigger failovers by hand) and what must follow: a failover or none, which sites
the evaluator declares DOWN, what the Fence step could do, and how many alerts of each kind. `judge`
compares that with what the run observed; `Player` applies the steps to a running `LocalPipeline`.
"""

from dcwatch.local.scenario.judge import ScenarioVerdict, Seen, alert_kind, judge
from dcwatch.local.scenario.player import Player
from dcwatch.local.scenario.spec import (
    SCENARIOS_DIR,
    ScenarioError,
    ScenarioSpec,
    check_against,
    config_path,
    load_scenario,
    scenario_files,
)

__all__ = [
    "SCENARIOS_DIR",
    "Seen",
    "Player",
    "ScenarioError",
    "ScenarioSpec",
    "ScenarioVerdict",
    "alert_kind",
    "check_against",
    "config_path",
    "judge",
    "load_scenario",
    "scenario_files",
]
