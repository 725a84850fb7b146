"""Control: the operator's switches from the AWS console (Lambda → Test): automation on/off, ack, approve/deny."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from dcwatch import runtime
from dcwatch.control import ControlInputError, invoked_by, parse_control, run_control
from dcwatch.observability import logger, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    caller = invoked_by(context.aws_request_id)
    try:
        request = parse_control(event)  # a bad request fails here, naming every bad field; nothing changed
    except ControlInputError as exc:
        logger.warning("control request refused", reason=str(exc), caller=caller)
        raise
    app = runtime.app()
    outcome = run_control(request, app.store, app.approvals, datetime.now(UTC), caller)
    logger.warning(
        "operator control", action=request.action, by=getattr(request, "by", None), caller=caller, outcome=outcome
    )
    return outcome
