"""The grant matrix: who may do what, by function key or workflow step, and the grants that follow from it.

A function not named in a row gets nothing of it; what each function may do besides writing its logs
is read here, in one place (Route 53, record by record, is `dns_access.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_

from dcwatch.adapters.agent_aws import SITE_LEASE_PREFIX
from dcwatch.adapters.secrets import read_secrets_statement
from dcwatch.config.hooks import DRILL_HOOK_STEPS, HOOK_STEPS
from dcwatch.events import EVALUATOR_SOURCE, SITE_STATUS_CHANGED
from dcwatch.wiring import STEPS
from dcwatch_infra import constants as c
from dcwatch_infra import nag
from dcwatch_infra.bus_policy import put_events
from dcwatch_infra.dns_access import grant_dns

if TYPE_CHECKING:
    from dcwatch_infra.stack import DcwatchStack

# Who may do what, by function key ("Probe": every probe, whatever its vantage point) or by workflow step (the
# function that runs it: Steps or SiteSteps, `dcwatch.wiring.STEPS`); a function not named here gets nothing of it.
VCENTER_USERS = (
    "Probe",
    "CheckStandby",
    "Fence",
    "StartGroup",
    "CheckGroup",
    "ShutdownGroup",
    "CheckShutdown",
    "PrepareDrill",
    "CheckClones",
    "CleanUpDrill",
)
# Each its own source and detail-type only (`bus_policy`); each probe its own vantage point's (`probe_function`).
BUS_PUBLISHERS = {"Evaluate": (EVALUATOR_SOURCE, SITE_STATUS_CHANGED)}
# Control: the automation switch, acknowledgements; AgentReports: each site agent's latest report, its silence.
STATE_WRITERS = ("Evaluate", "AgentReports", "RecordAudit", "Control")
# ValidateRequest: a migration, failback or drill is checked against the recorded active site; ProveFenced: the
# standby agent's latest report, which the evaluator keeps there.
STATE_READERS = ("ValidateRequest", "ProveFenced")
# Evaluate and AgentReports: the decision record of every change they announce.
AUDIT_APPENDERS = (
    "Evaluate",
    "AgentReports",
    "RecordAudit",
    "NotifyFailure",
    "DrillSkipped",
    "Control",
    "ExecutionEnded",
)
ALERT_PUBLISHERS = (
    "Evaluate",
    "AgentReports",
    "Notify",
    "NotifyFailure",
    "DrillSkipped",
    "RequestApproval",
    "ExecutionEnded",
)
# A run's report page, once its outcome is audited (success: RecordAudit; failure: NotifyFailure): PutObject
# only, on the report bucket's objects; nobody deletes one (the bucket policy).
REPORT_WRITERS = ("RecordAudit", "NotifyFailure")
# StartGroup, ShutdownGroup and SwitchDns renew the lock before the stretch each starts.
LOCK_HOLDERS = (
    "Evaluate",
    "AcquireLease",
    "StartGroup",
    "ShutdownGroup",
    "SwitchDns",
    "ReleaseLease",
    "Approved",
    "CleanUpDrill",
)
# The lease: conditional put to take it, update to renew, delete to give it back, get to name its holder.
LEASE_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
# A rejected request gives back the lock the evaluator or the CLI took for its execution (conditional delete).
LOCK_RELEASERS = ("ValidateRequest",)
# A stopped or timed-out execution's lock: given back only if that execution holds it; its holder named if not.
# ValidateRequest: a scheduled drill is held back while anyone holds the lock.
LOCK_INSPECTORS = ("ExecutionEnded", "ValidateRequest")
# The site agents' leases (the lease proof): read only, and only their items (`site-lease#<site>`).
SITE_LEASE_READERS = ("ProveFenced",)
WORKFLOW_STARTERS = ("Evaluate",)
APPROVAL_ANSWERERS = ("Control",)  # SendTaskSuccess: the answer to the workflow's approval gate
# Route 53, record by record: `dns_access.py`.
# Steps that act once per run: their Powertools idempotency records (get, conditional put, update, delete).
ONCE_ACTORS = (
    "PrepareDrill",
    "CleanUpDrill",
    "StartGroup",
    "CheckGroup",
    "SwitchDns",
    "LowerTtl",
    "RequestApproval",
    "Notify",
    "RecordAudit",
    "NotifyFailure",
    "DrillSkipped",
    "ExecutionEnded",
)
IDEMPOTENCY_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
# Steps that run recovery hooks (`dcwatch.config.hooks`): they may invoke exactly the Lambda hooks the config names.
HOOK_CALLERS = HOOK_STEPS + DRILL_HOOK_STEPS
# Functions that run the config's checks (`app.probe`): they read the checks' `headers_secret`s; hook callers
# read the hooks' own.
CHECK_RUNNERS = ("Probe", "CheckGroup", "VerifyServices")
# Appending is all the audit trail allows: no update, no delete (the adapter also refuses to overwrite).
AUDIT_APPEND_ACTIONS = ["dynamodb:PutItem"]

Holders = Callable[[Sequence[str]], list[lambda_.Function]]


def grant_secrets_read(
    fn: lambda_.IFunction, names: Sequence[str], *, region: str | None = None, describe: bool = False
) -> None:
    """Let `fn` read the secrets named `names` (`dcwatch.adapters.secrets.read_secrets_statement`), in its
    stack's account and in `region` (default: its stack's)."""
    stack = Stack.of(fn)
    statement = read_secrets_statement(
        names, partition=stack.partition, region=region or stack.region, account=stack.account, describe=describe
    )
    fn.add_to_role_policy(iam.PolicyStatement.from_json(statement))


class Access:
    """The grants of the matrix above on the stack's functions, tables, topic, bus and workflow. Part of the
    stack, not a construct of its own: its statements join the functions' existing policies."""

    def __init__(self, stack: DcwatchStack, hosted_zone_ids: dict[str, str]):
        self.stack, self.config = stack, stack.config
        self._grant(hosted_zone_ids)

    def holders(self, keys: Sequence[str]) -> list[lambda_.Function]:
        """The functions of these function keys or step keys, each once."""
        functions = {s.key: s.function for s in STEPS}
        found = [
            fn
            for key in keys
            for fn in (
                self.stack.probes.values() if key == "Probe" else [self.stack.functions[functions.get(key, key)]]
            )
        ]
        return list(dict.fromkeys(found))

    def _grant(self, hosted_zone_ids: dict[str, str]) -> None:
        stack, tables = self.stack, self.stack.tables
        vcenter_secrets = [site.vcenter.credentials_secret for site in self.config.sites]
        for fn in self.holders(VCENTER_USERS):
            grant_secrets_read(fn, vcenter_secrets, describe=True)
        for key, (source, detail_type) in BUS_PUBLISHERS.items():
            stack.functions[key].add_to_role_policy(put_events(stack.bus.event_bus_arn, source, detail_type))
        headers_secrets = {
            CHECK_RUNNERS: self.config.check_headers_secrets(),
            HOOK_CALLERS: [h.headers_secret for h in self.config.recovery_hooks if h.headers_secret],
        }
        for holders, names in headers_secrets.items():
            for fn in self.holders(holders) if names else []:
                grant_secrets_read(fn, names)
        for fn in self.holders(STATE_WRITERS):
            stack.table.grant_read_write_data(fn)
        for fn in self.holders(STATE_READERS):
            stack.table.grant_read_data(fn)
        for fn in self.holders(AUDIT_APPENDERS):
            tables["Audit"].grant(fn, *AUDIT_APPEND_ACTIONS)
        for fn in self.holders(LOCK_HOLDERS):
            tables["Locks"].grant(fn, *LEASE_ACTIONS)
        for fn in self.holders(LOCK_RELEASERS):
            tables["Locks"].grant(fn, "dynamodb:DeleteItem")
        for fn in self.holders(LOCK_INSPECTORS):
            tables["Locks"].grant(fn, "dynamodb:DeleteItem", "dynamodb:GetItem")
        for fn in self.holders(SITE_LEASE_READERS):
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["dynamodb:GetItem"],
                    resources=[tables["Locks"].table_arn],
                    conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{SITE_LEASE_PREFIX}*"]}},
                )
            )
        for fn in self.holders(ALERT_PUBLISHERS):
            stack.topic.grant_publish(fn)
            nag.acknowledge(
                fn.role,  # type: ignore[arg-type]
                "IAM5[Action::kms:GenerateDataKey*]",
                "publishing to the KMS-encrypted alerts topic needs a data key of that one key (resource: its ARN)",
            )
        for fn in self.holders(REPORT_WRITERS):
            fn.add_to_role_policy(
                iam.PolicyStatement(actions=["s3:PutObject"], resources=[stack.reports.arn_for_objects("reports/*")])
            )
            fn.add_environment(c.ENV_REPORTS_BUCKET, stack.reports.bucket_name)
            bucket = stack.get_logical_id(stack.reports.node.default_child)  # type: ignore[arg-type]
            nag.acknowledge(
                fn.role,  # type: ignore[arg-type]
                f"IAM5[Resource::<{bucket}.Arn>/reports/*]",
                "a report per run, each under its own key: PutObject on the report prefix, nothing else",
            )
        for fn in self.holders(WORKFLOW_STARTERS):
            stack.state_machine.grant_start_execution(fn)
        for fn in self.holders(APPROVAL_ANSWERERS):
            # Not grant_task_response: the task-token actions take no resource but "*" (a state machine ARN
            # there matches nothing), and approve and deny both answer with SendTaskSuccess.
            fn.add_to_role_policy(iam.PolicyStatement(actions=["states:SendTaskSuccess"], resources=["*"]))
            nag.acknowledge(
                fn.role,  # type: ignore[arg-type]
                "IAM5[Resource::*]",
                "states:SendTaskSuccess has no resource-level permission; the task token names the one waiting task",
            )
        for fn in self.holders(ONCE_ACTORS):
            tables["Idempotency"].grant(fn, *IDEMPOTENCY_ACTIONS)
        hook_functions = sorted(self._hook_function_arns())
        for fn in self.holders(HOOK_CALLERS) if hook_functions else []:
            fn.add_to_role_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=hook_functions))

        grant_dns(stack, self.config, hosted_zone_ids, self.holders)

    def _hook_function_arns(self) -> set[str]:
        """The Lambda hooks of the config, as ARNs (a bare name is a function of this account and region)."""
        hooks = self.config.recovery_hooks
        return {
            h.function
            if h.function.startswith("arn:")
            else self.stack.format_arn(
                service="lambda",
                resource="function",
                resource_name=h.function,
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for h in hooks
            if h.function
        }
