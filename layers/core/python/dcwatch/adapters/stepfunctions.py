"""Starting the failover workflow."""

from __future__ import annotations

import json
from typing import Any

from dcwatch.adapters.aws import LazyClient, aws_call


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
