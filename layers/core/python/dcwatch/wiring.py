"""How the parts connect: functions, rules and the failover workflow, in one place.

CDK (`infra/`) and the local runtime (`dcwatch.local`) both build from these tables, so what runs
on a laptop is what runs in AWS.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcwatch.agent.report import AGENT_SOURCE_PREFIX, SITE_AGENT_REPORT
from dcwatch.config import STEP_TIMEOUT_S
from dcwatch.events import EVALUATOR_SOURCE, PROBE_ROUND, PROBE_SOURCE_PREFIX, REPLAY_FIELD, SITE_STATUS_CHANGED
from dcwatch.recovery.executions import execution_ended_pattern


def _repo_root() -> Path:
    """The source tree around layers/core/python/dcwatch; only CDK and the local runtime use it."""
    here = Path(__file__).resolve()
    return here.parents[4] if len(here.parents) > 4 else here.parent


REPO_ROOT = _repo_root()
FUNCTIONS_DIR = REPO_ROOT / "functions"
FAILOVER_ASL = Path(__file__).with_name("statemachines") / "failover.asl.json"


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function: where its code is and what it may take."""

    key: str
    code: str
    handler: str
    timeout_s: int
    memory_mb: int = 256
    description: str = ""
    # In AWS, at most this many at once; 1 where a second copy running at the same time would do harm.
    reserved_concurrency: int | None = None
    # It talks to a site (vCenter, storage API, hooks, service checks): with `network`, it runs in the VPC.
    reaches_sites: bool = False


# The workflow's steps run in two functions, not one each: a failover's path then pays two cold starts, not
# fifteen. Two, because a step that reaches the sites runs in the VPC (with `network`) and the others need not.
STEPS_FUNCTION = "Steps"
SITE_STEPS_FUNCTION = "SiteSteps"
STEP_MEMORY_MB = 1024


@dataclass(frozen=True)
class StepSpec:
    """One step of the failover workflow: its Task states name it (`"step"` in their Parameters) and its
    function runs it; `${<key>Arn}` in the ASL is the ARN of that function."""

    key: str
    description: str
    # It talks to a site (vCenter, storage API, hooks, service checks): it runs in SiteSteps, in the VPC if any.
    reaches_sites: bool = False

    @property
    def function(self) -> str:
        return SITE_STEPS_FUNCTION if self.reaches_sites else STEPS_FUNCTION

    @property
    def arn_variable(self) -> str:
        return f"{self.key}Arn"


def _site_step(key: str, description: str) -> StepSpec:
    return StepSpec(key, description, reaches_sites=True)


STEPS: tuple[StepSpec, ...] = (
    StepSpec("ValidateRequest", "check a recovery request, build the plan"),
    StepSpec("RequestFailed", "a request ValidateRequest could not check: give back its lock, audit, alert"),
    StepSpec("DrillSkipped", "a scheduled drill held back: audit it as skipped, tell the operators"),
    StepSpec("RequestApproval", "send the approval request with its task token"),
    StepSpec("Approved", "record the approval, renew the failover lock"),
    StepSpec("LowerTtl", "migration, failback: lower the records' TTL before the shutdown"),
    _site_step("ShutdownGroup", "migration, failback: renew the lock, guest shutdown of one group at the leaving site"),
    _site_step("CheckShutdown", "poll the group's shutdown; power off what outlasts the timeout"),
    _site_step("CheckMirrorSynced", "migration, failback: the mirror caught up (lag 0) once the leaving site is off"),
    _site_step("PrepareDrill", "remove leftover clones, note drill records, present the snapshot, start the clones"),
    _site_step("CheckClones", "wait for a drill's clones, move their NICs to the drill network"),
    _site_step("CleanUpDrill", "restore the drill records, destroy the drill's clones, remove the snapshot"),
    StepSpec("AcquireLease", "take the single failover lock for the incident"),
    _site_step("CheckStandby", "prove the standby vCenter and its VMs are ready"),
    _site_step("CheckStorage", "refuse a standby whose storage mirror is beyond the data-loss window"),
    _site_step("Fence", "power off the failed site's VMs where its vCenter answers"),
    # A site step for proof (c): the standby's mirror check; (b) reads the lease and the standby agent's report.
    _site_step("ProveFenced", "prove the failed site cannot serve: its lease, or its storage"),
    _site_step("StartGroup", "renew the lock, power on one priority group at the standby"),
    _site_step("CheckGroup", "wait for the current group's VMs to come up, and its checks to pass"),
    _site_step("VerifyServices", "run every service check at the standby"),
    StepSpec("SwitchDns", "renew the lock, UPSERT the Route 53 records to the standby values"),
    StepSpec("CheckDns", "wait for the Route 53 change to be INSYNC and answered"),
    StepSpec("Notify", "announce the outcome with its timeline"),
    StepSpec("RecordAudit", "write the audit record, update the active site"),
    StepSpec("NotifyFailure", "announce and audit a failed workflow"),
    StepSpec("ReleaseLease", "give the failover lock back, after success or failure"),
)


