"""What must never be written down: AWS credentials and private keys (in code, templates, logs), and
request bodies (in logs).

Request bodies are checked with a canary: requests whose text is a unique marker, answered or refused
(a valid request, malformed JSON, an unknown model, too many inputs, a body over the limit), then
every log is searched for the marker. AWS's documented example keys (ending in EXAMPLE, as in
AKIAIOSFODNN7EXAMPLE) are not secrets and are allowed.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.reliability.rawhttp import HttpTarget, send

PATTERNS = {
    "aws_access_key_id": re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA)[0-9A-Z]{16}\b"),
    "aws_secret_access_key": re.compile(
        r"(?i)aws.{0,20}secret.{0,20}['\"]?\s*[:=]\s*['\"]?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
    ),
    "private_key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
}


@dataclass(frozen=True)
class Finding:
    where: str
    kind: str
    excerpt: str

    def as_dict(self) -> dict[str, str]:
        return {"where": self.where, "kind": self.kind, "excerpt": self.excerpt}


def scan_text(text: str, where: str) -> list[Finding]:
    found = []
    for kind, pattern in PATTERNS.items():
        for match in pattern.finditer(text):
            value = match.group(0)
            if "EXAMPLE" in value:  # AWS's documentation keys
                continue
            found.append(Finding(where, kind, value[:12] + "…"))
    return found


def scan_files(paths: Iterable[Path]) -> tuple[list[Finding], int]:
    """Findings in these files, and how many bytes were read."""
    findings: list[Finding] = []
    size = 0
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except (OSError, UnicodeDecodeError):
            continue
        size += len(text)
        findings += scan_text(text, str(path))
    return findings, size


def canary() -> str:
    return f"preheat-canary-{uuid.uuid4().hex}"


def send_canaries(target: HttpTarget, model: str, marker: str, max_request_bytes: int) -> list[int]:
    """Requests carrying `marker` in their bodies, answered and refused; returns their statuses."""
    bodies: list[Any] = [
        {"input": f"{marker} the cat sat", "model": model},
        {"input": [f"{marker} one", f"{marker} two"], "model": model, "encoding_format": "base64"},
        {"input": f"{marker} unknown model", "model": f"{marker}-model"},
        {"input": [f"{marker}"] * 3000, "model": model},
        {"input": marker, "model": model, "dimensions": 7},
    ]
    raw = [json.dumps(b).encode() for b in bodies]
    raw.append(f'{{"input": "{marker} broken json", '.encode())
    raw.append(json.dumps({"input": marker + "x" * max_request_bytes, "model": model}).encode())
    statuses = []
    for body in raw:
        reply = send(target, "POST", "/v1/embeddings", body, headers=[("content-type", "application/json")])
        statuses.append(reply.status)
    reply = send(target, "POST", "/v2/models/" + model + "/infer",
                 json.dumps({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [marker]}]}).encode(),
                 headers=[("content-type", "application/json")])
    statuses.append(reply.status)
    return statuses


def cloudwatch_log_text(logs_client: Any, prefix: str = "/aws/lambda/") -> tuple[str, int]:
    """Every event of every log group under `prefix` (moto's CloudWatch Logs, fed by the twin)."""
    chunks: list[str] = []
    events = 0
    for group in logs_client.describe_log_groups(logGroupNamePrefix=prefix).get("logGroups", []):
        name = group["logGroupName"]
        for stream in logs_client.describe_log_streams(logGroupName=name).get("logStreams", []):
            token = None
            while True:
                kwargs: dict[str, Any] = {"logGroupName": name, "logStreamName": stream["logStreamName"],
                                          "startFromHead": True}
                if token:
                    kwargs["nextToken"] = token
                page = logs_client.get_log_events(**kwargs)
                chunks += [e["message"] for e in page.get("events", [])]
                events += len(page.get("events", []))
                if not page.get("events") or page.get("nextForwardToken") == token:
                    break
                token = page.get("nextForwardToken")
    return "\n".join(chunks), events
