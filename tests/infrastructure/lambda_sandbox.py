"""The functions of a synthesized stack, run from nothing but their code and layers (`lambda_runner.py`).

Lambda puts the function's code and the layers (merged into /opt/python) before its own runtime, whose
Python carries boto3, botocore and s3transfer. The deps layer leaves those out on purpose, so the
sandbox provides them too: a directory holding only them and what they need (jmespath, dateutil,
urllib3, six), linked from this venv, as the runtime would.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from dcwatch_infra import constants
from tests.infrastructure.synth import Synth
from tests.infrastructure.template import resources

RUNNER = Path(__file__).with_name("lambda_runner.py")


@dataclass(frozen=True)
class Layers:
    """What /opt holds in Lambda, as directories here: the deps and core layers' python/, the config file."""

    deps: Path
    core: Path
    config: Path
    runtime: Path  # what the Lambda runtime provides: boto3 and its dependencies


@dataclass(frozen=True)
class FunctionCode:
    """One AWS::Lambda::Function of a template: its handler, its staged code, its environment."""

    logical_id: str
    handler: str
    code: Path
    timeout_s: int = 3
    environment: Mapping[str, Any] = field(default_factory=dict)

    def call(self, event: Any) -> dict[str, Any]:
        """One invocation for `run`, with the function's own timeout."""
        return {"handler": self.handler, "event": event, "function_name": self.logical_id, "timeout_s": self.timeout_s}


def function_codes(synth: Synth) -> list[FunctionCode]:
    return [
        FunctionCode(
            logical_id,
            function["Properties"]["Handler"],
            synth.outdir / function["Metadata"]["aws:asset:path"],
            function["Properties"].get("Timeout", 3),
            function["Properties"].get("Environment", {}).get("Variables", {}),
        )
        for logical_id, function in sorted(resources(synth, "AWS::Lambda::Function").items())
    ]


def layer_dirs(synth: Synth) -> tuple[Path, Path]:
    """The staged core layer's python/ and the staged config file of a synth."""
    layers = resources(synth, "AWS::Lambda::LayerVersion")

    def staged(layer: Any) -> Path:
        return synth.asset(layers[synth.logical_id(layer)]["Properties"]["Content"]["S3Key"])

    return staged(synth.stack.core_layer) / "python", staged(synth.stack.config_layer) / constants.CONFIG_IN_LAYER


def runtime_provided(target: Path) -> Path:
    """`target` with links to boto3, botocore, s3transfer and the distributions they need, nothing else."""
    wanted, pending = set(), list(constants.RUNTIME_PROVIDED)
    while pending:
        name = _normalized(pending.pop())
        if name in wanted:
            continue
        wanted.add(name)
        for requirement in metadata.requires(name) or []:
            parsed = Requirement(requirement)
            if parsed.marker is None or parsed.marker.evaluate({"extra": ""}):
                pending.append(parsed.name)
    target.mkdir(parents=True, exist_ok=True)
    for top_level, distributions in metadata.packages_distributions().items():
        if any(_normalized(d) in wanted for d in distributions):
            source = _module_path(top_level)
            (target / source.name).symlink_to(source)
    return target


def environment(function: FunctionCode, provided: Mapping[str, str]) -> dict[str, str]:
    """The function's environment from the template; `provided` stands in for the values CloudFormation resolves."""
    resolved = {}
    for key, value in function.environment.items():
        if key in provided:
            resolved[key] = provided[key]
        elif isinstance(value, str):
            resolved[key] = value
        else:
            raise AssertionError(f"{function.logical_id}: the sandbox has no value for {key} = {value}")
    return resolved


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-")


def _module_path(top_level: str) -> Path:
    spec = importlib.util.find_spec(top_level)
    assert spec is not None and spec.origin, f"{top_level} is not importable here"
    origin = Path(spec.origin)
    return origin.parent if origin.name == "__init__.py" else origin


@dataclass(frozen=True)
class Run:
    returncode: int
    stderr: str
    report: dict[str, Any]


def run(
    code: Path,
    handlers: Sequence[str],
    layers: Layers,
    environment: Mapping[str, str],
    workdir: Path,
    invoke: Sequence[Mapping[str, Any]] = (),
) -> Run:
    """Import `handlers` from `code`, then make the `invoke` calls, in a clean interpreter that sees only the
    layers; the run's spec is written to `workdir`."""
    path = [str(p) for p in (code, layers.deps, layers.core, layers.runtime)]
    spec = {"path": path, "handlers": list(handlers), "invoke": list(invoke)}
    spec_file = workdir / f"smoke-{code.name}.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    env = {
        **environment,
        constants.ENV_CONFIG: str(layers.config),
        "LAMBDA_TASK_ROOT": str(code),  # Powertools traces only inside Lambda
        "AWS_LAMBDA_FUNCTION_NAME": code.name,
    }
    done = subprocess.run(
        # -B: nothing written next to the staged code (Lambda's /var/task and /opt are read-only, too).
        [sys.executable, "-B", "-S", "-I", str(RUNNER), str(spec_file)],
        capture_output=True,
        text=True,
        env=env,
        cwd=code,
        timeout=120,
    )
    report = json.loads(done.stdout.splitlines()[-1]) if done.returncode == 0 else {}
    return Run(done.returncode, done.stderr, report)
