"""Starting the failover workflow, and answering it when it waits for an operator's approval."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from dcwatch.adapters.aws import LazyClient, aws_call
from dcwatch.errors import ApprovalNotWaiting
from dcwatch.ports import RunningExecution

MAX_RUNNING = 10  # read in full; the failover lock admits one recovery at a time, so more is a fault to show
HISTORY_PAGE = 50  # newest first: the last state entered is among the last few events


class StepFunctionsStarter:
    def __init__(self, state_machine_arn: str, client: Any | None = None):
        self.state_machine_arn = state_machine_arn
        self._client = LazyClient("stepfunctions", client)

    def start(self, name: str, payload: dict[str, object]) -> str:
        """Start under `name`; a second start of the same name returns the first execution."""
        sfn = self._client()
        try:
            with aws_call("states:StartExecution"):
                response = sfn.start_execution(
                    stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(payload)
                )
            return str(response["executionArn"])
        except sfn.exceptions.ExecutionAlreadyExists:
            machine = self.state_machine_arn.split(":stateMachine:")
            return f"{machine[0]}:execution:{machine[1]}:{name}"

    def status(self, execution_arn: str) -> tuple[str, str]:
        """The execution's status (RUNNING, SUCCEEDED, ...) and its cause, or its output once it has one."""
        with aws_call("states:DescribeExecution"):
            described = self._client().describe_execution(executionArn=execution_arn)
        return str(described["status"]), str(described.get("cause") or described.get("output", ""))


class StepFunctionsExecutions:
    """The workflow's running executions and the state each last entered: the `Executions` port."""

    def __init__(self, state_machine_arn: str, client: Any | None = None):
        self.state_machine_arn = state_machine_arn
        self._client = LazyClient("stepfunctions", client)

    def running(self) -> list[RunningExecution]:
        sfn = self._client()
        with aws_call("states:ListExecutions"):
            listed = sfn.list_executions(
                stateMachineArn=self.state_machine_arn, statusFilter="RUNNING", maxResults=MAX_RUNNING
            )["executions"]
        return [self._running(e["executionArn"], e["name"], e["startDate"]) for e in listed]

    def _running(self, arn: str, name: str, started: Any) -> RunningExecution:
        sfn = self._client()
        with aws_call("states:DescribeExecution"):
            described = sfn.describe_execution(executionArn=arn)
        try:
            request = json.loads(described.get("input") or "{}")
        except ValueError:
            request = {}
        mode = str(request.get("mode") or request.get("action") or "") if isinstance(request, dict) else ""
        with aws_call("states:GetExecutionHistory"):
            events = sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=HISTORY_PAGE)["events"]
        # The newest by id, whatever order the page came in (moto ignores reverseOrder).
        entered = max((e for e in events if "stateEnteredEventDetails" in e), key=lambda e: e["id"], default=None)
        if entered is None:
            return RunningExecution(name, started, mode)
        return RunningExecution(name, started, mode, entered["stateEnteredEventDetails"]["name"], entered["timestamp"])


# The token's workflow no longer waits: answered, timed out, stopped; or the token was mistyped.
_NOT_WAITING = {"InvalidToken", "TaskDoesNotExist", "TaskTimedOut"}


@contextmanager
def _answering(what: str) -> Iterator[None]:
    try:
        with aws_call(what):
            yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code not in _NOT_WAITING:
            raise
        raise ApprovalNotWaiting(
            f"no workflow waits for this token ({code}): it was answered already, timed out or stopped, "
            "or the token is not the one in the approval message"
        ) from None


class Approvals:
    """The operator's answer to a workflow waiting at its approval gate, by the task token it sent.

    Approve and deny both complete the task (SendTaskSuccess) with the decision, so who answered and
    why travel with the workflow into its notification and audit record; the workflow's Choice reads it.
    """

    def __init__(self, client: Any | None = None):
        self._client = LazyClient("stepfunctions", client)

    def answer(self, token: str, decision: dict[str, object]) -> None:
        with _answering("states:SendTaskSuccess"):
            self._client().send_task_success(taskToken=token, output=json.dumps(decision))
