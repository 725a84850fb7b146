"""The one config file: sites, services, DNS records, recovery groups, thresholds, alerts.

`load_config` turns a YAML file into a `Config` (`schema`, its sections in `checks`, `sites`, `workflow`,
`fencing`) or raises `ConfigError` listing every problem by its path in the file (`validation`), so an operator
can fix them all at once. Re-exported here: what the other packages use.
"""

from dcwatch.config.checks import VCENTER_PREFIX, DnsCheck, HttpCheck, TcpCheck, TlsCheck, VCenter, VcenterProbe
from dcwatch.config.fencing import PROOF_REPORT_SLACK_S, Fencing
from dcwatch.config.fields import Name, Reach, RecoveryMode, unbuilt_default
from dcwatch.config.loader import ConfigError, config_schema, load_config, parse_config
from dcwatch.config.schema import REGION_PATTERN, Config, MaintenanceWindow, Network, Thresholds
from dcwatch.config.sites import MANUAL_PREFIX, DnsRecord, Hook, Service
from dcwatch.config.validation import rule_minimum
from dcwatch.config.workflow import STEP_OWN_WORK_S, STEP_TIMEOUT_S, workflow_timeout_s

__all__ = [
    "MANUAL_PREFIX", "PROOF_REPORT_SLACK_S", "REGION_PATTERN", "STEP_OWN_WORK_S", "STEP_TIMEOUT_S", "VCENTER_PREFIX",
    "Config", "ConfigError", "DnsCheck", "DnsRecord", "Fencing", "Hook", "HttpCheck", "MaintenanceWindow", "Name",
    "Network", "Reach", "RecoveryMode", "Service", "TcpCheck", "Thresholds", "TlsCheck", "VCenter", "VcenterProbe",
    "config_schema", "load_config", "parse_config", "rule_minimum", "unbuilt_default", "workflow_timeout_s",
]  # fmt: skip
