"""`python -m bench.imports`: what a cold start of each handler imports, before and after the lazy imports,
and what the cold starts of a first disaster failover cost in AWS.

Every figure is the median of `--runs` fresh interpreters (`python -X importtime`), each importing the
handler's module and then the adapter modules its code reaches through `dcwatch.runtime.App` (what its
first invocation imports). "Before" is the same handler with every adapter and the X-Ray SDK, as the
eager imports of `dcwatch.runtime` and the Powertools Tracer loaded them for every handler.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
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

_MEASURE = """
import importlib, importlib.util, json, sys, time
path, config, modules, heavy = sys.argv[1], sys.argv[2], sys.argv[3].split(",") if sys.argv[3] else [], sys.argv[4]
begun = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
for name in modules:
    importlib.import_module(name)
imported = time.perf_counter() - begun
begun = time.perf_counter()
from dcwatch.config import load_config
load_config(config)
print(json.dumps({"import_s": imported, "config_s": time.perf_counter() - begun,
                  "heavy": [h for h in heavy.split(",") if h in sys.modules]}))
"""


@dataclass(frozen=True)
class Case:
    """One cold start to measure: a handler's module and the modules its first invocation imports."""

    label: str
    code: str  # functions/<code>/app.py
    modules: tuple[str, ...]


@dataclass(frozen=True)
class Measured:
    import_s: float
    config_s: float
    heavy: tuple[str, ...]
    largest: tuple[tuple[str, float], ...]  # top-level packages by import self time, of the median run


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


