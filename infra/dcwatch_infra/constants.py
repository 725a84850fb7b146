"""Names of the stack's constructs and AWS resources, and the paths its assets come from."""

from __future__ import annotations

from pathlib import Path

import dcwatch
from dcwatch.wiring import REPO_ROOT

# Where the inputs of the synth live.
DEMO_CONFIG = Path(dcwatch.__file__).with_name("local") / "demo.yaml"
CORE_LAYER_DIR = REPO_ROOT / "layers" / "core"
PYPROJECT = REPO_ROOT / "pyproject.toml"
ASSETS_DIR = Path(__file__).with_name("assets")
DEPS_PLACEHOLDER_DIR = ASSETS_DIR / "deps-placeholder"
CONFIG_LAYER_SOURCE_DIR = ASSETS_DIR / "config-layer"

# Never shipped in a function or layer: bytecode caches, build metadata, the local runtime.
CODE_EXCLUDES = ["**/__pycache__", "**/*.pyc", "*.egg-info"]
CORE_LAYER_EXCLUDES = [*CODE_EXCLUDES, "python/dcwatch/local", "python/dcwatch/local/**"]

# The config file inside the config layer, and where Lambda mounts it (layers extract to /opt).
CONFIG_IN_LAYER = "dcwatch/config.yaml"
CONFIG_IN_LAMBDA = f"/opt/{CONFIG_IN_LAYER}"

# Third-party packages the Lambda Python runtime already provides; the deps layer leaves them out.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore"})
LAMBDA_PYTHON_VERSION = "3.12"
# Lambda's Python 3.12 runs on Amazon Linux 2023 (glibc 2.34): manylinux2014 and 2_28 wheels both fit.
LAMBDA_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")

# Construct ids (stable: they decide the CloudFormation logical ids).
BUS = "Bus"
PROBE_SCHEDULE = "ProbeSchedule"
PROBE_SCHEDULE_ROLE = "ProbeScheduleRole"
STATE_TABLE = "State"
ALERTS_TOPIC = "Alerts"
ALERTS_KEY = "AlertsKey"
FAILOVER = "Failover"
FAILOVER_LOGS = "FailoverLogs"
CORE_LAYER = "CoreLayer"
CONFIG_LAYER = "ConfigLayer"
DEPS_LAYER = "DepsLayer"
OUTPUT_BUS_NAME = "BusName"
OUTPUT_STATE_MACHINE_ARN = "StateMachineArn"
OUTPUT_TOPIC_ARN = "TopicArn"
OUTPUT_TABLE_NAME = "TableName"

# Environment of every function: the names `dcwatch.runtime.Settings.from_env` reads.
ENV_CONFIG = "DCWATCH_CONFIG"
ENV_BUS_NAME = "DCWATCH_BUS_NAME"
ENV_TABLE_NAME = "DCWATCH_TABLE_NAME"
ENV_TOPIC_ARN = "DCWATCH_TOPIC_ARN"
ENV_STATE_MACHINE_ARN = "DCWATCH_STATE_MACHINE_ARN"
POWERTOOLS_SERVICE = "dcwatch"

SNS_MANAGED_KEY_ALIAS = "alias/aws/sns"


def function_id(key: str) -> str:
    return key


def function_logs_id(key: str) -> str:
    return f"{key}Logs"


def rule_id(name: str) -> str:
    return f"Rule-{name}"


def vcenter_secret_id(site: str) -> str:
    return f"VcenterSecret-{site}"


# Physical names: what an operator sees in the console and passes to the CLI.
def stack_name(deployment: str) -> str:
    return f"dcwatch-{deployment}"


def bus_name(deployment: str) -> str:
    return f"dcwatch-{deployment}"


def state_machine_name(deployment: str) -> str:
    return f"dcwatch-{deployment}-failover"
