"""The failover workflow's steps, one module per concern: each takes the workflow state and returns it,
one step further. Step Functions owns order, waits, retries and catches (`statemachines/failover.asl.json`);
these functions own the decisions. Each is safe to run again: powered-on VMs are not powered on twice,
UPSERTs are idempotent, and every step appends what it did to the timeline."""

from dcwatch.recovery.steps.approval import approved, request_approval
from dcwatch.recovery.steps.dns import check_dns, lower_ttl, switch_dns
from dcwatch.recovery.steps.drill import check_clones, clean_up_drill, clean_up_drill_whatever_the_lock, prepare_drill
from dcwatch.recovery.steps.fence import fence, prove_fenced
from dcwatch.recovery.steps.groups import check_group, start_group
from dcwatch.recovery.steps.lease import acquire_lease, release_lease, renew_lease
from dcwatch.recovery.steps.outcome import notify, notify_failure, record_audit
from dcwatch.recovery.steps.shutdown import check_shutdown, shutdown_group
from dcwatch.recovery.steps.standby import check_standby
from dcwatch.recovery.steps.storage import check_mirror_synced, check_storage
from dcwatch.recovery.steps.validate import validate_request
from dcwatch.recovery.steps.verify import verify_services

__all__ = [
    "acquire_lease",
    "approved",
    "check_dns",
    "check_clones",
    "check_group",
    "check_mirror_synced",
    "check_shutdown",
    "check_standby",
    "check_storage",
    "clean_up_drill",
    "clean_up_drill_whatever_the_lock",
    "fence",
    "lower_ttl",
    "notify",
    "notify_failure",
    "prepare_drill",
    "prove_fenced",
    "record_audit",
    "release_lease",
    "renew_lease",
    "request_approval",
    "shutdown_group",
    "start_group",
    "switch_dns",
    "validate_request",
    "verify_services",
]
