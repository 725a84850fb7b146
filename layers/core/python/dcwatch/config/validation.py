"""The config's problems between fields: each check returns what it finds as `path: message`, so that the
operator sees every problem at once. `Config` calls `config_problems`; the loader `cross_problems` alone
when some fields are already invalid."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from dcwatch.config.checks import VCENTER_PREFIX, check_address
from dcwatch.config.fencing import PROOF_REPORT_SLACK_S
from dcwatch.config.fields import fields_named
from dcwatch.config.hooks import DRILL_HOOK_STEPS, group_hooks
from dcwatch.config.sites import ROUTINGS
from dcwatch.config.workflow import (
    DRILL_CLONE_INFIX,
    DRILL_RUN_LENGTH,
    LEASE_MARGIN_S,
    STEP_OWN_WORK_S,
    STEP_TIMEOUT_S,
    VM_NAME_MAX,
)

if TYPE_CHECKING:
    from dcwatch.config.schema import Config


def config_problems(config: Config) -> list[str]:
    """Every problem between the fields of a config whose fields are each valid; the topology's last, as it is
    computed from a config otherwise valid."""
    problems = cross_problems(config.model_dump())
    problems = problems or _decision_problems(config) + _drill_problems(config) + _hook_budget_problems(config)
    problems = problems or _fencing_problems(config) + _secret_problems(config)
    if not problems:
        from dcwatch.topology import topology_problems  # imports the config: not at import time

        problems = topology_problems(config, config.topology)
    return problems


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def cross_problems(data: Any) -> list[str]:
    """Problems between fields, read from plain data so they are found even when some fields are invalid."""

    data = _mapping(data)
    names = [_mapping(s).get("name") for s in _items(data.get("sites"))]
    problems: list[str] = []
    if len(set(names)) != len(names):
        problems.append(f"sites: names must differ, got {names}")
    if "active_site" in data and data["active_site"] not in names:
        problems.append(f"active_site: {data['active_site']!r} is not one of the sites {names}")
    services = [_mapping(s) for s in _items(data.get("services"))]
    seen: set[Any] = set()
    for i, service in enumerate(services):
        where = f"services[{i}]"
        if service.get("name") in seen:
            problems.append(f"{where}.name: duplicate service {service.get('name')!r}")
        seen.add(service.get("name"))
        at_sites = _mapping(service.get("sites"))
        if sorted(map(str, at_sites)) != sorted(map(str, names)):
            problems.append(f"{where}.sites: needs exactly the sites {sorted(map(str, names))}, got {sorted(at_sites)}")
        problems += _routing_problems(f"{where}.dns", _mapping(service.get("dns")), names)
        record_type = _mapping(service.get("dns")).get("type", "A")
        for site_name, at_site in at_sites.items():
            for value in _items(_mapping(at_site).get("dns_values")):
                if isinstance(value, str) and (error := _dns_value_error(record_type, value)):
                    problems.append(f"{where}.sites.{site_name}.dns_values: {error}")
    for site in names:
        at = [_mapping(_mapping(svc.get("sites")).get(str(site))) for svc in services]
        vm_names = [_mapping(vm).get("name") for a in at for vm in _items(a.get("vms"))]
        dupes = sorted({n for n in vm_names if vm_names.count(n) > 1 and isinstance(n, str)})
        if dupes:
            problems.append(f"services: VM names repeat at site {site}: {dupes}")
        site_doc = next((_mapping(x) for x in _items(data.get("sites")) if _mapping(x).get("name") == site), {})
        check_names = [_mapping(c).get("name") for a in [*at, site_doc] for c in _items(a.get("checks"))]
        dupes = sorted({n for n in check_names if check_names.count(n) > 1 and isinstance(n, str)})
        if dupes:
            problems.append(f"checks: names repeat at site {site}: {dupes}")
        reserved = sorted(n for n in check_names if isinstance(n, str) and n.startswith(VCENTER_PREFIX))
        if reserved:
            problems.append(f"checks: names starting with {VCENTER_PREFIX!r} belong to the vCenter check: {reserved}")
    problems += _recovery_problems(data, names, services)
    service_names = [s.get("name") for s in services]
    for i, window in enumerate(_mapping(w) for w in _items(data.get("maintenance"))):
        if "site" in window and window["site"] not in names:
            problems.append(f"maintenance[{i}].site: {window['site']!r} is not one of the sites {names}")
        if window.get("service") is not None and window["service"] not in service_names:
            problems.append(
                f"maintenance[{i}].service: {window['service']!r} is not one of the services {service_names}"
            )
    return problems


def _recovery_problems(data: dict[str, Any], sites: list[Any], services: list[dict[str, Any]]) -> list[str]:
    """Dependencies inside a priority group (known VMs of the same group and site, no cycle), group settings,
    and the storage mirror check each site's failover reads."""

    problems: list[str] = []
    for site in sites:
        where: dict[str, str] = {}  # VM name -> its path in the file
        group: dict[str, Any] = {}
        after: dict[str, list[Any]] = {}
        for i, service in enumerate(services):
            for j, vm in enumerate(_items(_mapping(_mapping(service.get("sites")).get(site)).get("vms"))):
                if isinstance(vm, dict) and isinstance(vm.get("name"), str):
                    where[vm["name"]] = f"services[{i}].sites.{site}.vms[{j}]"
                    group[vm["name"]] = vm.get("group", 1)
                    after[vm["name"]] = _items(vm.get("after"))
        for vm, needs in after.items():
            for other in needs:
                if other not in group:
                    problems.append(f"{where[vm]}.after: unknown VM {other!r} at site {site}")
                elif group[other] != group[vm]:
                    problems.append(
                        f"{where[vm]}.after: {other!r} is in group {group[other]}, not in group {group[vm]}; "
                        "a later group already waits for every earlier one"
                    )
        cycle = _dependency_cycle({vm: [o for o in needs if o in group] for vm, needs in after.items()})
        if cycle:
            problems.append(f"{where[cycle[0]]}.after: dependency cycle {' -> '.join(cycle)}")
    lease = _mapping(data.get("workflow")).get("lease_s", 900)
    for i, site_doc in enumerate(_items(data.get("sites"))):
        if not isinstance(site_doc, dict):
            continue
        numbers = [g.get("group") for g in _items(site_doc.get("groups")) if isinstance(g, dict)]
        if len(set(numbers)) != len(numbers):
            problems.append(f"sites[{i}].groups: each group may be listed once, got {numbers}")
        for j, settings in enumerate(g for g in _items(site_doc.get("groups")) if isinstance(g, dict)):
            timeout = settings.get("timeout_s")
            if isinstance(timeout, int) and isinstance(lease, int) and timeout + LEASE_MARGIN_S > lease:
                problems.append(
                    f"sites[{i}].groups[{j}].timeout_s: {timeout} s plus {LEASE_MARGIN_S} s exceeds workflow.lease_s "
                    f"{lease}: the lock would expire while the group is still awaited"
                )
        storage = site_doc.get("storage")
        if isinstance(storage, dict) and "check" in storage:
            kinds = {
                c.get("name"): c.get("kind", "http") for c in _items(site_doc.get("checks")) if isinstance(c, dict)
            }
            if storage["check"] not in kinds:
                problems.append(
                    f"sites[{i}].storage.check: {storage['check']!r} is not a check of site "
                    f"{site_doc.get('name')} (sites[{i}].checks: {sorted(map(str, kinds))})"
                )
            elif kinds[storage["check"]] != "http":
                problems.append(
                    f"sites[{i}].storage.check: {storage['check']!r} must be an http check (the mirror status)"
                )
    return problems


