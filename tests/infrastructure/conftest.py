"""One synth of the demo stack per test session, shared by every infrastructure test."""

from __future__ import annotations

import pytest

from tests.infrastructure.synth import Synth, synthesize


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The demo config's stack, with every default: no hosted zone ids, the placeholder deps layer."""
    return synthesize(tmp_path_factory.mktemp("cdk.out"))
