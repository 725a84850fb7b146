"""`python -m bench.imports`: what a cold start of each handler costs, before and after the lazy imports,
and what the cold starts of a first disaster failover cost in AWS.

Every figure is the fastest of `--runs` fresh interpreters (`python -X importtime`; CPU time of the
process, so that other work on the machine blurs it less), each in two parts whose sum is the cold
start: `import`, the handler's module as Lambda's init imports it; `first-init`, what its first
invocation does before its own work, without the network: the config loaded, the App parts its code names
built with their AWS clients (the adapter modules imported with them), the pydantic models of the event it
parses built. "Before" is the same handler with every adapter and the X-Ray SDK, as the eager imports of
`dcwatch.runtime` and the Powertools Tracer loaded them for every handler. `import boto3` alone, measured
the same way, is the baseline every Python Lambda that calls AWS pays; the figure without it is printed
beside the sum.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import CodeType, ModuleType
from typing import Any

from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.local.lambdas import load_module
from dcwatch.runtime import App
from dcwatch.wiring import FUNCTIONS_DIR, REPO_ROOT, STEPS, function, step

HEAVY = ("pyVmomi", "aiohttp", "aws_xray_sdk", "dns", "boto3")
XRAY = "aws_xray_sdk.core"
ALL_ADAPTERS = tuple(
    f"dcwatch.adapters.{p.stem}"
    for p in sorted((REPO_ROOT / "layers/core/python/dcwatch/adapters").glob("*.py"))
    if p.stem != "__init__"
)
# A disaster failover that fences the failed site, in the order the workflow runs its Tasks (no approval).
DISASTER_PATH = (
    "ValidateRequest",
    "AcquireLease",
    "CheckStandby",
    "CheckStorage",
    "Fence",
    "StartGroup",
    "CheckGroup",
    "VerifyServices",
    "SwitchDns",
    "CheckDns",
    "Notify",
    "RecordAudit",
    "ReleaseLease",
)
# Memory of every step function before they became two (FunctionSpec's default).
BEFORE_MEMORY_MB = 256
# Lambda gives a function the CPU share memory / 1769 MB of one vCPU (the Lambda developer guide, "Memory").
VCPU_MB = 1769

# Each event model a handler's first invocation validates (their validators are built then, not at import).
EVENT_MODELS = {
    "Probe": ("dcwatch.events.ProbeResult",),
    "Evaluate": ("dcwatch.events.ProbeRound",),
    "AgentReports": ("dcwatch.agent.report.SiteAgentReportEvent",),
    "Control": ("dcwatch.control.ControlRequest",),
    "ExecutionEnded": ("dcwatch.recovery.executions.ExecutionStatusChange",),
}
STEP_MODELS = ("dcwatch.recovery.state.WorkflowState",)

_MEASURE = """
import importlib, importlib.util, json, os, sys, time
path, config, preload, modules, parts, models, heavy = sys.argv[1:8]
clock = time.process_time
begun = clock()
spec = importlib.util.spec_from_file_location("handler", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
for name in filter(None, preload.split(",")):
    importlib.import_module(name)
imported = clock() - begun
begun = clock()
from dcwatch import runtime
os.environ["DCWATCH_CONFIG"] = config
app = runtime.app()
app.config
for name in filter(None, modules.split(",")):
    importlib.import_module(name)
for part in filter(None, parts.split(",")):
    built = getattr(app, part)
    for held in vars(built).values():
        if type(held).__name__ == "LazyClient":
            held()
for name in filter(None, models.split(",")):
    where, _, model = name.rpartition(".")
    getattr(importlib.import_module(where), model).model_rebuild()
first = clock() - begun
print(json.dumps({"import_s": imported, "first_s": first, "heavy": [h for h in heavy.split(",") if h in sys.modules]}))
"""
# The baseline: what a fresh interpreter pays for `import boto3`, the same way.
_BOTO3 = """
import json, time
clock = time.process_time
begun = clock()
import boto3
imported = clock() - begun
begun = clock()
boto3.client("dynamodb")
print(json.dumps({"import_s": imported, "first_s": clock() - begun, "heavy": ["boto3"]}))
"""


@dataclass(frozen=True)
class Case:
    """One cold start to measure: a handler's module, the modules and App parts its first invocation builds
    and the event models it validates."""

    label: str
    code: str  # functions/<code>/app.py
    modules: tuple[str, ...]
    parts: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    preload: tuple[str, ...] = ()  # imported with the handler (the eager imports before the lazy ones)


@dataclass(frozen=True)
class Measured:
    import_s: float
    first_s: float  # the first invocation's own initialisation (config, App parts and clients, event models)
    heavy: tuple[str, ...]
    largest: tuple[tuple[str, float], ...]  # top-level packages by import self time (wall), of that run

    @property
    def sum_s(self) -> float:
        return self.import_s + self.first_s


def _names(code: CodeType) -> set[str]:
    """Every global and attribute name a function's code (and the lambdas and functions inside it) uses."""
    found = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            found |= _names(const)
    return found


APP_PARTS = frozenset(name for name in vars(App) if not name.startswith("_")) - {"settings", "config", "vantage"}


def _code_of(attribute: Any) -> CodeType:
    if isinstance(attribute, cached_property):
        attribute = attribute.func
    return inspect.unwrap(attribute).__code__  # type: ignore[no-any-return]


def part_closure(part: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """`part` and the App parts it uses in turn (`probe` reads `secrets`, `inventory` reads `config`, ...)."""
    found = {part}
    for other in (_names(_code_of(vars(App)[part])) & APP_PARTS) - seen - {part}:
        found |= part_closure(other, seen | {part})
    return found


def part_modules(part: str) -> set[str]:
    """The adapter modules `App.<part>` imports on first use, with those of the parts it uses in turn."""
    return {n for p in part_closure(part) for n in _names(_code_of(vars(App)[p])) if n.startswith("dcwatch.adapters.")}


def parts_named(handler: Callable[..., Any], module: ModuleType) -> set[str]:
    """The App parts a handler's code names: itself, or through its module's functions (`judge` for the
    evaluator, `_renewed` for the steps that renew the lock, ...), and those a step's decorator declares it
    builds (`app_parts`: `inventory` for a site step, `once` for a step that acts once)."""
    names: set[str] = set(getattr(handler, "app_parts", ()))
    seen: set[str] = set()
    todo = [inspect.unwrap(handler)]
    while todo:
        found = _names(todo.pop().__code__)
        names |= found
        for name in sorted(found - seen):
            helper = getattr(module, name, None)
            if inspect.isfunction(helper) and helper.__module__ == module.__name__:
                seen.add(name)
                names |= set(getattr(helper, "app_parts", ()))
                todo.append(inspect.unwrap(helper))
    return names & APP_PARTS


def first_use(handler: Callable[..., Any], module: ModuleType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the adapter modules, the App parts built, with their clients) of a handler's first invocation. The
    methods among the parts (`probe`, `inventory`) reach the network: only their modules and parts count."""
    named = parts_named(handler, module)
    modules = sorted({m for part in named for m in part_modules(part)})
    built = sorted({p for part in named for p in part_closure(part) if isinstance(vars(App)[p], cached_property)})
    return tuple(modules), tuple(built)


def _case(
    label: str, code: str, uses: Sequence[tuple[tuple[str, ...], tuple[str, ...]]], models: Sequence[str]
) -> Case:
    modules = tuple(sorted({m for used, _ in uses for m in used}))
    parts = tuple(sorted({p for _, built in uses for p in built}))
    return Case(label, code, modules, parts, tuple(models))


def cases() -> tuple[list[Case], list[Case], dict[str, Case]]:
    """(before, after per handler and step, after per step function over the disaster path)."""
    after: list[Case] = []
    uses_of: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for key in ("Probe", "Evaluate", "AgentReports", "Control", "ExecutionEnded"):
        spec = function(key)
        module = load_module(spec.code)
        uses_of[key] = first_use(getattr(module, spec.handler.split(".", 1)[1]), module)
        after.append(_case(key, spec.code, [uses_of[key]], EVENT_MODELS[key]))
    failover = load_module("failover")
    per_step = {s.key: first_use(failover.STEPS[s.key], failover) for s in STEPS}
    after += [_case(f"{step(key).function}/{key}", "failover", [per_step[key]], STEP_MODELS) for key in per_step]
    # Before: the same first invocation, but the handler's import loaded every adapter and the X-Ray SDK.
    before = [
        _case(f"{key} (imported everything)", function(key).code, [uses_of[key]], EVENT_MODELS[key])
        for key in ("Probe", "Evaluate", "Control")
    ]
    before.append(_case("Steps (imported everything)", "failover", [per_step["ValidateRequest"]], STEP_MODELS))
    before = [Case(c.label, c.code, c.modules, c.parts, c.models, (*ALL_ADAPTERS, XRAY)) for c in before]
    path: dict[str, Case] = {}
    for key in dict.fromkeys(step(k).function for k in DISASTER_PATH):
        uses = [per_step[k] for k in DISASTER_PATH if step(k).function == key]
        path[key] = _case(f"{key}: every step of the path", "failover", uses, STEP_MODELS)
    return before, after, path


def _largest(importtime: str, count: int = 4) -> tuple[tuple[str, float], ...]:
    """Top-level packages by the self time `-X importtime` gives their modules, largest first."""
    by_package: dict[str, float] = {}
    for line in importtime.splitlines():
        if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|")
        package = name.strip().split(".")[0]
        by_package[package] = by_package.get(package, 0.0) + int(self_us) / 1e6
    return tuple(sorted(by_package.items(), key=lambda kv: -kv[1])[:count])


def _env() -> dict[str, str]:
    """This tree's code, tracing off (outside Lambda: the X-Ray SDK is a row of its own), credentials in the
    environment as Lambda gives them (so a client looks nowhere else), bytecode cached as a warm disk has it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DCWATCH_", "LAMBDA_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env |= {
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "layers/core/python"), str(REPO_ROOT)]),
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "DCWATCH_REPORTS_BUCKET": "bench-reports",  # as the stack sets it, so the report writer is built
    }
    return env