def _dependency_cycle(after: dict[str, list[str]]) -> list[str]:
    """One cycle of the dependency graph, as a path back to its start ([] when there is none)."""
    done: set[str] = set()

    def visit(vm: str, path: list[str]) -> list[str]:
        if vm in path:
            return path[path.index(vm) :] + [vm]
        if vm in done:
            return []
        for other in after.get(vm, []):
            if found := visit(other, [*path, vm]):
                return found
        done.add(vm)
        return []

    for start in sorted(after):
        if cycle := visit(start, []):
            return cycle
    return []


def rule_minimum(rule: str) -> int:
    """The fewest DOWN checks a rule needs: 'all' and 'any' need one at least, 'at_least N' needs N."""
    return int(rule.split()[1]) if rule.startswith("at_least") else 1


def _decision_problems(config: Config) -> list[str]:
    """Decision knobs that could never hold, or would move production on too little evidence."""
    problems = []
    t, vantages = config.thresholds, config.vantage_points
    if t.quorum is not None and t.quorum > len(vantages):
        problems.append(
            f"thresholds.quorum: {t.quorum} exceeds the {len(vantages)} vantage points ({', '.join(vantages)}): "
            "no site could ever be DOWN"
        )
    if t.effective_quorum == 1 and not t.allow_single_vantage:
        problems.append(
            "thresholds.quorum: 1 lets a single vantage point move production, "
            "set thresholds.allow_single_vantage: true to accept that"
        )
    for site in config.sites:
        if rule_minimum(t.site_rule) > (have := config.critical_checks(site.name)):
            problems.append(f"thresholds.site_rule: {t.site_rule!r} but site {site.name} has {have} critical checks")
        for service in config.services:
            if rule_minimum(t.service_rule) > (have := config.critical_checks(site.name, service.name)):
                problems.append(
                    f"thresholds.service_rule: {t.service_rule!r} but service {service.name} has {have} critical "
                    f"checks at {site.name}"
                )
    return problems


