"""The app is built with every feature flag aws-cdk-lib recommends, as `cdk init` would set them: no construct
behaves as an old default, and the real CDK CLI (what `cdk deploy` runs) has no flag left to warn about."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tarfile
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from dcwatch.wiring import REPO_ROOT
from dcwatch_infra import constants
from tests.infrastructure.synth import offline_environment, zone_ids_context

pytestmark = pytest.mark.infrastructure

CDK = REPO_ROOT / ".build" / "cdk" / "node_modules" / ".bin" / "cdk"
# Recommended flags left off or set otherwise, each with the reason it has to be: none so far.
EXCEPTIONS: dict[str, str] = {}


def recommended_flags() -> dict[str, Any]:
    """The installed aws-cdk-lib's recommended-feature-flags.json: what `cdk init` writes into cdk.json."""
    assembly = importlib.import_module("aws_cdk._jsii").__jsii_assembly__  # the installed version's tarball
    with tarfile.open(str(files("aws_cdk._jsii") / assembly.filename)) as tar:
        member = tar.extractfile("package/recommended-feature-flags.json")
        assert member is not None
        return json.load(member)


def test_cdk_json_sets_every_recommended_flag_to_its_recommended_value():
    context = json.loads(constants.CDK_JSON.read_text(encoding="utf-8"))["context"]
    recommended = recommended_flags()
    assert set(EXCEPTIONS) <= set(recommended), "an exception names a flag aws-cdk-lib no longer recommends"
    expected = {flag: value for flag, value in recommended.items() if flag not in EXCEPTIONS}
    assert {flag: context.get(flag) for flag in recommended if flag not in EXCEPTIONS} == expected


def test_the_cli_synthesizes_the_app_with_every_recommended_flag_and_no_flag_warning(tmp_path: Path):
    outdir = tmp_path / "cdk.out"
    env = offline_environment()
    env |= {
        "PATH": f"{Path(sys.executable).parent}:{env['PATH']}",  # cdk.json's `python app.py`: this venv's
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "18,20",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }
    # As `make synth` does, with the offline placeholder: the real dependency layer comes from PyPI.
    command = [str(CDK), "synth", "--quiet", "--no-notices", "-o", str(outdir)]
    command += [
        "-c",
        f"deps={constants.DEPS_PLACEHOLDER}",
        "-c",
        f"hosted_zone_ids={zone_ids_context(constants.DEMO_CONFIG)}",
    ]
    done = subprocess.run(command, cwd=constants.CDK_JSON.parent, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    # The CLI warns "N feature flags are not configured" when one is left at a default other than its recommendation.
    assert "feature flag" not in (done.stdout + done.stderr).lower(), done.stderr[-3000:]
    # And the app saw cdk.json's flags through the CLI: aws-cdk-lib's own report of what each flag was set to.
    manifest = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))
    [report] = [a for a in manifest["artifacts"].values() if a["type"] == "cdk:feature-flag-report"]
    seen = {flag: info.get("userValue") for flag, info in report["properties"]["flags"].items()}
    expected = {flag: value for flag, value in recommended_flags().items() if flag not in EXCEPTIONS}
    assert {flag: seen.get(flag) for flag in expected} == expected
