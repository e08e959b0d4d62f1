"""A run's AWS traffic, kept: record what reaches the twin's moto, replay it into a fresh one later.

moto's metrics and logs live only as long as its server. `preheat demo` records every request its
twin's moto receives (moto's own recorder), saves the recording and the run's time window under
build/dashboard/, and `preheat dashboard` with no twin running replays it into a moto of its own and
draws the dashboard from that: the same PutMetricData and PutLogEvents calls (with the timestamps
they carried), so the same data as during the run.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

RECORDER = "/moto-api/recorder"
RECORDING = "demo-recording.jsonl"
RUN = "demo-run.json"
# Headers that belong to the original connection, not to the request.
_HOP = {"host", "content-length", "connection", "transfer-encoding", "accept-encoding"}


@dataclass(frozen=True)
class Run:
    start: datetime
    end: datetime
    period_seconds: int
    function_name: str
    requests: int = 0  # filled in from the recording by save()/load_run()


def _post(url: str) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, method="POST", data=b""), timeout=30) as reply:
        body: bytes = reply.read()
        return body


def start(moto_url: str) -> None:
    """Start recording from now on (erasing anything recorded before)."""
    _post(f"{moto_url}{RECORDER}/reset-recording")
    _post(f"{moto_url}{RECORDER}/start-recording")


def save(moto_url: str, out: Path, run: Run) -> Path:
    """Stop recording and write the recording and the run's window to out/."""
    _post(f"{moto_url}{RECORDER}/stop-recording")
    with urllib.request.urlopen(f"{moto_url}{RECORDER}/download-recording", timeout=30) as reply:
        recording = reply.read()
    out.mkdir(parents=True, exist_ok=True)
    (out / RECORDING).write_bytes(recording)
    meta = {
        "start": run.start.isoformat(),
        "end": run.end.isoformat(),
        "period_seconds": run.period_seconds,
        "function_name": run.function_name,
        "requests": recording.count(b"\n"),
    }
    (out / RUN).write_text(json.dumps(meta, indent=1) + "\n")
    return out / RECORDING


def load_run(out: Path) -> Run | None:
    try:
        meta = json.loads((out / RUN).read_text())
        if not (out / RECORDING).is_file():
            return None
        return Run(
            start=datetime.fromisoformat(meta["start"]),
            end=datetime.fromisoformat(meta["end"]),
            period_seconds=int(meta["period_seconds"]),
            function_name=str(meta["function_name"]),
            requests=int(meta["requests"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def replay(recording: Path, target_url: str) -> tuple[int, int]:
    """Send every recorded request to target_url, in order; return (sent, failed)."""
    import base64

    sent = failed = 0
    target = urlparse(target_url)
    for line in recording.read_text().splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        original = urlparse(entry["url"])
        url = f"{target.scheme}://{target.netloc}{original.path}" + (f"?{original.query}" if original.query else "")
        body = entry.get("body") or ""
        data = base64.b64decode(body) if entry.get("body_encoded") else str(body).encode()
        headers = {k: v for k, v in (entry.get("headers") or {}).items() if k.lower() not in _HOP}
        request = urllib.request.Request(url, data=data or None, headers=headers, method=entry.get("method", "POST"))
        sent += 1
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                reply.read()
        except OSError:  # HTTPError included: a call that failed during the run fails again
            failed += 1
    return sent, failed


@contextmanager
def replayed(recording: Path) -> Iterator[str]:
    """A moto of our own on 127.0.0.1 holding what the recording holds; yields its URL."""
    from moto.server import ThreadedMotoServer

    from scripts.twin.moto_cloudwatch import enable_percentiles

    enable_percentiles()  # the twin's moto answers percentiles of the platform's metrics; so does this one
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        replay(recording, url)
        yield url
    finally:
        server.stop()