def _secret_problems(config: Config) -> list[str]:
    """A `headers_secret` that is the vCenter's login or the agents' heartbeat key would send it to an HTTP
    endpoint as headers: refused, whatever the endpoint."""
    kept = {s.vcenter.credentials_secret: f"sites.{s.name}.vcenter.credentials_secret" for s in config.sites}
    if config.fencing is not None and config.fencing.secret_id is not None:
        kept[config.fencing.secret_id] = "fencing.secret_id"
    return [
        f"{where}: {secret!r} is the secret of {kept[secret]} (sent as headers it would leave): "
        "give the headers a secret of their own"
        for where, secret in fields_named(config.model_dump(), "headers_secret")
        if secret in kept
    ]


def _fencing_problems(config: Config) -> list[str]:
    """Agent timings that leave no time to fence before AWS may act, agents that do not match the sites, and a
    lease proof the failover lock would not outlast."""
    f = config.fencing
    if f is None:
        return []
    problems = []
    sites = sorted(s.name for s in config.sites)
    if f.agents and sorted(f.agents) != sites:
        problems.append(f"fencing.agents: needs exactly one agent per site {sites}, got {sorted(f.agents)}")
    if f.margin_s >= f.lease_ttl_s:
        problems.append(
            f"fencing.margin_s: {f.margin_s:g} must be less than lease_ttl_s {f.lease_ttl_s:g}: "
            "the agent fences at lease_ttl_s - margin_s after its last renewal"
        )
    elif f.renew_s * 3 > f.fence_after_s:
        problems.append(
            f"fencing.renew_s: {f.renew_s:g} x 3 exceeds lease_ttl_s - margin_s ({f.lease_ttl_s:g} - {f.margin_s:g} = "
            f"{f.fence_after_s:g}): the agent needs three renewals before it would fence"
        )
    if f.agents and (f.secret_file is None) == (f.secret_id is None):
        problems.append("fencing.secret_file: give exactly one of secret_file or secret_id (the shared heartbeat key)")
    for site, agent in sorted(f.agents.items()):
        if not agent.power_off_vms and agent.fence_hook is None:
            problems.append(
                f"fencing.agents.{site}: power_off_vms is off and there is no fence_hook: a fence would stop nothing"
            )
    listens = [a.listen for a in f.agents.values()]
    if len(set(listens)) != len(listens):
        problems.append(f"fencing.agents: the agents must listen on different addresses, got {listens}")
    budget = f.proof_wait_budget_s + LEASE_MARGIN_S
    if f.agents and config.workflow.lease_s < budget:
        problems.append(
            f"fencing.proof_waits: {f.proof_waits} waits of up to {f.act_after_s + f.renew_s + PROOF_REPORT_SLACK_S:g} "
            f"s for the lease proof need workflow.lease_s of at least {budget:g} (the failover lock would expire "
            f"while the workflow waits), got {config.workflow.lease_s}"
        )
    return problems


def _drill_problems(config: Config) -> list[str]:
    """A drill that would touch production, or name what does not exist."""
    if config.drill is None:
        return []
    services = {s.name: s for s in config.services}
    production = {s.dns.name: s.name for s in config.services}
    problems, seen = [], set()
    for i, drill in enumerate(config.drill.services):
        where = f"drill.services[{i}]"
        if drill.name not in services:
            problems.append(f"{where}.name: {drill.name!r} is not one of the services {sorted(services)}")
        elif drill.dns.type != services[drill.name].dns.type:
            problems.append(
                f"{where}.dns.type: {drill.dns.type} but the service's record is {services[drill.name].dns.type}: "
                "the drill record takes the standby's dns_values"
            )
        if drill.dns.routing != "simple":
            problems.append(
                f"{where}.dns.routing: {drill.dns.routing} but a drill record is a simple record "
                "(it is restored to what it held before the drill)"
            )
        if drill.dns.name in production:
            problems.append(
                f"{where}.dns.name: {drill.dns.name} is the production record of service "
                f"{production[drill.dns.name]}; a drill never touches production"
            )
        if drill.dns.name in seen:
            problems.append(f"{where}.dns.name: {drill.dns.name} is named twice")
        seen.add(drill.dns.name)
        problems += _drill_isolation_problems(config, where, drill)
    return problems


