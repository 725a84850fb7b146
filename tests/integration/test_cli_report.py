"""`dcwatch report` against the audit table as deployed (moto): the HTML of an incident's recovery, the drill
scorecard, and readable refusals."""

from __future__ import annotations

import re

import boto3
import pytest
from moto import mock_aws

from dcwatch.adapters.dynamodb import DynamoStateStore
from dcwatch.cli import main
from dcwatch.local.cloud import create_tables
from tests.helpers import moto_credentials
from tests.unit.recoveries import ran_failover

pytestmark = pytest.mark.integration


@pytest.fixture
def store(monkeypatch) -> DynamoStateStore:
    moto_credentials(monkeypatch)
    with mock_aws():
        names = create_tables(boto3.client("dynamodb"), "cli")
        monkeypatch.setenv("DCWATCH_AUDIT_TABLE_NAME", names["Audit"])
        yield DynamoStateStore(names["State"], names["Audit"])


def test_the_report_of_an_incident_is_its_last_recovery_with_the_detection_that_started_it(store, tmp_path, capsys):
    record = ran_failover() | {"mode": "disaster"}
    down = {"kind": "site", "site": "dc-a", "status": "DOWN", "decidedAt": "2026-11-25T03:00:00+00:00"}
    down |= {"failingSince": "2026-11-25T02:59:50+00:00"}
    store.append_audit("manual-inc-1", down)
    store.append_audit("manual-inc-1", record)

    out = tmp_path / "r.html"
    assert main(["report", "manual-inc-1", "--out", str(out)]) == 0

    html = out.read_text(encoding="utf-8")
    assert "report of manual-inc-1 (succeeded) written to" in capsys.readouterr().out
    assert 'id="verdict">PASS<' in html and "from the detection to the DNS in sync" in html
    assert len(re.findall(r'<rect class="bar[ "]', html)) == 1 + sum(1 for e in record["timeline"] if e["started"])


def test_an_unknown_incident_is_exit_1_naming_it(store, tmp_path, capsys):
    assert main(["report", "manual-nope", "--out", str(tmp_path / "r.html")]) == 1
    assert "no recovery record of incident manual-nope" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_no_audit_table_is_exit_2_saying_which(store, tmp_path, monkeypatch, capsys):
    assert main(["report", "x", "--out", str(tmp_path / "r.html"), "--audit-table", "gone"]) == 2
    assert "audit table gone not found" in capsys.readouterr().err
    monkeypatch.delenv("DCWATCH_AUDIT_TABLE_NAME")
    assert main(["report", "x", "--out", str(tmp_path / "r.html")]) == 2
    assert "--audit-table (or DCWATCH_AUDIT_TABLE_NAME) is required" in capsys.readouterr().err


def test_the_scorecard_reads_the_drills_from_the_whole_audit(store, tmp_path):
    for n, in_sync in enumerate([40.0, 55.0]):
        drill = ran_failover() | {"mode": "drill", "outcome": "drill-passed", "incidentId": f"manual-drill-{n}"}
        drill |= {
            "startedAt": f"2026-12-0{n + 1}T03:00:00+00:00",
            "drill": {"measured": {"drill records in sync": in_sync}},
        }
        store.append_audit(f"manual-drill-{n}", drill)
    store.append_audit("manual-inc-1", ran_failover())

    out = tmp_path / "s.html"
    assert main(["report", "--scorecard", "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert "2 of 2 drills passed" in html and len(re.findall(r'<rect class="bar pass"', html)) == 2