def _run(script: str, args: Sequence[str], runs: int, bytecode: bool = True) -> Measured:
    """Without `bytecode`, every module is compiled from its source, as in Lambda from layers without .pyc."""
    samples = []
    with tempfile.TemporaryDirectory(prefix="bench-imports-") as empty:
        env = _env() if bytecode else {**_env(), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": empty}
        for n in range(runs + 1):  # the first run writes the bytecode of what it imported and is not counted
            done = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", script, *args],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
                check=True,
            )
            if n:
                samples.append((json.loads(done.stdout), done.stderr))
    # The fastest run: other work on the machine only ever adds to a figure (timeit's reasoning).
    fastest, stderr = min(samples, key=lambda s: s[0]["import_s"] + s[0]["first_s"])
    return Measured(fastest["import_s"], fastest["first_s"], tuple(fastest["heavy"]), _largest(stderr))


def measure(case: Case, runs: int, bytecode: bool = True) -> Measured:
    args = [
        str(FUNCTIONS_DIR / case.code / "app.py"),
        str(DEMO_CONFIG),
        ",".join(case.preload),
        ",".join(case.modules),
        ",".join(case.parts),
        ",".join(case.models),
        ",".join(HEAVY),
    ]
    return _run(_MEASURE, args, runs, bytecode)


