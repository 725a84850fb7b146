"""`dcwatch up`: the local runtime as a playground, until Ctrl-C, SIGTERM or `--run-for`.

What `dcwatch demo` starts (moto, one vcsim per site, the demo services, the site agents, the event plumbing),
with the probes on their schedule, but no scripted outage: the environment to export is printed and written to
`<run dir>/env`, so every other command works against it from a second terminal as against AWS, and
`dcwatch fault ...` breaks the sites by hand through the loopback fault channel (`dcwatch.local.fault_channel`).
Everything listens on loopback only, and everything stops with it.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from dcwatch.config import load_config
from dcwatch.local.cloud import LocalCloud
from dcwatch.local.fault_channel import CONTROL_FILE, FaultChannel, running_pid
from dcwatch.local.links import describe as describe_topology
from dcwatch.local.pipeline import LocalPipeline
from dcwatch.local.runner import add_notification, add_site_status
from dcwatch.local.schedule import DrillSchedule, ProbeSchedule
from dcwatch.local.timeline import Timeline, console_writer, handler_logs_to
from dcwatch.local.watcher import Observations, Watcher
from dcwatch.wiring import TABLES

RUN_DIR = Path(".dcwatch-up")
ENV_FILE = "env"
READY = "dcwatch up: ready"
AGENTS_OUTLAST_S = 60.0  # the agents end by themselves only after `up` has stopped them
MAX_RUN_S = 24 * 3600.0  # "until Ctrl-C", bounded: a forgotten playground does not run for ever
WAIT_SLICE_S = 0.5
# What the other commands read (docs/commands.md): boto3's endpoint, region and credentials, and the stack outputs.
AWS_EXPORTS = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SFN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
)
STACK_EXPORTS = (
    "DCWATCH_CONFIG",
    *(spec.env for spec in TABLES),
    "DCWATCH_STATE_MACHINE_ARN",
    "DCWATCH_TOPIC_ARN",
    "DCWATCH_BUS_NAME",
)
UP_DIR_ENV = "DCWATCH_UP_DIR"


def exports(cloud: LocalCloud, run_dir: Path) -> dict[str, str]:
    """The environment a second terminal needs, as the local cloud set it for the functions in this process."""
    assert cloud.resources is not None, "provision first"
    values = {key: os.environ[key] for key in (*AWS_EXPORTS, *STACK_EXPORTS) if key in os.environ}
    return {**values, UP_DIR_ENV: str(run_dir)}


def env_lines(values: dict[str, str]) -> list[str]:
    return [f"export {key}={shlex.quote(value)}" for key, value in values.items()]


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


@contextmanager
def _stopping_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM ask for an orderly stop (every part, in order) instead of unwinding mid-start."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class AlreadyUp(Exception):
    """A `dcwatch up` already answers for this run directory."""


def _claim(run_dir: Path) -> None:
    """One `up` per run directory: a second one would overwrite the first one's env and fault channel (a
    control file no one answers for is what an `up` killed outright left)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if (run_dir / CONTROL_FILE).exists() and (pid := running_pid(run_dir)) is not None:
        raise AlreadyUp(
            f"a `dcwatch up` (pid {pid}) already runs for {run_dir}: stop it first, or give another --run-dir"
        )


def run_up(
    config_path: str | Path,
    run_dir: Path = RUN_DIR,
    run_for_s: float | None = None,
    out: Callable[[str], None] | None = None,
) -> int:
    """Start everything, print the exports and READY, run until asked to stop, stop everything."""
    out = out or console_writer(sys.stdout)
    run_dir = run_dir.resolve()
    _claim(run_dir)
    config_path = str(Path(config_path).resolve())
    config = load_config(config_path)
    stop = threading.Event()
    log_path = run_dir / "handlers.log"
    with (
        _stopping_on_signals(stop),
        open(log_path, "w", encoding="utf-8") as log,
        redirect_stdout(log),
        handler_logs_to(log),
        ExitStack() as stack,
    ):
        timeline = Timeline(out)
        active, standby = config.active_site, config.other_site(config.active_site)
        out(f"dcwatch up: {len(config.services)} services, {active} active, {standby} standby ({config_path})")
        for line in describe_topology(config.topology):
            out(line)
        obs = Observations()
        bound_s = min(run_for_s or MAX_RUN_S, MAX_RUN_S)
        pipeline = stack.enter_context(
            LocalPipeline(
                config_path,
                on_site_status=lambda event: add_site_status(timeline, event),
                on_notification=lambda body: add_notification(timeline, obs, body),
                log_dir=run_dir,
                agents_run_for_s=bound_s + AGENTS_OUTLAST_S,  # the agents run as long as the playground does
            )
        )
        timeline.add("aws_ready", f"moto at {pipeline.cloud.endpoint}, Step Functions at {pipeline.cloud.sfn_endpoint}")
        watcher = Watcher(pipeline, timeline, obs).start()
        stack.callback(watcher.stop)
        rounds = int(bound_s / config.probe.interval_s) + 2
        probes = ProbeSchedule(pipeline, config.probe.interval_s, timeline, max_rounds=rounds).start()
        stack.callback(probes.stop)
        if config.drill is not None and config.drill.schedule is not None:  # as EventBridge Scheduler would
            drills = DrillSchedule(pipeline).start()
            stack.callback(drills.stop)
            first = drills.next_at(datetime.now(UTC))
            when = f"first at {first:%H:%M:%S}Z" if first else "never: the expression matches no time"
            timeline.add("drill_schedule", f"scheduled drills {config.drill.schedule.expression}: {when}")

        def by_hand(kind: str, text: str) -> None:
            timeline.add(kind, text)

        channel = FaultChannel(pipeline, run_dir, by_hand).start()
        stack.callback(channel.stop)
        env_file = run_dir / ENV_FILE
        lines = env_lines(exports(pipeline.cloud, run_dir))
        _write_private(env_file, "\n".join(lines) + "\n")
        stack.callback(env_file.unlink, missing_ok=True)
        if pipeline.agents is not None:
            timeline.add("agents_running", pipeline.agents.describe())
        out(f"In another terminal: source {env_file}   (or paste these)")
        for line in lines:
            out(f"  {line}")
        out("then: dcwatch status | dcwatch history | dcwatch fault kill-site active | ...")
        out(f"handler logs: {log_path}")
        out(f"{READY}: Ctrl-C stops everything" + (f" (or after {run_for_s:g} s)" if run_for_s else ""))
        deadline = time.monotonic() + bound_s
        while not stop.is_set() and time.monotonic() < deadline:
            stop.wait(min(WAIT_SLICE_S, max(0.0, deadline - time.monotonic())))
        out("dcwatch up: stopping")
    out("dcwatch up: stopped; nothing is left listening")
    return 0
