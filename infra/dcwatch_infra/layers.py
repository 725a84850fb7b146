"""What goes into the three Lambda layers: the dcwatch core, the config file, third-party packages.

The config and dependency layers are built by local bundlers (no Docker): the config layer is the
synth's config file at `dcwatch/config.yaml`; the dependency layer is `pip install --target` for the
Lambda platform, which needs PyPI and so only runs when asked for (`-c bundle_deps=true`).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from dcwatch_infra import constants as c


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
            image=lambda_.Runtime.PYTHON_3_12.bundling_image,
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
    return lambda_.Code.from_asset(
        str(c.DEPS_PLACEHOLDER_DIR),
        # The requirements and the target decide the content; unchanged, the staged asset is reused.
        asset_hash=hashlib.sha256("\n".join([*requirements, *pip_options]).encode()).hexdigest(),
        bundling=BundlingOptions(
            image=lambda_.Runtime.PYTHON_3_12.bundling_image,
            command=["pip", "install", "--quiet", *pip_options, "--target=/asset-output/python", *requirements],
            local=_PipInstall(requirements, pip_options),
        ),
    )


def layer_requirements() -> list[str]:
    """The project's declared dependencies, less those the Lambda runtime already provides."""
    declared = tomllib.loads(c.PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]
    return [req for req in declared if _distribution(req) not in c.RUNTIME_PROVIDED]


def _distribution(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


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
        return True
