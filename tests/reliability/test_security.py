"""Security: request bodies never logged, no credentials in code or logs.

The CDK checks (Function URL auth type, IAM wildcards, the synthesized template's secrets) are in
test_security_infra.py, next to the stacks they read.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from scripts.reliability import leaks
from tests.support.twin import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_request_bodies_never_reach_any_log(report: dict[str, Any]) -> None:
    security = report["security"]
    # Canary requests on both paths, answered and refused (200, 400, 404, 413): none of them left a trace
    # in the handler's stdout, the twin's function logs or CloudWatch Logs.
    assert {200, 400, 404, 413} <= set(security["canary_statuses"])
    assert security["canary_in_logs"] == 0
    assert security["cloudwatch_events"] > 100 and security["log_bytes"] > 10_000  # the logs were there to search
    assert any(path.endswith("rel-target.log") for path in security["log_files"])


def test_no_credentials_in_the_logs(report: dict[str, Any]) -> None:
    assert report["security"]["secrets_in_logs"] == []


def test_the_leak_scanner_finds_what_it_looks_for() -> None:
    key = "AKIA" + "Q" * 16
    secret = "aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "x" * 10
    pem = "-----BEGIN RSA " + "PRIVATE KEY-----"  # split, so that this file does not trip the scan below
    found = leaks.scan_text(f"{key}\n{secret}\n{pem}\n", "sample")
    assert [f.kind for f in found] == ["aws_access_key_id", "aws_secret_access_key", "private_key"]
    assert leaks.scan_text("AKIAIOSFODNN7EXAMPLE aws_secret_access_key=testing", "docs") == []


def test_no_credentials_in_the_repository() -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    paths = [ROOT / Path(p.decode()) for p in files.split(b"\0") if p]
    findings, size = leaks.scan_files(p for p in paths if p.is_file())
    assert size > 100_000
    assert findings == []
