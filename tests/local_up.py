"""`dcwatch up` as a test drives it: a process of its own (its own session, as a terminal's foreground job),
waited for until it prints READY, its env file sourced by a shell, stopped with Ctrl-C's SIGINT."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from dcwatch.local.cloud import free_port
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.local.up import ENV_FILE, READY

STOP_TIMEOUT_S = 60.0


def demo_config_on_free_ports(directory: Path) -> Path:
    """The demo config with every loopback port (vCenters, services, agents) moved to a free one: the same sites,
    services and agents, beside any other demo running on this machine."""
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    ports = {port: str(free_port()) for port in sorted(set(re.findall(r"127\.0\.\d+\.\d+:(\d+)", text)))}
    moved = re.sub(r"(127\.0\.\d+\.\d+):(\d+)", lambda m: f"{m.group(1)}:{ports[m.group(2)]}", text)
    path = directory / "demo.yaml"
    path.write_text(moved, encoding="utf-8")
    return path


def dcwatch(args: Sequence[str], env: dict[str, str], timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dcwatch.cli", *args], env=env, capture_output=True, text=True, timeout=timeout_s
    )


class UpProcess:
    """One `dcwatch up`; its output lines kept as they come."""

    def __init__(self, config: Path, run_dir: Path, run_for_s: float):
        self.run_dir = run_dir
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dcwatch.cli", "up", "--config", str(config), "--run-dir", str(run_dir)]
            + ["--run-for", str(run_for_s)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(text in line for line in self.lines):
            if self.process.poll() is not None:
                self._reader.join(timeout=5)
                raise AssertionError(f"`dcwatch up` exited {self.process.returncode} before {text!r}:\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} from `dcwatch up` within {timeout_s:g} s:\n{self.output[-4000:]}")
            time.sleep(0.2)

    def wait_ready(self, timeout_s: float) -> dict[str, str]:
        """Once READY is printed: this environment with the env file sourced, as a second terminal has it."""
        self.wait_for(READY, timeout_s)
        sourced = subprocess.run(
            ["bash", "-c", f"set -e; source {self.run_dir / ENV_FILE}; env -0"],
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout.decode()
        return dict(entry.split("=", 1) for entry in sourced.split("\0") if "=" in entry)

    def interrupt(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Ctrl-C: SIGINT to its whole process group, as a terminal sends it; its exit code."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        code = self.process.wait(timeout=timeout_s)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        """The test's last resort (in a finally): nothing of it may outlive the test."""
        if self.process.poll() is None:
            try:
                self.interrupt()
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
