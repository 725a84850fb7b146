"""ExecutionEnded: the default bus's aws.states event of a failover execution Step Functions stopped (ABORTED)
or timed out (TIMED_OUT). Not a workflow step (no Task invokes it): its lock is released, the end audited and
announced (`dcwatch.recovery.executions`).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from dcwatch import runtime
from dcwatch.observability import logger, tracer
from dcwatch.recovery import executions


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    change = executions.ExecutionStatusChange.model_validate(event["detail"])
    logger.append_keys(incident_id=change.incident_id, execution=change.name, status=change.status)
    app = runtime.app()
    app.once.register(context)
    message_id = executions.execution_ended(change, app.leases, app.store, app.notifier, app.once, app.config)
    logger.info("ended execution audited and announced", message_id=message_id)
    return {"messageId": message_id, "incidentId": change.incident_id}