FUNCTIONS: tuple[FunctionSpec, ...] = (
    # One invocation at a time per vantage point: a slow minute must not double the load on the sites.
    FunctionSpec(
        "Probe",
        "probe",
        "app.handler",
        90,
        512,
        "a minute of positive check rounds of both sites",
        reserved_concurrency=1,
        reaches_sites=True,
    ),
    FunctionSpec("Evaluate", "evaluate", "app.handler", 30, 256, "probe rounds to site status, one batch at a time"),
    FunctionSpec(
        "AgentReports", "evaluate", "app.agent_report", 30, 256, "site agents' reports: kept, silence, partitions"
    ),
    # Operators invoke it from the Lambda console (Test tab): the CLI's switches without a shell.
    FunctionSpec(
        "Control", "control", "app.handler", 15, 256, "operator switches: automation on/off, ack, approve/deny"
    ),
    # 1024 MB for the CPU, not the memory: Lambda gives memory / 1769 MB of a vCPU, and a cold step imports its
    # adapters at that speed. Steps run only in recoveries and drills, so the larger size costs next to nothing.
    FunctionSpec(
        STEPS_FUNCTION,
        "failover",
        "app.run_step",
        STEP_TIMEOUT_S,
        STEP_MEMORY_MB,
        "failover steps that need no site: request, lock, approval, DNS, notices, audit",
    ),
    FunctionSpec(
        SITE_STEPS_FUNCTION,
        "failover",
        "app.run_site_step",
        STEP_TIMEOUT_S,
        STEP_MEMORY_MB,
        "failover steps that reach a site: vCenter, storage, hooks, service checks",
        reaches_sites=True,
    ),
    # Not a step: fed by the default bus when Step Functions stops (ABORTED) or times out (TIMED_OUT) a run.
    FunctionSpec(
        "ExecutionEnded",
        "execution_ended",
        "app.handler",
        30,
        256,
        "a stopped or timed-out recovery: release its lock, audit, alert",
    ),
)


@dataclass(frozen=True)
class TableSpec:
    """A DynamoDB table (string keys, on-demand) and the environment variable that names it to functions."""

    key: str
    env: str
    partition_key: str = "pk"
    sort_key: str | None = "sk"
    ttl_attribute: str | None = None  # epoch seconds; DynamoDB deletes expired items (eventually)
    kept: bool = False  # never deleted with the stack, never overwritten

    @property
    def keys(self) -> dict[str, str]:
        """Key attribute -> key type (HASH, RANGE)."""
        return {self.partition_key: "HASH", **({self.sort_key: "RANGE"} if self.sort_key else {})}


TABLES: tuple[TableSpec, ...] = (
    TableSpec("State", "DCWATCH_TABLE_NAME", ttl_attribute="expiresAt"),
    TableSpec("Audit", "DCWATCH_AUDIT_TABLE_NAME", kept=True),
    TableSpec("Locks", "DCWATCH_LOCKS_TABLE_NAME", sort_key=None, ttl_attribute="expiresAt"),
    # Powertools idempotency records of the steps that act once (its default key and expiry attributes).
    TableSpec(
        "Idempotency", "DCWATCH_IDEMPOTENCY_TABLE_NAME", partition_key="id", sort_key=None, ttl_attribute="expiration"
    ),
)


def function(key: str) -> FunctionSpec:
    return next(f for f in FUNCTIONS if f.key == key)


def step(key: str) -> StepSpec:
    """The step named `key`; KeyError for a name no Task may give."""
    found = next((s for s in STEPS if s.key == key), None)
    if found is None:
        raise KeyError(f"no failover step {key!r}")
    return found


def table(key: str) -> TableSpec:
    return next(t for t in TABLES if t.key == key)


