"""Hostile manual inputs, through the real handlers and the CLI against the tables as deployed (moto).

Anyone who may call states:StartExecution, invoke the control function or run the CLI can type anything:
a trigger that is not theirs, another incident's id, force, a site production is not at, someone else's name.
Each such request is refused before anything is touched, with the cause in words and in a structured log
line: no execution started, no lock taken or lost, nothing written. Where the input is allowed but must
not act alone (force), it waits for a human; where a name is typed (`by`), the caller AWS knows is recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dcwatch import runtime
from dcwatch.adapters.dynamodb import DynamoLeases, DynamoStateStore
from dcwatch.cli import main
from dcwatch.control import ControlInputError
from dcwatch.errors import InvalidRequest
from dcwatch.local.cloud import create_tables
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.local.lambdas import LambdaContext, load_handler
from dcwatch.wiring import function
from tests.helpers import moto_credentials

pytestmark = pytest.mark.integration

EVALUATOR_INCIDENT = "dc-a-down-20261207T100000Z"  # as `dcwatch.detection.health.incident_id` names it


@dataclass
class Deployed:
    tables: dict[str, str]
    store: DynamoStateStore
    leases: DynamoLeases
    state_machine_arn: str
    validate: Callable[[Any, str], dict[str, Any]]  # the ValidateRequest step, as the state machine calls it
    control: Callable[[Any], dict[str, Any]]  # the control function, as the console's Test tab invokes it

    def snapshot(self) -> dict[str, Any]:
        """Every item of every table and every execution: what a refused request must leave as it was."""
        ddb = boto3.client("dynamodb")
        items = {key: ddb.scan(TableName=name)["Items"] for key, name in self.tables.items()}
        executions = boto3.client("stepfunctions").list_executions(stateMachineArn=self.state_machine_arn)
        return {"tables": items, "executions": executions["executions"]}

    def cli(self, *argv: str) -> int:
        tables = ["--table", self.tables["State"]]
        return main([*argv, *tables])


@pytest.fixture
def deployed(monkeypatch) -> Iterator[Deployed]:
    moto_credentials(monkeypatch)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": False}}):
        names = create_tables(boto3.client("dynamodb"), "hostile")
        env = {
            "DCWATCH_TABLE_NAME": names["State"],
            "DCWATCH_AUDIT_TABLE_NAME": names["Audit"],
            "DCWATCH_LOCKS_TABLE_NAME": names["Locks"],
            "DCWATCH_CONFIG": str(DEMO_CONFIG),
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        machine = boto3.client("stepfunctions").create_state_machine(
            name="dcwatch-hostile-failover",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/dcwatch-hostile-failover",
        )
        runtime.reset()
        steps, control = load_handler(function("Steps")), load_handler(function("Control"))
        steps_context = LambdaContext("steps", "arn:aws:lambda:eu-west-1:123456789012:function:steps", "req-steps")
        control_context = LambdaContext("control", "arn:aws:lambda:eu-west-1:123456789012:function:ctl", "req-ctl")

        def validate(raw: Any, execution: str) -> dict[str, Any]:
            return steps({"step": "ValidateRequest", "request": raw, "execution": execution}, steps_context)

        yield Deployed(
            tables=names,
            store=DynamoStateStore(names["State"], names["Audit"]),
            leases=DynamoLeases(names["Locks"]),
            state_machine_arn=machine["stateMachineArn"],
            validate=validate,
            control=lambda event: control(event, control_context),
        )
        runtime.reset()


def disaster(**overrides: Any) -> dict[str, Any]:
    return {"mode": "disaster", "from": "dc-a", "to": "dc-b", "reason": "dc-a lost its storage", **overrides}


def warning_logged(caplog: pytest.LogCaptureFixture, message: str) -> Any:
    """The one structured WARNING line with this message (its keys are the record's attributes)."""
    (record,) = [r for r in caplog.records if r.getMessage() == message]
    assert record.levelname == "WARNING"
    return record


def evaluator_started(deployed: Deployed, incident: str = EVALUATOR_INCIDENT) -> None:
    """What the evaluator writes before it starts a failover: dc-a DOWN under the incident, the lock under it."""
    up = deployed.store.condition("site/dc-a", "UP")
    down = replace(up, status="DOWN", incident_id=incident, version=up.version + 1)
    assert deployed.store.change_condition("site/dc-a", up, down)
    assert deployed.leases.acquire(incident, 900, datetime.now(UTC), "dc-a").owner == incident


# --- the workflow's ValidateRequest: the one check every start passes, whoever called StartExecution ---


def test_a_start_by_hand_claiming_the_automatic_trigger_is_refused_and_changes_nothing(deployed, caplog):
    before = deployed.snapshot()
    with pytest.raises(InvalidRequest, match="trigger: 'automatic' is the evaluator's own start") as refused:
        deployed.validate(disaster(trigger="automatic", incidentId="manual-1"), "manual-1")
    assert "the evaluator records no incident for dc-a, the lock is held by nobody" in str(refused.value)
    assert deployed.snapshot() == before
    logged = warning_logged(caplog, "request refused")
    assert logged.execution == "manual-1" and "trigger" in logged.reason and logged.lock_released is False


def test_the_automatic_trigger_on_the_evaluators_own_incident_by_another_execution_is_refused(deployed, caplog):
    # Given the evaluator has opened an incident for dc-a, holds the lock for it and started its execution
    evaluator_started(deployed)
    before = deployed.snapshot()
    # When someone starts another execution that claims it (the same incident, the automatic trigger)
    with pytest.raises(InvalidRequest, match=f"execution intruder-1 with incidentId {EVALUATOR_INCIDENT} is not"):
        deployed.validate(disaster(trigger="automatic", incidentId=EVALUATOR_INCIDENT), "intruder-1")
    # Then it is refused, and the evaluator's lock and records are untouched
    assert deployed.snapshot() == before
    assert deployed.leases.holder().owner == EVALUATOR_INCIDENT
    assert warning_logged(caplog, "request refused").lock_released is False


def test_the_evaluators_own_start_is_the_one_accepted_as_automatic(deployed):
    evaluator_started(deployed)
    state = deployed.validate(disaster(trigger="automatic", incidentId=EVALUATOR_INCIDENT), EVALUATOR_INCIDENT)
    assert (state["request"]["trigger"], state["incidentId"]) == ("automatic", EVALUATOR_INCIDENT)


@pytest.mark.parametrize("incident", [EVALUATOR_INCIDENT, "dc-b-down-20261101T000000Z", "change-42"])
def test_a_manual_start_naming_an_incident_outside_the_manual_namespace_is_refused(deployed, caplog, incident):
    # Given the evaluator's incident for dc-a exists (its audit, its lock)
    evaluator_started(deployed)
    deployed.store.append_audit(EVALUATOR_INCIDENT, {"kind": "site", "explanation": "dc-a DOWN"})
    before = deployed.snapshot()
    with pytest.raises(InvalidRequest, match="incidentId: a recovery started by hand has its own incident, start"):
        deployed.validate(disaster(incidentId=incident), "manual-dc-a-20261207T101500Z-0a1b2c3d")
    assert deployed.snapshot() == before, "nothing written into another incident's records"
    assert deployed.store.audit(EVALUATOR_INCIDENT) == [{"kind": "site", "explanation": "dc-a DOWN"}]
    assert incident in warning_logged(caplog, "request refused").reason


def test_a_manual_start_without_an_incident_gets_its_own_named_after_its_execution(deployed):
    state = deployed.validate(disaster(), "console-7")
    assert state["incidentId"] == "manual-console-7" and state["request"]["trigger"] == "manual"


def test_a_disaster_from_the_site_production_is_not_at_is_refused_and_the_lock_taken_for_it_given_back(
    deployed, caplog
):
    # Given production runs at dc-b (a recovery moved it), and the CLI took the lock for its execution
    deployed.store.set_active_site("dc-b", "manual-earlier")
    before = deployed.snapshot()
    deployed.leases.acquire("manual-dc-a-1", 900, datetime.now(UTC), "dc-a")
    with pytest.raises(InvalidRequest, match="from: a disaster leaves the active site, which is dc-b, not dc-a"):
        deployed.validate(disaster(incidentId="manual-dc-a-1"), "manual-dc-a-1")
    assert deployed.snapshot() == before, "the lock is given back, nothing else was written"
    assert warning_logged(caplog, "request refused").lock_released is True


def test_a_forced_request_waits_for_a_humans_approval_even_where_the_config_asks_none(deployed):
    assert runtime.app().config.workflow.approval.modes == []
    state = deployed.validate(disaster(force=True), "manual-forced-1")
    assert state["approval"]["required"] is True  # the state machine's NeedsApproval reads it
    assert "forced: it waits for a human's approval" in state["timeline"][-1]["detail"]
    dry = deployed.validate(disaster(force=True, dryRun=True), "manual-forced-dry")
    assert dry["approval"]["required"] is False, "a dry run changes nothing: nothing to approve"


@pytest.mark.parametrize(
    ("raw", "cause"),
    [
        (["disaster", "dc-a", "dc-b"], "request must be a JSON object"),
        ({"mode": "disaster"}, "from: Field required"),
        (disaster(dryRun="yes"), "dryRun: Input should be a valid boolean"),
        (disaster(force="true"), "force: Input should be a valid boolean"),
        (disaster(trigger="cron"), "trigger: Input should be 'manual', 'automatic' or 'scheduled'"),
        (disaster(incidentId="manual-1; DROP"), "incidentId: String should match pattern"),
        (disaster(to="dc-z"), "to: unknown site 'dc-z'"),
        (disaster(to="dc-a"), "from and to are both 'dc-a'"),
        (disaster(reason=""), "reason: String should have at least 3 characters"),
        (disaster(by="ceo"), "by: Extra inputs are not permitted"),
    ],
)
def test_a_malformed_request_is_refused_by_name_and_changes_nothing(deployed, caplog, raw, cause):
    before = deployed.snapshot()
    with pytest.raises(InvalidRequest, match=cause.replace("(", r"\(").replace(")", r"\)")):
        deployed.validate(raw, "manual-bad-1")
    assert deployed.snapshot() == before
    assert cause in warning_logged(caplog, "request refused").reason


# --- the CLI: refused before it takes the lock or starts anything ---


def test_the_cli_refuses_a_disaster_from_the_site_production_is_not_at_before_taking_the_lock(deployed, capsys):
    deployed.store.set_active_site("dc-b", "manual-earlier")
    before = deployed.snapshot()
    code = deployed.cli(
        "failover",
        *("--from", "dc-a", "--to", "dc-b", "--reason", "dc-a looks down to me"),
        *("--config", str(DEMO_CONFIG), "--state-machine-arn", deployed.state_machine_arn),
        *("--locks-table", deployed.tables["Locks"]),
    )
    assert code == 2
    assert "from: a disaster leaves the active site, which is dc-b, not dc-a" in capsys.readouterr().err
    assert deployed.snapshot() == before, "no execution, no lock"


def test_the_cli_names_its_executions_in_the_manual_namespace(deployed, capsys):
    code = deployed.cli(
        "migrate",
        *("--from", "dc-a", "--to", "dc-b", "--reason", "planned move", "--dry-run"),
        *("--config", str(DEMO_CONFIG), "--state-machine-arn", deployed.state_machine_arn),
    )
    assert code == 0
    (started,) = boto3.client("stepfunctions").list_executions(stateMachineArn=deployed.state_machine_arn)["executions"]
    request = json.loads(
        boto3.client("stepfunctions").describe_execution(executionArn=started["executionArn"])["input"]
    )
    assert started["name"].startswith("manual-migration-dc-a-") and request["incidentId"] == started["name"]
    assert request["trigger"] == "manual"
    # And the workflow accepts what the CLI sends
    assert deployed.validate(request, started["name"])["incidentId"] == started["name"]


# --- `by` is typed; the caller is what AWS says ---


def test_the_cli_records_the_aws_caller_beside_the_name_typed_after_by(deployed):
    caller = boto3.client("sts").get_caller_identity()["Arn"]
    audit = ["--audit-table", deployed.tables["Audit"]]
    assert deployed.cli("automation", "off", "--reason", "storage work", "--by", "the-ceo", *audit) == 0
    assert deployed.cli("ack", EVALUATOR_INCIDENT, "--reason", "looked at it", "--by", "the-ceo", *audit) == 0
    assert deployed.cli("approve", "--token", "tok-1", "--reason", "go ahead", "--by", "the-ceo", *audit) == 0
    records = [*deployed.store.audit("automation"), *deployed.store.audit(EVALUATOR_INCIDENT)]
    records += deployed.store.audit("approval")
    assert [(r["kind"], r["by"], r["caller"]) for r in records] == [
        ("automation", "the-ceo", caller),
        ("acknowledgement", "the-ceo", caller),
        ("approval", "the-ceo", caller),
    ]


def test_the_control_function_records_that_a_direct_invoke_does_not_name_its_caller(deployed, caplog):
    deployed.control({"action": "automation", "state": "off", "reason": "storage work", "by": "the-ceo"})
    (record,) = deployed.store.audit("automation")
    assert record["by"] == "the-ceo"
    assert record["caller"] == (
        "not told to the function (direct Invoke, request req-ctl): see CloudTrail's Lambda data events"
    )
    assert warning_logged(caplog, "operator control").caller == record["caller"]


def test_a_caller_identity_written_into_the_control_event_is_refused_and_changes_nothing(deployed, caplog):
    before = deployed.snapshot()
    forged = {"requestContext": {"authorizer": {"iam": {"userArn": "arn:aws:iam::123456789012:user/ceo"}}}}
    with pytest.raises(ControlInputError, match="requestContext: Extra inputs are not permitted"):
        deployed.control({"action": "automation", "state": "off", "reason": "x-x-x", "by": "ceo", **forged})
    assert deployed.snapshot() == before
    assert "requestContext" in warning_logged(caplog, "control request refused").reason


@pytest.mark.parametrize(
    ("event", "cause"),
    [
        ({"action": "failover"}, "Input tag 'failover' found using 'action' does not match"),
        ({"action": "ack", "incidentId": "x", "reason": "looked", "by": "a"}, "by: String should have at least 2"),
        ({"action": "approve", "token": "", "reason": "go", "by": "alice"}, "token: String should have at least 1"),
        ("automation off", "Input should be a valid dictionary"),
    ],
)
def test_a_malformed_control_request_is_refused_by_name_changes_nothing_and_is_logged(deployed, caplog, event, cause):
    before = deployed.snapshot()
    with pytest.raises(ControlInputError, match=cause):
        deployed.control(event)
    assert deployed.snapshot() == before
    assert cause in warning_logged(caplog, "control request refused").reason
