"""Names of the stack's constructs and AWS resources, the paths its assets come from, its fixed settings."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

import dcwatch
from dcwatch.events import RESULT_MAX_AGE_S
from dcwatch.topology import VANTAGE_PUBLIC
from dcwatch.wiring import REPO_ROOT

# Where the inputs of the synth live.
DEMO_CONFIG = Path(dcwatch.__file__).with_name("local") / "demo.yaml"
CORE_LAYER_DIR = REPO_ROOT / "layers" / "core"
PYPROJECT = REPO_ROOT / "pyproject.toml"
ASSETS_DIR = Path(__file__).with_name("assets")
DEPS_PLACEHOLDER_DIR = ASSETS_DIR / "deps-placeholder"
CONFIG_LAYER_SOURCE_DIR = ASSETS_DIR / "config-layer"
CDK_JSON = Path(__file__).parents[1] / "cdk.json"

# `-c deps=...`: the dependency layer pip builds (the default), or the offline placeholder (cannot run).
DEPS_PIP = "pip"
DEPS_PLACEHOLDER = "placeholder"

# Never shipped in a function or layer: bytecode caches, build metadata, the local runtime.
CODE_EXCLUDES = ["**/__pycache__", "**/*.pyc", "*.egg-info"]
CORE_LAYER_EXCLUDES = [*CODE_EXCLUDES, "python/dcwatch/local", "python/dcwatch/local/**"]

# The config file inside the config layer, and where Lambda mounts it (layers extract to /opt).
CONFIG_IN_LAYER = "dcwatch/config.yaml"
CONFIG_IN_LAMBDA = f"/opt/{CONFIG_IN_LAYER}"

# The newest Python Lambda runs (cdk-nag AwsSolutions-L1), on Graviton: every dependency has aarch64 wheels.
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_14
LAMBDA_ARCHITECTURE = lambda_.Architecture.ARM_64
LAMBDA_PYTHON_VERSION = LAMBDA_RUNTIME.name.removeprefix("python")
# Lambda's Python runs on Amazon Linux 2023 (glibc 2.34): manylinux2014 and 2_28 wheels both fit.
LAMBDA_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
# Third-party packages the Lambda Python runtime already provides; the deps layer leaves them out, also
# when another dependency pulls them in (aws-xray-sdk needs botocore): the runtime's copies match each other.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})

LOG_RETENTION = logs.RetentionDays.ONE_MONTH
ARCHIVE_RETENTION = Duration.days(90)
# The watchdog of the watchdog: this many probe periods without a result from a vantage point is an alarm.
WATCHDOG_PERIODS = 3
# A rule (or its queue) delivers a probe round to the evaluator for this long; older ones are superseded anyway.
RESULT_MAX_AGE = Duration.seconds(RESULT_MAX_AGE_S)
# The ended-execution alert: EventBridge retries its delivery to the function this often within RESULT_MAX_AGE.
ENDED_RETRIES = 8

# Vantage points: where probe functions run (named by the config, which the evaluator reads too).
VANTAGE_TAG = "dcwatch:vantage"
# Every function carries its key of `dcwatch.wiring.FUNCTIONS`: what it is, whatever its logical id.
FUNCTION_TAG = "dcwatch:function"


# Construct ids (stable: they decide the CloudFormation logical ids).
BUS = "Bus"
ARCHIVE = "Archive"
ALERTS_TOPIC = "Alerts"
ALERTS_KEY = "AlertsKey"
FAILOVER = "Failover"
FAILOVER_LOGS = "FailoverLogs"
# CDK orders a function's layers by construct path (`recognizeLayerVersion`): these ids sort as they stack.
DEPS_LAYER = "Layer1Deps"
CORE_LAYER = "Layer2Core"
CONFIG_LAYER = "Layer3Config"
PROBE_SCHEDULE_ROLE = "ProbeScheduleRole"
DRILL_SCHEDULE = "DrillSchedule"
DRILL_SCHEDULE_ROLE = "DrillScheduleRole"
REPORTS_BUCKET = "Reports"
DASHBOARD = "Dashboard"
OUTPUT_BUS_NAME = "BusName"
OUTPUT_STATE_MACHINE_ARN = "StateMachineArn"
OUTPUT_TOPIC_ARN = "TopicArn"
OUTPUT_TABLE_NAME = "TableName"
OUTPUT_AUDIT_TABLE_NAME = "AuditTableName"
OUTPUT_LOCKS_TABLE_NAME = "LocksTableName"
OUTPUT_REPORTS_BUCKET = "ReportsBucketName"
OUTPUT_DASHBOARD = "DashboardName"
CONTROL_INVOKERS = "ControlInvokers"
OUTPUT_CONTROL_POLICY = "ControlInvokePolicyArn"
SITE_AGENTS = "SiteAgents"


def agent_role_output(site: str) -> str:
    """The stack output naming a site agent's role: `AgentRoleArnDcA` for dc-a (its credential_process needs it)."""
    return "AgentRoleArn" + "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", site))


