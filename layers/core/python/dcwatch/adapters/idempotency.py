"""Steps that act once: Powertools idempotency with its DynamoDB persistence layer.

A key (run, step, group, ...) is recorded with the action's result; a retried or re-delivered step
finds it and gets the first result back without acting again. An action that raised leaves no record,
so a retry runs it again; one that is still running (or whose Lambda died mid-way, until that
invocation's deadline) fails the retry with StepInProgress, which the workflow retries until that deadline has passed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from dcwatch.adapters.aws import LazyClient
from dcwatch.errors import StepInProgress

T = TypeVar("T")
RECORD_DAYS = 7


class IdempotentSteps:
    def __init__(self, table_name: str, client: Any | None = None):
        self._client = LazyClient("dynamodb", client)
        self._table = table_name
        self._store: DynamoDBPersistenceLayer | None = None
        self.config = IdempotencyConfig(expires_after_seconds=RECORD_DAYS * 86400, use_local_cache=False)

    def register(self, context: Any) -> None:
        """The running invocation's deadline bounds how long its unfinished actions block a retry."""
        self.config.register_lambda_context(context)

    def _persistence(self) -> DynamoDBPersistenceLayer:
        if self._store is None:
            self._store = DynamoDBPersistenceLayer(
                table_name=self._table, key_attr="id", expiry_attr="expiration", boto3_client=self._client()
            )
        return self._store

    def __call__(self, key: str, action: Callable[[], T]) -> T:
        @idempotent_function(
            data_keyword_argument="step",
            persistence_store=self._persistence(),
            config=self.config,
            key_prefix="dcwatch",
        )
        def run(step: dict[str, str]) -> dict[str, Any]:
            return {"result": action()}

        try:
            return run(step={"key": key})["result"]  # type: ignore[no-any-return]
        except IdempotencyAlreadyInProgressError:
            raise StepInProgress(f"{key} is still in progress in another invocation; retried later") from None
