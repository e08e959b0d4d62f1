"""`preheat dashboard`'s HTML in a real browser: headless Chromium (Debian's `chromium`, installed by
`make sysdeps`) loads the page, runs its script, and every graph with data draws its series."""

from __future__ import annotations

import math
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from infra import dashboard as spec
from scripts.dashboard import MetricsEndpoint
from scripts.dashboard_html import render_html
from scripts.metrics_query import SeriesData, Window

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed: `make sysdeps` (as root) installs Debian's chromium"
)
EMPTY = "SageMaker errors"  # the graph given no data below: it must say so, not draw


def chromium(*flags: str, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--window-size=1400,2600", "--hide-scrollbars",
         "--virtual-time-budget=5000", *flags],
        capture_output=True, text=True, timeout=120, check=True,
    )


class Graphs(HTMLParser):
    """Each <svg class="graph"> of the rendered DOM: its data-drawn, its series' point counts, its text."""

    def __init__(self) -> None:
        super().__init__()
        self.graphs: dict[str, dict[str, Any]] = {}
        self.rendered = False
        self._current: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.rendered = a.get("data-rendered") == "1"
        if tag == "svg" and a.get("class") == "graph":
            self._current = self.graphs[str(a["data-title"])] = {"drawn": a.get("data-drawn"), "series": [], "text": ""}
        elif tag == "polyline" and self._current is not None and a.get("class") == "series":
            self._current["series"].append((a.get("data-label"), int(a.get("data-points") or 0)))

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current["text"] += data


def test_every_graph_draws_its_series_in_chromium(tmp_path: Path) -> None:
    definition = spec.build("preheat", spec.Names(endpoint_name="preheat-embeddings"))
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    window = Window(start, start + timedelta(minutes=5), 60)
    report = []
    for graph in definition.graphs():
        series = []
        for i, s in enumerate(graph.visible()):
            values = [math.nan] * window.buckets
            if graph.title != EMPTY:
                for b in range(1, 4):
                    values[b] = 10.0 * (i + 1) + b
            series.append(SeriesData(s.id, s.label or s.id, tuple(values), "test"))
        report.append((graph, series))
    page = tmp_path / "dashboard.html"
    page.write_text(render_html(definition, report, window, MetricsEndpoint("http://127.0.0.1:1", "us-east-1", local=True)))

    dom = chromium("--dump-dom", page.as_uri(), profile=tmp_path / "profile").stdout
    parsed = Graphs()
    parsed.feed(dom)
    assert parsed.rendered, "the page's script did not finish"
    assert set(parsed.graphs) == {g.title for g in definition.graphs()}
    for graph, series in report:
        drawn = parsed.graphs[graph.title]
        if graph.title == EMPTY:
            assert (drawn["drawn"], drawn["series"]) == ("0", []) and "no data" in drawn["text"]
            continue
        assert drawn["drawn"] == str(len(series)), graph.title
        assert [(label, n) for label, n in drawn["series"]] == [(s.label, 3) for s in series], graph.title
        assert "no data" not in drawn["text"]

    shot = tmp_path / "dashboard.png"
    chromium(f"--screenshot={shot}", page.as_uri(), profile=tmp_path / "profile")
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[:2] == (2600, 1400)
    colours = {tuple(p) for p in pixels[::7, ::7, :3].reshape(-1, 3).round(2).tolist()}
    assert len(colours) > 50, "the screenshot is (nearly) blank"