@dataclass(frozen=True)
class QueueSpec:
    """A FIFO queue between a rule and its function, for a function that must judge one message at a time.

    All messages share one group (the deployment's), so SQS hands out the next batch only once the last one
    is done, in arrival order: the function is the single writer of what it judges, whatever EventBridge
    retries or how many copies Lambda could run. A batch's failed message and those after it are reported
    back (partial batch response) and retried; after `max_receives` a message is kept in a dead-letter queue.
    """

    batch_size: int = 10
    max_receives: int = 5

    def visibility_timeout_s(self, function_timeout_s: int) -> int:
        """AWS's advice for a Lambda-fed queue: six times the function's timeout."""
        return 6 * function_timeout_s


def message_group(deployment: str) -> str:
    """The one FIFO message group of a deployment's queued rules."""
    return f"dcwatch-{deployment}"


@dataclass(frozen=True)
class RuleSpec:
    """An EventBridge rule on the dcwatch bus and the function it feeds (through `queue` when it has one)."""

    name: str
    pattern: dict[str, Any]
    target: str
    queue: QueueSpec | None = None


# Live events only: an archive replay (EventBridge marks each with `replay-name`) is never judged again as
# if it were happening now; the evaluator refuses one that gets through all the same (`dcwatch.detection.trust`).
LIVE: dict[str, Any] = {REPLAY_FIELD: [{"exists": False}]}

RULES: tuple[RuleSpec, ...] = (
    # One ProbeRound per vantage point (`dcwatch.probe.<vantage>`), site and chunk; judged in order, one batch at
    # a time (see QueueSpec). The evaluator refuses a round whose vantage point is not its source's.
    RuleSpec(
        "probe-rounds",
        {"source": [{"prefix": f"{PROBE_SOURCE_PREFIX}."}], "detail-type": [PROBE_ROUND], **LIVE},
        "Evaluate",
        QueueSpec(),
    ),
    # Every site's agent (`dcwatch.agent.<site>`); the handler refuses a report about another site than its source's.
    RuleSpec(
        "agent-reports",
        {"source": [{"prefix": f"{AGENT_SOURCE_PREFIX}."}], "detail-type": [SITE_AGENT_REPORT], **LIVE},
        "AgentReports",
    ),
)

# Everything the evaluator says; operators and the local timeline subscribe to it.
SITE_STATUS_PATTERN: dict[str, Any] = {"source": [EVALUATOR_SOURCE], "detail-type": [SITE_STATUS_CHANGED]}


def execution_ended_rule(state_machine_arn: str) -> RuleSpec:
    """The default bus's rule: this state machine's executions that Step Functions ended without our states."""
    return RuleSpec("execution-ended", execution_ended_pattern(state_machine_arn), "ExecutionEnded")


def asl_variables() -> list[str]:
    return sorted(set(re.findall(r"\$\{(\w+)\}", FAILOVER_ASL.read_text(encoding="utf-8"))))


def step_arns(function_arns: dict[str, str]) -> dict[str, str]:
    """`${<step>Arn}` -> the ARN of the function that runs the step, from the ARNs by function key."""
    return {spec.arn_variable: function_arns[spec.function] for spec in STEPS}


def failover_definition(timeout_s: int | None = None) -> str:
    """The ASL, `${XArn}` left in place, with the config's TimeoutSeconds (`config.workflow_timeout_s`)."""
    text = FAILOVER_ASL.read_text(encoding="utf-8")
    if timeout_s is None:
        return text
    asl = json.loads(text)
    asl["TimeoutSeconds"] = timeout_s
    return json.dumps(asl, indent=2) + "\n"


def render_failover_definition(function_arns: dict[str, str], timeout_s: int | None = None) -> str:
    """The ASL with every `${XArn}` replaced by its step's function (ARNs by function key); fails loudly on a
    missing function or an unknown step."""
    text = failover_definition(timeout_s)
    arns = step_arns(function_arns)
    missing = [v for v in asl_variables() if v not in arns]
    if missing:
        raise KeyError(f"no step {missing} in dcwatch.wiring.STEPS for {FAILOVER_ASL.name}")
    rendered = re.sub(r"\$\{(\w+)\}", lambda m: arns[m.group(1)], text)
    json.loads(rendered)
    return rendered


def failover_task_functions() -> list[FunctionSpec]:
    """The functions the workflow invokes, in the order of FUNCTIONS; a Task naming an unknown step is an error."""
    wanted = set(asl_variables())
    unknown = sorted(wanted - {s.arn_variable for s in STEPS})
    if unknown:
        raise KeyError(f"{FAILOVER_ASL.name} names {unknown}, which no StepSpec provides")
    used = {s.function for s in STEPS if s.arn_variable in wanted}
    return [f for f in FUNCTIONS if f.key in used]