def part_modules(part: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """The adapter modules `App.<part>` imports on first use, with those of the parts it uses in turn."""
    names = _names(_code_of(vars(App)[part]))
    modules = {n for n in names if n.startswith("dcwatch.adapters.")}
    for other in (names & APP_PARTS) - seen - {part}:
        modules |= part_modules(other, seen | {part})
    return modules


def parts_named(handler: Callable[..., Any], module: ModuleType) -> set[str]:
    """The App parts a handler's code names: itself, or through the failover module's helpers (`_at_*` for
    the site steps, `_renewed` for the steps that renew the lock, ...). `_run` is not followed: it touches
    `app.once` only for the steps that pass their context, and those name `app.once` themselves."""
    names: set[str] = set()
    seen: set[str] = set()
    todo = [inspect.unwrap(handler)]
    while todo:
        found = _names(todo.pop().__code__)
        names |= found
        for name in sorted(found - seen):
            helper = getattr(module, name, None)
            if name.startswith("_") and name != "_run" and inspect.isfunction(helper):
                seen.add(name)
                todo.append(helper)
    return names & APP_PARTS


def first_use_modules(handler: Callable[..., Any], module: ModuleType) -> tuple[str, ...]:
    return tuple(sorted({m for part in parts_named(handler, module) for m in part_modules(part)}))


def cases() -> tuple[list[Case], list[Case], dict[str, Case]]:
    """(before, after per handler and step, after per step function over the disaster path)."""
    codes = ("probe", "evaluate", "control", "failover")
    before = [Case(f"{code} (any handler)", code, (*ALL_ADAPTERS, XRAY)) for code in codes]
    after: list[Case] = []
    for key in ("Probe", "Evaluate", "AgentReports", "Control", "ExecutionEnded"):
        spec = function(key)
        module = load_module(spec.code)
        handler = getattr(module, spec.handler.split(".", 1)[1])
        after.append(Case(key, spec.code, first_use_modules(handler, module)))
    failover = load_module("failover")
    per_step = {s.key: first_use_modules(failover.STEPS[s.key], failover) for s in STEPS}
    after += [Case(f"{step(key).function}/{key}", "failover", per_step[key]) for key in per_step]
    path: dict[str, Case] = {}
    for key in dict.fromkeys(step(k).function for k in DISASTER_PATH):
        modules = sorted({m for k in DISASTER_PATH if step(k).function == key for m in per_step[k]})
        path[key] = Case(f"{key}: every step of the path", "failover", tuple(modules))
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


def measure(case: Case, runs: int) -> Measured:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "layers/core/python"), str(REPO_ROOT)])}
    env.pop("LAMBDA_TASK_ROOT", None)  # tracing off, as outside Lambda: the X-Ray SDK is a row of its own
    samples = []
    for _ in range(runs):
        done = subprocess.run(
            [
                sys.executable,
                "-X",
                "importtime",
                "-c",
                _MEASURE,
                str(FUNCTIONS_DIR / case.code / "app.py"),
                str(DEMO_CONFIG),
                ",".join(case.modules),
                ",".join(HEAVY),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=True,
        )
        samples.append((json.loads(done.stdout), done.stderr))
    samples.sort(key=lambda s: s[0]["import_s"])
    median, stderr = samples[len(samples) // 2]
    return Measured(
        statistics.median(s["import_s"] for s, _ in samples),
        statistics.median(s["config_s"] for s, _ in samples),
        tuple(median["heavy"]),
        _largest(stderr),
    )


def _row(label: str, m: Measured) -> str:
    largest = ", ".join(f"{name} {s * 1000:.0f}" for name, s in m.largest)
    return f"  {label:<34} {m.import_s * 1000:7.0f} ms  {','.join(m.heavy) or '-':<34} {largest}"


@dataclass(frozen=True)
class Estimate:
    """Cold starts of a first failover: per cold function, Lambda's own start plus imports and the config
    load at the function's CPU share."""

    functions: int
    import_s: float  # summed over the cold functions, on this machine
    config_s: float  # per cold function
    memory_mb: int
    init_overhead_s: float

    @property
    def cpu_factor(self) -> float:
        return max(1.0, VCPU_MB / self.memory_mb)

    @property
    def total_s(self) -> float:
        work = self.import_s + self.functions * self.config_s
        return self.functions * self.init_overhead_s + work * self.cpu_factor


def report(runs: int, init_overhead_s: float) -> str:
    before_cases, after_cases, path_cases = cases()
    before = {c.code: measure(c, runs) for c in before_cases}
    after = [(c, measure(c, runs)) for c in after_cases]
    path = {key: measure(c, runs) for key, c in path_cases.items()}
    xray = measure(Case("failover + X-Ray SDK", "failover", (XRAY,)), runs)
    handler_only = measure(Case("failover handler only", "failover", ()), runs)
    header = f"  {'handler':<34} {'import':>10}  {'heavy modules loaded':<34} largest packages (self ms)"
    lines = [
        f"Cold-start imports: median of {runs} fresh interpreters, python -X importtime, tracing off",
        "",
        "before (every handler imported every adapter and the X-Ray SDK):",
        header,
        *(_row(c.label, before[c.code]) for c in before_cases),
        "",
        "after (the handler, then what its first invocation imports):",
        header,
        *(_row(c.label, m) for c, m in after),
        _row("failover handler only", handler_only),
        _row("+ X-Ray SDK (tracing on, in AWS)", xray),
        "",
        "a disaster failover's path per step function (handler + every module its steps import):",
        *(_row(path_cases[key].label, m) for key, m in path.items()),
    ]
    steps_before = len(set(DISASTER_PATH))
    tracing_s = max(0.0, xray.import_s - handler_only.import_s)
    estimates = {
        "before": Estimate(
            steps_before, steps_before * before["failover"].import_s, before["failover"].config_s, 256, init_overhead_s
        ),
        "after, 256 MB": Estimate(
            len(path),
            sum(m.import_s for m in path.values()) + len(path) * tracing_s,
            handler_only.config_s,
            BEFORE_MEMORY_MB,
            init_overhead_s,
        ),
    }
    memory = min(function(key).memory_mb for key in path)
    if memory != BEFORE_MEMORY_MB:
        estimates[f"after, {memory} MB"] = Estimate(
            len(path), estimates["after, 256 MB"].import_s, handler_only.config_s, memory, init_overhead_s
        )
    lines += [
        "",
        f"Cold starts of a first disaster failover in AWS ({len(DISASTER_PATH)} Tasks: {', '.join(DISASTER_PATH)}):",
        "  assumptions: one cold environment per distinct function on the path (the Tasks run one at a time);",
        f"  per cold environment {init_overhead_s:.2f} s of Lambda's own start (sandbox, runtime; VPC functions add",
        "  none since their network interfaces are made at deployment) + the imports above + one config load,",
        f"  at the function's CPU share (memory / {VCPU_MB} MB of a vCPU; one vCPU taken as fast as a core here),",
        "  X-Ray SDK included (the stack turns tracing on). Excluded: AWS SDK clients and the vCenter login,",
        "  which every run pays, warm or cold.",
        f"  {'':<16} {'functions':>9} {'imports here':>13} {'config here':>12} {'CPU factor':>11} {'estimate':>10}",
    ]
    for label, e in estimates.items():
        lines.append(
            f"  {label:<16} {e.functions:>9} {e.import_s:>11.2f} s {e.config_s:>10.2f} s {e.cpu_factor:>10.1f}x"
            f" {e.total_s:>8.1f} s"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per figure (median)")
    parser.add_argument("--init-overhead-s", type=float, default=0.25, help="Lambda's own start per cold environment")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 25:
        parser.error("--runs must be 1..25")
    print(report(args.runs, args.init_overhead_s))


if __name__ == "__main__":
    main()
