"""A deployment's workload, counted from a config (its topology and wiring) or made up (`dcwatch cost --checks`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dcwatch.config import Config
from dcwatch.cost.assumptions import ASSUMED, Assumptions
from dcwatch.cost.route53 import route53_equivalent
from dcwatch.cost.transitions import executions
from dcwatch.cost.workload import Route53Equivalent, VantageLoad, Workload
from dcwatch.topology import VANTAGE_PUBLIC, VANTAGE_VPC, aws_calls, in_vpc_functions, vantage_of_region
from dcwatch.wiring import RULES


def workload_from_config(config: Config, source: str, a: Assumptions = ASSUMED) -> Workload:
    """What the config deploys: its vantage points and the checks each runs (`dcwatch.topology`)."""
    model = config.topology
    specs: dict[tuple[str, str], Any] = {}
    for site in config.sites:
        specs.update({(site.name, c.name): c for c in site.checks})
        for service in config.services:
            specs.update({(site.name, c.name): c for c in service.sites[site.name].checks})
    vantages = []
    for v in model.vantage_points:
        by_site = tuple((s.name, sum(1 for site, _ in v.checks if site == s.name)) for s in config.sites)
        public = sum(1 for key in v.checks if model.endpoint(*key).reach == "public")
        vcenters = len({site for site, check in v.checks if check.startswith("vcenter")})
        vantages.append(VantageLoad(v.name, v.placement.in_vpc, by_site, public, vcenters))
    route53 = tuple(route53_equivalent(f"{e.check}@{e.site}", specs.get(e.key), e.reach) for e in model.endpoints)
    secrets = {s.vcenter.credentials_secret for s in config.sites}
    if config.fencing and config.fencing.secret_id:
        secrets.add(config.fencing.secret_id)
    vpc = in_vpc_functions(model)
    apis = tuple(sorted({api for key in vpc for api in aws_calls(config, key)}))
    agents = len(config.fencing.agents) if config.fencing else 0
    return Workload(
        name=config.name,
        interval_s=config.probe.interval_s,
        vantages=tuple(vantages),
        route53=route53,
        check_metrics=config.probe.check_metrics,
        sites=tuple(s.name for s in config.sites),
        secrets=len(secrets),
        vpc_apis=apis if vpc else (),
        subnets=len(config.network.subnet_ids) if config.network else 0,
        alarms=alarm_count(
            [v.name for v in model.vantage_points],
            [v.placement.region for v in model.vantage_points],
            drill_schedule=config.drill is not None and config.drill.schedule is not None,
        ),
        agents=agents,
        agent_renew_s=config.fencing.renew_s if config.fencing else 0.0,
        executions=executions(config, a),
        source=source,
    )


def alarm_count(vantages: Sequence[str], regions: Sequence[str | None], *, drill_schedule: bool = False) -> int:
    """Mirrors `infra/dcwatch_infra/monitoring.py`: per vantage point the watchdog, per probe in the home stack
    its errors and its lost results; the evaluator's errors, failed and timed-out failovers, ExecutionEnded,
    the two failed notifications (Notify, NotifyFailure);
    each rule's dead-letter queue (a queued rule's, or its async target's), and the drill schedule's."""
    home = sum(1 for region in regions if region is None)
    return len(vantages) + 2 * home + 6 + len(RULES) + drill_schedule


def synthetic_workload(
    checks: int, interval_s: int, vantages: int, a: Assumptions = ASSUMED, *, check_metrics: bool = True
) -> Workload:
    """`checks` public HTTPS checks with a body match, half at each of two sites, every one run from each of
    `vantages` vantage points (aws-public, then aws-vpc, then aws-<second region>) as the issue's generated
    configs do; a VPC means a NAT gateway and the workflow's site steps inside it."""
    if not 1 <= vantages <= 3:
        raise ValueError(f"--vantages {vantages}: a deployment has 1 to 3 vantage points (public, VPC, second region)")
    if checks < 2:
        raise ValueError(f"--checks {checks}: at least one check per site")
    names = [VANTAGE_PUBLIC, VANTAGE_VPC, vantage_of_region("us-west-2")][:vantages]
    sites = ("dc-a", "dc-b")
    by_site = ((sites[0], checks - checks // 2), (sites[1], checks // 2))
    loads = tuple(VantageLoad(name, name == VANTAGE_VPC, by_site, checks) for name in names)
    route53 = tuple(Route53Equivalent(f"check-{i}", "HTTPS_STR_MATCH") for i in range(checks))
    vpc = vantages >= 2
    return Workload(
        name=f"{checks} checks every {interval_s} s from {vantages} vantage points",
        interval_s=interval_s,
        vantages=loads,
        route53=route53,
        check_metrics=check_metrics,
        sites=sites,
        secrets=2,  # the sites' vCenter credentials, which the workflow's steps read
        vpc_apis=("events", "secretsmanager", "xray") if vpc else (),
        subnets=2 if vpc else 0,
        alarms=alarm_count(names, [None, None, "us-west-2"][:vantages]),
        agents=0,
        agent_renew_s=0.0,
        executions=executions(None, a),
        source="synthetic",
    )
