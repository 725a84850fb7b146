"""The three Lambda layers: the dcwatch core, the config file, third-party packages.

The config and dependency layers are built by local bundlers (no Docker): the config layer is the
synth's config file at `dcwatch/config.yaml`; the dependency layer is `pip install --target` of
manylinux wheels for the Lambda runtime and architecture, which needs PyPI and so only runs when
asked for (`-c bundle_deps=true`).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from dcwatch_infra import constants as c


def code_layers(scope: Construct, config_path: Path, bundle_deps: bool, deployment: str) -> list[lambda_.LayerVersion]:
    """Dependencies, core, config: the layers of every dcwatch function in one stack, in that order."""

    def layer(construct_id: str, code: lambda_.Code, description: str) -> lambda_.LayerVersion:
        return lambda_.LayerVersion(
            scope,
            construct_id,
            code=code,
            description=description,
            compatible_runtimes=[c.LAMBDA_RUNTIME],
            compatible_architectures=[c.LAMBDA_ARCHITECTURE],
        )

    return [
        layer(c.DEPS_LAYER, deps_code(bundle_deps), "third-party packages of the dcwatch functions"),
        layer(c.CORE_LAYER, core_code(), "the dcwatch core package"),
        layer(c.CONFIG_LAYER, config_code(config_path), f"dcwatch config of {deployment}, at {c.CONFIG_IN_LAMBDA}"),
    ]


def core_code() -> lambda_.Code:
    """The `dcwatch` package at /opt/python/dcwatch, without the local runtime."""
    return lambda_.Code.from_asset(str(c.CORE_LAYER_DIR), exclude=c.CORE_LAYER_EXCLUDES)


def config_code(config_path: Path) -> lambda_.Code:
    """The config file the stack was synthesized from, at /opt/dcwatch/config.yaml."""
    content = config_path.read_bytes()
    return lambda_.Code.from_asset(
        str(c.CONFIG_LAYER_SOURCE_DIR),
        asset_hash=hashlib.sha256(c.CONFIG_IN_LAYER.encode() + b"\0" + content).hexdigest(),
        bundling=BundlingOptions(
            image=c.LAMBDA_RUNTIME.bundling_image,
            local=_WriteFile(c.CONFIG_IN_LAYER, content),
        ),
    )


def deps_code(bundle: bool) -> lambda_.Code:
    """Third-party packages at /opt/python; a placeholder (see its README) unless `bundle`."""
    if not bundle:
        return lambda_.Code.from_asset(str(c.DEPS_PLACEHOLDER_DIR))
    requirements = layer_requirements()
    pip_options = [
        "--no-compile",
        "--only-binary=:all:",
        "--implementation=cp",
        f"--python-version={c.LAMBDA_PYTHON_VERSION}",
        *(f"--platform={platform}" for platform in c.LAMBDA_PLATFORMS),
    ]
    pruned = " ".join(f"/asset-output/python/{name} /asset-output/python/{name}-*" for name in _runtime_provided())
    install = " ".join(["pip install --quiet", *pip_options, "--target=/asset-output/python", *map(repr, requirements)])
    return lambda_.Code.from_asset(
        str(c.DEPS_PLACEHOLDER_DIR),
        # The requirements and the target decide the content; unchanged, the staged asset is reused.
        asset_hash=hashlib.sha256("\n".join([*requirements, *pip_options, *_runtime_provided()]).encode()).hexdigest(),
        bundling=BundlingOptions(
            image=c.LAMBDA_RUNTIME.bundling_image,
            command=["bash", "-c", f"{install} && rm -rf {pruned}"],
            local=_PipInstall(requirements, pip_options),
        ),
    )


def layer_requirements() -> list[str]:
    """The project's declared dependencies, less those the Lambda runtime already provides."""
    declared = tomllib.loads(c.PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]
    return [req for req in declared if _distribution(req) not in c.RUNTIME_PROVIDED]


def _distribution(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _runtime_provided() -> list[str]:
    return sorted(c.RUNTIME_PROVIDED)


def prune_runtime_provided(site_packages: Path) -> list[str]:
    """Remove what the Lambda runtime provides (pulled in by other dependencies); returns what went."""
    removed = []
    for path in sorted(site_packages.iterdir()):
        name = path.name.lower()
        if name in c.RUNTIME_PROVIDED or any(
            name.startswith(f"{p}-") and name.endswith(".dist-info") for p in c.RUNTIME_PROVIDED
        ):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            removed.append(path.name)
    return removed


@jsii.implements(ILocalBundling)
class _WriteFile:
    def __init__(self, relative_path: str, content: bytes):
        self._relative_path = relative_path
        self._content = content

    # jsii passes the bundling options positionally though its stubs declare keywords; neither is used.
    def try_bundle(self, output_dir: str, *_options: Any, **_keywords: Any) -> bool:
        target = Path(output_dir) / self._relative_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self._content)
        return True


@jsii.implements(ILocalBundling)
class _PipInstall:
    def __init__(self, requirements: list[str], pip_options: list[str]):
        self._requirements = requirements
        self._pip_options = pip_options

    def try_bundle(self, output_dir: str, *_options: Any, **_keywords: Any) -> bool:
        command = [sys.executable, "-m", "pip", "install", "--quiet", *self._pip_options]
        command += [f"--target={Path(output_dir) / 'python'}", *self._requirements]
        print(f"dcwatch: building the dependency layer: {' '.join(command)}", file=sys.stderr)
        subprocess.run(command, check=True)
        removed = prune_runtime_provided(Path(output_dir) / "python")
        print(f"dcwatch: left out what the Lambda runtime provides: {', '.join(removed) or 'nothing'}", file=sys.stderr)
        return True
