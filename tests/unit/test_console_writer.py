"""The demo's timeline reaches the console in whole lines, whichever thread writes it."""

from __future__ import annotations

import io
import threading

from dcwatch.local.timeline import console_writer


def test_lines_written_from_two_threads_at_once_never_share_a_line():
    console = io.StringIO()
    write = console_writer(console)
    lines = {name: [f"{name} event {i}" for i in range(2000)] for name in ("dispatcher", "prober")}
    threads = [threading.Thread(target=lambda ls=ls: [write(line) for line in ls]) for ls in lines.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    written = console.getvalue().splitlines()
    assert sorted(written) == sorted(lines["dispatcher"] + lines["prober"])