def _drill_isolation_problems(config: Config, where: str, drill: Any) -> list[str]:
    """Drill addresses that are production's, and clone names vSphere would refuse."""
    values: dict[str, tuple[str, str]] = {}
    checked: dict[str, tuple[str, str, str]] = {}
    for service in config.services:
        for site, at in service.sites.items():
            for value in at.dns_values:
                values.setdefault(value, (service.name, site))
            for check in at.checks:
                checked.setdefault(check_address(check), (service.name, site, check.name))
    problems = [
        f"{where}.dns_values: {v} is a production address of {values[v][0]} at {values[v][1]}, not the clones' "
        "address on the drill network"
        for v in drill.dns_values
        if v in values
    ]
    for j, check in enumerate(drill.checks):
        if (address := check_address(check)) in checked:
            owner, site, name = checked[address]
            problems.append(
                f"{where}.checks[{j}]: {address} is where {owner}/{name} checks production at {site}, not a "
                "clone's address on the drill network"
            )
    names = [c.name for c in drill.checks]
    problems += [f"{where}.checks: {n} is named twice" for n in sorted({n for n in names if names.count(n) > 1})]
    drilled = next((s for s in config.services if s.name == drill.name), None)  # named wrongly: said above
    longest = max((vm.name for at in drilled.sites.values() for vm in at.vms), key=len, default="") if drilled else ""
    if len(longest) + len(DRILL_CLONE_INFIX) + DRILL_RUN_LENGTH > VM_NAME_MAX:
        problems.append(
            f"{where}.name: VM {longest}'s drill clone would be named beyond vSphere's {VM_NAME_MAX} characters "
            f"({longest}{DRILL_CLONE_INFIX}<{DRILL_RUN_LENGTH} characters>)"
        )
    return problems


def _routing_problems(where: str, record: dict[str, Any], sites: list[Any]) -> list[str]:
    """A routing policy without its record sets, or with record sets of another policy."""
    routing = record.get("routing", "simple")
    if routing not in ROUTINGS:
        return []
    problems = [
        f"{where}.{other}: only a {other} record has {other} record sets, this one is routing {routing}"
        for other in ("weighted", "failover")
        if other != routing and record.get(other) is not None
    ]
    given = record.get(routing) if routing != "simple" else None
    if routing == "weighted":
        if not isinstance(given, dict):
            return [
                *problems,
                f"{where}.weighted: routing weighted needs a record set per site {sites}, "
                "each with set_identifier and weight",
            ]
        if sorted(map(str, given)) != sorted(map(str, sites)):
            problems.append(f"{where}.weighted: needs exactly the sites {sorted(map(str, sites))}, got {sorted(given)}")
        ids = [s.get("set_identifier") for s in given.values() if isinstance(s, dict)]
        if len(set(ids)) != len(ids):
            problems.append(f"{where}.weighted: each site needs its own set_identifier, got {ids}")
    elif routing == "failover":
        if not isinstance(given, dict):
            return [
                *problems,
                f"{where}.failover: routing failover needs the set identifiers {{primary: ..., secondary: ...}}",
            ]
        if given.get("primary") is not None and given.get("primary") == given.get("secondary"):
            problems.append(f"{where}.failover: primary and secondary are both {given.get('primary')!r}")
    return problems


def _hook_budget_problems(config: Config) -> list[str]:
    """The hooks one StartGroup or CheckGroup call may run, back to back, must fit in the step's Lambda."""
    budget = STEP_TIMEOUT_S - STEP_OWN_WORK_S
    problems = []
    for site in config.sites:
        at_site = [s.sites[site.name] for s in config.services if site.name in s.sites]
        for number in sorted({vm.group for at in at_site for vm in at.vms}):
            for step, hooks in group_hooks(config, site.name, number).by_step().items():
                total = sum(p.hook.timeout_s for p in hooks)
                if total > budget:
                    longest = max(hooks, key=lambda p: p.hook.timeout_s).path
                    listed = ", ".join(f"{p.hook.name} {p.hook.timeout_s:g} s" for p in hooks)
                    problems.append(
                        f"{longest}.timeout_s: the hooks one {step} step runs for group {number} at {site.name} "
                        f"may take {total:g} s together ({listed}), more than the {budget} s a step Lambda "
                        f"({STEP_TIMEOUT_S} s, {STEP_OWN_WORK_S} s kept for its own work) leaves them; lower their "
                        "timeout_s or spread the hooks over groups"
                    )
    drill = config.drill
    for step, field in zip(DRILL_HOOK_STEPS, ("snapshot_hook", "snapshot_cleanup_hook"), strict=True):
        hook = getattr(drill, field) if drill else None
        if hook is not None and hook.timeout_s > budget:
            problems.append(
                f"drill.{field}.timeout_s: {hook.timeout_s:g} s, more than the {budget} s a {step} step Lambda "
                f"({STEP_TIMEOUT_S} s, {STEP_OWN_WORK_S} s kept for its own work) leaves it: lower it, or have "
                "the hook answer once the snapshot is under way"
            )
    return problems


def _dns_value_error(record_type: str, value: str) -> str | None:
    try:
        if record_type == "A":
            ipaddress.IPv4Address(value)
        elif record_type == "AAAA":
            ipaddress.IPv6Address(value)
    except ValueError:
        return f"{value!r} is not a valid {record_type} value"
    return None