def _row(label: str, m: Measured, baseline_s: float) -> str:
    largest = ", ".join(f"{name} {s * 1000:.0f}" for name, s in m.largest)
    less = max(0.0, m.sum_s - baseline_s) if "boto3" in m.heavy else m.sum_s
    return (
        f"  {label:<34} {m.import_s * 1000:6.0f} {m.first_s * 1000:6.0f} {m.sum_s * 1000:6.0f} {less * 1000:6.0f}"
        f"  {','.join(m.heavy) or '-':<27} {largest}"
    )


@dataclass(frozen=True)
class Estimate:
    """Cold starts of a first failover: per cold function, Lambda's own start plus its import and first
    initialisation at the function's CPU share."""

    functions: int
    work_s: float  # import + first-init, summed over the cold functions, on this machine
    memory_mb: int
    init_overhead_s: float

    @property
    def cpu_factor(self) -> float:
        return max(1.0, VCPU_MB / self.memory_mb)

    @property
    def total_s(self) -> float:
        return self.functions * self.init_overhead_s + self.work_s * self.cpu_factor


def report(runs: int, init_overhead_s: float) -> str:
    boto3 = _run(_BOTO3, [], runs)
    baseline_s = boto3.import_s
    before_cases, after_cases, path_cases = cases()
    before = [(c, measure(c, runs)) for c in before_cases]
    after = [(c, measure(c, runs)) for c in after_cases]
    path = {key: measure(c, runs) for key, c in path_cases.items()}
    steps = next(c for c, _ in after if c.label == "Steps/ValidateRequest")
    handler_only = measure(Case("failover handler only", "failover", ()), runs)
    xray = measure(Case("+ X-Ray SDK", "failover", (*steps.modules, XRAY), steps.parts, steps.models), runs)
    validate = next(m for c, m in after if c is steps)
    evaluate = next(c for c, _ in after if c.label == "Evaluate")
    from_source = measure(evaluate, runs, bytecode=False)
    header = (
        f"  {'handler':<34} {'import':>6} {'first':>6} {'sum':>6} {'-boto3':>6}  {'heavy modules loaded':<27}"
        " largest packages (self ms)"
    )
    lines = [
        f"Cold starts: the fastest of {runs} fresh interpreters, CPU ms (process time), python -X importtime,",
        "  tracing off, bytecode cached",
        "  import: the handler's module; first: its first invocation before its own work, without the network",
        "  (config loaded, the App parts it names built with their AWS clients, the event's pydantic models built);",
        f"  sum: the cold start; -boto3: the sum less `import boto3` ({baseline_s * 1000:.0f} ms in a fresh",
        "  interpreter, the baseline of any Python Lambda that calls AWS; its first client costs"
        f" {boto3.first_s * 1000:.0f} ms more)",
        "",
        "before (every handler imported every adapter and the X-Ray SDK):",
        header,
        *(_row(c.label, m, baseline_s) for c, m in before),
        "",
        "after (the handler, then what its first invocation builds):",
        header,
        *(_row(c.label, m, baseline_s) for c, m in after),
        _row("failover module, config only", handler_only, baseline_s),
        _row("Steps/ValidateRequest + X-Ray SDK", xray, baseline_s),
        _row("Evaluate, compiled from source", from_source, baseline_s),
        "  (the last as in Lambda today: the layers ship no .pyc, so every module is compiled at each cold start)",
        "",
        "a disaster failover's path per step function (handler + what every step of it builds):",
        *(_row(path_cases[key].label, m, baseline_s) for key, m in path.items()),
    ]
    steps_before = len(set(DISASTER_PATH))
    tracing_s = max(0.0, xray.sum_s - validate.sum_s)
    before_steps = next(m for c, m in before if c.code == "failover")
    after_s = sum(m.sum_s for m in path.values()) + len(path) * tracing_s
    estimates = {
        "before": Estimate(steps_before, steps_before * before_steps.sum_s, BEFORE_MEMORY_MB, init_overhead_s),
        "after, 256 MB": Estimate(len(path), after_s, BEFORE_MEMORY_MB, init_overhead_s),
    }
    memory = min(function(key).memory_mb for key in path)
    if memory != BEFORE_MEMORY_MB:
        estimates[f"after, {memory} MB"] = Estimate(len(path), after_s, memory, init_overhead_s)
    lines += [
        "",
        f"Cold starts of a first disaster failover in AWS ({len(DISASTER_PATH)} Tasks: {', '.join(DISASTER_PATH)}):",
        "  assumptions: one cold environment per distinct function on the path (the Tasks run one at a time);",
        f"  per cold environment {init_overhead_s:.2f} s of Lambda's own start (sandbox, runtime; VPC functions add",
        "  none since their network interfaces are made at deployment) + the import and first-init above,",
        f"  at the function's CPU share (memory / {VCPU_MB} MB of a vCPU; one vCPU taken as fast as a core here),",
        "  X-Ray SDK included (the stack turns tracing on). Excluded: the network (the vCenter login, AWS calls).",
        f"  {'':<16} {'functions':>9} {'work here':>10} {'CPU factor':>11} {'estimate':>10}",
    ]
    for label, e in estimates.items():
        lines.append(f"  {label:<16} {e.functions:>9} {e.work_s:>8.2f} s {e.cpu_factor:>10.1f}x {e.total_s:>8.1f} s")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per figure (the fastest counts)")
    parser.add_argument("--init-overhead-s", type=float, default=0.25, help="Lambda's own start per cold environment")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 25:
        parser.error("--runs must be 1..25")
    print(report(args.runs, args.init_overhead_s))


if __name__ == "__main__":
    main()
