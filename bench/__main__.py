"""`python -m bench`: the probe engine against blackbox_exporter (see docs/benchmark.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.compare import Settings, report, run


def main() -> None:
    defaults = Settings()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--targets", type=int, default=defaults.targets)
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency, help="checks in flight, both sides")
    parser.add_argument("--latency-ms", type=float, default=defaults.latency_ms, help="how fast targets answer")
    parser.add_argument(
        "--timeout", dest="timeout_s", type=float, default=defaults.timeout_s, help="per check, seconds, both sides"
    )
    parser.add_argument("--rounds", type=int, default=defaults.rounds, help="rounds of each side")
    parser.add_argument("--slow-fraction", type=float, default=defaults.slow_fraction)
    parser.add_argument("--exporter", type=Path, default=defaults.exporter, help="blackbox_exporter binary")
    args = parser.parse_args()
    if not 1 <= args.targets <= 4000 or not 1 <= args.rounds <= 20 or args.concurrency < 1:
        parser.error("--targets must be 1..4000, --rounds 1..20, --concurrency at least 1")
    if not 0 < args.timeout_s < defaults.deadline_s or not 0 <= args.slow_fraction < 1:
        parser.error(
            f"--timeout must be above 0 and below the {defaults.deadline_s:g} s round deadline, --slow-fraction in 0..1"
        )
    settings = Settings(**vars(args))
    print(report(settings, run(settings)))


if __name__ == "__main__":
    main()