# Environment of every function: the names `dcwatch.runtime.Settings.from_env` reads (tables: wiring.TABLES).
ENV_CONFIG = "DCWATCH_CONFIG"
ENV_BUS_NAME = "DCWATCH_BUS_NAME"
ENV_TOPIC_ARN = "DCWATCH_TOPIC_ARN"
ENV_REPORTS_BUCKET = "DCWATCH_REPORTS_BUCKET"
ENV_STATE_MACHINE_ARN = "DCWATCH_STATE_MACHINE_ARN"
ENV_VANTAGE = "DCWATCH_VANTAGE"
ENV_SCHEDULE_PERIOD_S = "DCWATCH_SCHEDULE_PERIOD_S"
ENV_HOME_REGION = "DCWATCH_HOME_REGION"
POWERTOOLS_SERVICE = "dcwatch"


def function_id(key: str) -> str:
    return key


def probe_id(vantage: str) -> str:
    """`Probe` for the public vantage point (the one every deployment has), `Probe-aws-vpc` for the others."""
    return "Probe" if vantage == VANTAGE_PUBLIC else f"Probe-{vantage}"


# The alias the workflow invokes when its step functions are kept warm (`-c warm_steps=N`).
WARM_ALIAS = "warm"


def warm_alias_id(function_key: str) -> str:
    return f"{function_key}Warm"


def role_id(construct_id: str) -> str:
    return f"{construct_id}Role"


def function_logs_id(construct_id: str) -> str:
    return f"{construct_id}Logs"


def schedule_id(construct_id: str) -> str:
    return f"{construct_id}Schedule"


def rule_id(name: str) -> str:
    return f"Rule-{name}"


def queue_id(rule: str) -> str:
    return f"Queue-{rule}"


def dead_letter_id(rule: str) -> str:
    return f"DeadLetters-{rule}"


def table_id(key: str) -> str:
    return f"{key}Table"


# Physical names: what an operator sees in the console and passes to the CLI.
def stack_name(deployment: str) -> str:
    return f"dcwatch-{deployment}"


def probe_stack_name(deployment: str, region: str) -> str:
    return f"dcwatch-{deployment}-probe-{region}"


def probe_role_name(deployment: str, vantage: str) -> str:
    """The probe role's name: the bus policy names it, in every region's stack (IAM: at most 64 characters,
    unique in the account; a longer one keeps its start and a digest of the whole)."""
    name = f"dcwatch-{deployment}-probe-{vantage}"
    if len(name) <= 64:
        return name
    return f"{name[:55]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def bus_name(deployment: str) -> str:
    return f"dcwatch-{deployment}"


def archive_name(deployment: str) -> str:
    return f"dcwatch-{deployment}"


def state_machine_name(deployment: str) -> str:
    return f"dcwatch-{deployment}-failover"


def dashboard_name(deployment: str) -> str:
    return f"dcwatch-{deployment}"


def alarm_name(deployment: str, what: str) -> str:
    return f"dcwatch-{deployment}-{what}"


def metrics_namespace(deployment: str) -> str:
    """Powertools' namespace for the deployment's functions (see `dcwatch.observability`)."""
    return f"dcwatch/{deployment}"
