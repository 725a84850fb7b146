"""The three Lambda layers: the dcwatch core, the config file, third-party packages.

The config and dependency layers are built by local bundlers (no Docker): the config layer is the
synth's config file at `dcwatch/config.yaml`; the dependency layer is `pip install --target` of
manylinux wheels for the Lambda runtime and architecture (needs PyPI). Only `-c deps=placeholder`
ships an empty stand-in instead, and the stack then says so in a warning and the layer's description.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import jsii
from aws_cdk import Annotations, BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from dcwatch.config import ConfigError, load_config
from dcwatch_infra import constants as c

PLACEHOLDER_WARNING_ID = "dcwatch:placeholderDeps"
PLACEHOLDER_WARNING = (
    "the dependency layer is a PLACEHOLDER (-c deps=placeholder): every function of this stack fails at import; "
    "synthesize without that flag to deploy"
)


def code_layers(
    scope: Construct, config_path: Path, placeholder_deps: bool, deployment: str
) -> list[lambda_.LayerVersion]:
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

    if placeholder_deps:
        Annotations.of(scope).add_warning_v2(PLACEHOLDER_WARNING_ID, PLACEHOLDER_WARNING)
        deps = layer(c.DEPS_LAYER, placeholder_code(), f"PLACEHOLDER without packages: {PLACEHOLDER_WARNING}")
    else:
        deps = layer(c.DEPS_LAYER, deps_code(), "third-party packages of the dcwatch functions")
    return in_template_order(
        [
            deps,
            layer(c.CORE_LAYER, core_code(), "the dcwatch core package"),
            layer(c.CONFIG_LAYER, config_code(config_path), f"dcwatch config of {deployment}, at {c.CONFIG_IN_LAMBDA}"),
        ]
    )


def in_template_order(layers: list[lambda_.LayerVersion]) -> list[lambda_.LayerVersion]:
    """`layers`, if CDK renders them in this order: it sorts a function's layers by construct path
    (`@aws-cdk/aws-lambda:recognizeLayerVersion`), and a later layer's files shadow an earlier one's."""
    paths = [layer.node.path for layer in layers]
    if paths != sorted(paths):
        raise ValueError(f"layer construct ids must sort in the order the layers stack: {paths} is not sorted")
    return layers


def core_code() -> lambda_.Code:
    """The `dcwatch` package at /opt/python/dcwatch, without the local runtime."""
    return lambda_.Code.from_asset(str(c.CORE_LAYER_DIR), exclude=c.CORE_LAYER_EXCLUDES)


def config_code(config_path: Path) -> lambda_.Code:
    """The config file the stack was synthesized from, at /opt/dcwatch/config.yaml, with the files it names
    (`ca_file`) at the same place beside it."""
    files = {c.CONFIG_IN_LAYER: config_path.read_bytes(), **files_beside_config(config_path)}
    digest = hashlib.sha256()
    for name, content in sorted(files.items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return lambda_.Code.from_asset(
        str(c.CONFIG_LAYER_SOURCE_DIR),
        asset_hash=digest.hexdigest(),
        bundling=BundlingOptions(image=c.LAMBDA_RUNTIME.bundling_image, local=_WriteFiles(files)),
    )


def files_beside_config(config_path: Path) -> dict[str, bytes]:
    """The files the config names, by their place in the config layer; ConfigError for one that could not be
    there: outside the config file's folder (Lambda has nothing else of this machine), or unreadable."""
    folder = config_path.parent.resolve()
    where_in_layer = PurePosixPath(c.CONFIG_IN_LAYER).parent
    files: dict[str, bytes] = {}
    problems: list[tuple[str, str]] = []
    for where, path in load_config(config_path).ca_files:
        try:
            relative = Path(path).resolve().relative_to(folder)
        except ValueError:
            problems.append((where, f"{path} is outside {folder}: only files beside the config file reach Lambda"))
            continue
        try:
            files[str(where_in_layer / relative.as_posix())] = Path(path).read_bytes()
        except OSError as exc:
            problems.append((where, f"{path}: {exc.strerror or exc}"))
    if problems:
        raise ConfigError(str(config_path), problems)
    return files


def placeholder_code() -> lambda_.Code:
    """A layer with nothing but a README saying why (offline synths, the infrastructure tests)."""
    return lambda_.Code.from_asset(str(c.DEPS_PLACEHOLDER_DIR))


def deps_code() -> lambda_.Code:
    """Third-party packages at /opt/python, for the functions' runtime and architecture."""
    requirements = layer_requirements()
    options = pip_options(c.LAMBDA_PYTHON_VERSION, c.LAMBDA_PLATFORMS)
    pruned = " ".join(f"/asset-output/python/{name} /asset-output/python/{name}-*" for name in _runtime_provided())
    install = " ".join(["pip install --quiet", *options, "--target=/asset-output/python", *map(repr, requirements)])
    return lambda_.Code.from_asset(
        str(c.DEPS_PLACEHOLDER_DIR),
        # The requirements and the target decide the content; unchanged, the staged asset is reused.
        asset_hash=hashlib.sha256("\n".join([*requirements, *options, *_runtime_provided()]).encode()).hexdigest(),
        bundling=BundlingOptions(
            image=c.LAMBDA_RUNTIME.bundling_image,
            command=["bash", "-c", f"{install} && rm -rf {pruned}"],
            local=_PipInstall(options),
        ),
    )


def pip_options(python_version: str, platforms: Sequence[str]) -> list[str]:
    """Binary wheels only, for this CPython version and these platforms, whatever the building machine is."""
    return [
        "--no-compile",
        "--only-binary=:all:",
        "--implementation=cp",
        f"--python-version={python_version}",
        *(f"--platform={platform}" for platform in platforms),
    ]


def install_dependencies(site_packages: Path, options: Sequence[str]) -> list[str]:
    """`pip install --target` of `layer_requirements()`, less what the runtime provides; returns what went."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", *options]
    command += [f"--target={site_packages}", *layer_requirements()]
    print(f"dcwatch: building the dependency layer: {' '.join(command)}", file=sys.stderr)
    subprocess.run(command, check=True)
    return prune_runtime_provided(site_packages)


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
class _WriteFiles:
    def __init__(self, files: dict[str, bytes]):
        self._files = files

    # jsii passes the bundling options positionally though its stubs declare keywords; neither is used.
    def try_bundle(self, output_dir: str, *_options: Any, **_keywords: Any) -> bool:
        for relative_path, content in self._files.items():
            target = Path(output_dir) / relative_path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        return True


@jsii.implements(ILocalBundling)
class _PipInstall:
    def __init__(self, pip_options: list[str]):
        self._pip_options = pip_options

    def try_bundle(self, output_dir: str, *_options: Any, **_keywords: Any) -> bool:
        removed = install_dependencies(Path(output_dir) / "python", self._pip_options)
        print(f"dcwatch: left out what the Lambda runtime provides: {', '.join(removed) or 'nothing'}", file=sys.stderr)
        return True
