"""What the config does not say (bytes per result, milliseconds per call, failovers a month): every figure the
bill rests on that is neither read from the config nor a price."""

from __future__ import annotations

from dataclasses import dataclass

from dcwatch.cost.prices import KB
from dcwatch.events import ROUND_CHUNK


@dataclass(frozen=True)
class Assumptions:
    """What the config does not say; each is printed beside the line it moves."""

    results_per_event: int = ROUND_CHUNK  # the round contract's chunk: up to this many results per event
    result_bytes: int = 300  # one result inside a round event
    event_envelope_bytes: int = 600
    strongly_consistent: bool = True  # the evaluator's Query reads consistently (what the last batch wrote)
    evaluator_base_ms: float = 150.0  # one round invocation of the evaluator, plus per result below
    evaluator_result_ms: float = 0.2
    per_result_evaluator_ms: float = 40.0  # the old design: one invocation per result
    probe_round_base_s: float = 1.0  # a round waits for its slowest check (timeouts are 1-5 s)
    probe_round_check_s: float = 0.002  # and costs CPU per check at 512 MB
    esm_pollers: int = 5  # Lambda's idle long-polling connections on the queue (fewer when quiet: up to 5)
    agent_report_ms: float = 100.0
    agent_report_bytes: int = 1600  # events/samples/SiteAgentReport.json
    step_ms: float = 1000.0  # one workflow step Lambda call
    boot_s: float = 120.0  # a priority group's VMs up at the standby (CheckGroup polls until then)
    dns_insync_s: float = 60.0  # Route 53 change to INSYNC
    drills_per_month: float = 1.0
    failovers_per_month: float = 0.0
    alerts_per_month: float = 50.0
    log_bytes_per_invocation: int = 800  # START/END/REPORT lines and one structured line
    probe_round_log_bytes: int = 600
    site_emf_bytes: int = 400  # one EMF record per site and vantage per round, plus per result below
    site_emf_result_bytes: int = 40
    check_emf_bytes: int = 450  # one EMF record per check per round (probe.check_metrics)
    check_bytes_out: int = 1 * KB  # a check's request and TLS handshake, leaving AWS
    check_bytes_nat: int = 6 * KB  # both directions of a check through a NAT gateway
    nat_gateways: int = 1
    secret_cache_s: float = 300.0  # dcwatch.adapters.secrets.MAX_AGE_S


ASSUMED = Assumptions()
