"""The HTML report in a real headless browser (Debian's chromium): it renders, its chart holds one bar per step,
and opening it makes no network request."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dcwatch.reports import render_report
from tests.unit.recoveries import ran_failover

pytestmark = pytest.mark.integration

# Chromium's own background calls (clock, updates, accounts) at start, whatever it opens; the resolver rule keeps
# them from leaving the machine. Anything else the log shows would be the page's.
BROWSER_OWN = re.compile(r"https?://([a-z0-9-]+\.)*(google\.com|googleapis\.com|gvt1\.com)/")
BROWSER_S = 60  # generous: a cold chromium start on a loaded 2-core machine


def chromium(*flags: str, profile: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is not installed: `make test` installs it (Debian's chromium, the Makefile's apt stamp)")
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr",
        "--v=1",
        *flags,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_S, check=True)


def test_the_report_renders_in_chromium_with_one_bar_per_step_and_loads_nothing(tmp_path: Path):
    record = ran_failover()
    page = tmp_path / "report.html"
    page.write_text(render_report(record, target_s=60), encoding="utf-8")

    shown = chromium("--dump-dom", page.as_uri(), profile=tmp_path / "profile")

    dom = shown.stdout
    assert "<title>Failover dc-a → dc-b: PASS (manual-inc-1)</title>" in dom
    assert re.search(r'id="verdict">PASS<', dom)
    steps_with_a_start = [e for e in record["timeline"] if e["started"]]
    assert len(re.findall(r'<rect class="bar[ "]', dom)) == len(steps_with_a_start) > 10
    assert 'http-equiv="Content-Security-Policy"' in dom and "default-src 'none'" in dom
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*https?:|url\(\s*["']?https?:""", dom)
    requests = [m.group(1) for m in re.finditer(r"NotifyBeforeURLRequest: (\S+)", shown.stderr)]
    assert "VERBOSE1" in shown.stderr, "chromium wrote no verbose log: its requests cannot be checked"
    by_the_page = [url for url in requests if not BROWSER_OWN.match(url)]
    assert by_the_page == [], f"the page made network requests: {by_the_page}"
