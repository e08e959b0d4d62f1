"""The local dashboard as one HTML page that draws its own graphs in the browser (SVG, no library,
no network), from the report `preheat dashboard` collected (scripts/dashboard.py)."""

from __future__ import annotations

import html
import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.dashboard import Dashboard
    from scripts.dashboard import MetricsEndpoint, Report
    from scripts.metrics_query import Window


def render_html(definition: Dashboard, report: Report, window: Window, target: MetricsEndpoint) -> str:
    """The dashboard as one HTML page that draws its graphs itself, in the browser (SVG, no library and
    no network): the same series, colours, axes and annotations as the PNG, each graph with a table of
    its series under it. Each graph's <svg> says how many series it drew (data-drawn), and the body
    data-rendered="1" once all are drawn (tests/infra/test_dashboard_browser.py loads it in Chromium)."""
    from infra import dashboard as spec

    data = {graph.title: series for graph, series in report}
    graphs: list[dict[str, Any]] = []
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(definition.name)} dashboard</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:16px;background:#fafafa}"
        ".grid{display:grid;grid-template-columns:repeat(24,1fr);gap:12px}"
        ".w{background:#fff;border:1px solid #ddd;border-radius:4px;padding:8px}"
        "h2{font-size:13px;font-weight:600;margin:0 0 4px}svg{width:100%;height:auto;display:block}"
        "svg text{font-size:10px;fill:#555}table{font-size:12px;border-collapse:collapse}"
        "td,th{padding:2px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
        ".warn{color:#a15c00;font-size:12px}</style></head><body>",
        f"<h1>{html.escape(definition.name)}</h1>",
        f"<p>{window.start:%Y-%m-%d %H:%M}–{window.end:%H:%M} UTC, {window.period_seconds} s periods, from "
        f"{html.escape(target.endpoint_url or 'CloudWatch')}. The same definition as the deployed CloudWatch "
        "dashboard (infra/dashboard.py).</p><div class='grid'>",
    ]
    for row in definition.rows:
        for widget in row:
            style = f"grid-column:span {widget.width}"
            if isinstance(widget, spec.Text):
                text = html.escape(widget.markdown).replace("\n", "<br>")
                parts.append(f"<div class='w' style='{style}'>{text}</div>")
                continue
            series = data[widget.title]
            by_id = {s.id: s for s in widget.series}
            graphs.append({
                "title": widget.title, "left": widget.left_label, "right": widget.right_label,
                "annotations": [{"label": a.label, "value": a.value, "color": a.color} for a in widget.annotations],
                "series": [{"label": d.label, "color": by_id[d.id].color, "right": by_id[d.id].right,
                            "points": [[t.timestamp() * 1000, v] for t, v in d.points(window)]} for d in series],
            })
            rows, warnings = [], []
            for s in series:
                points = [v for v in s.values if not math.isnan(v)]
                last = f"{points[-1]:.4g}" if points else "–"
                peak = f"{max(points):.4g}" if points else "–"
                rows.append(
                    f"<tr><td>{html.escape(s.label)}</td><td>{len(points)}</td><td>{last}</td><td>{peak}</td>"
                    f"<td>{html.escape(s.source)}</td></tr>"
                )
                warnings += [
                    f"<div class='warn'>{html.escape(s.label)}: {html.escape(w)}</div>" for w in s.warnings
                ]
            parts.append(
                f"<div class='w' style='{style}'><h2>{html.escape(widget.title)}</h2>"
                f"<svg class='graph' data-index='{len(graphs) - 1}' data-title='{html.escape(widget.title)}' "
                f"viewBox='0 0 {60 * widget.width} 240' role='img' aria-label='{html.escape(widget.title)}'></svg>"
                "<table><tr><th>series</th><th>points</th><th>last</th><th>max</th><th>from</th></tr>"
                + "".join(rows)
                + "</table>"
                + "".join(warnings)
                + "</div>"
            )
    payload = {"start": window.start.timestamp() * 1000, "end": window.end.timestamp() * 1000,
               "period": window.period_seconds, "graphs": graphs}
    # "</" cannot end the script early: JSON escapes it.
    parts.append("</div><script type='application/json' id='series'>"
                 + json.dumps(payload).replace("</", "<\\/") + "</script>")
    parts.append(f"<script>{_GRAPHS_JS}</script></body></html>")
    return "\n".join(parts)


# Draws every <svg class="graph"> from the JSON above: one polyline (and its points) per series, the
# left and right y axes from 0, the window's periods on the x axis, annotations dashed (named instead
# when far above the data, as in the PNG), a legend; "no data" when no series has a point.
_GRAPHS_JS = """
(function () {
  var data = JSON.parse(document.getElementById('series').textContent);
  var NS = 'http://www.w3.org/2000/svg', PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd'];
  function el(parent, name, attrs, text) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (text !== undefined) node.textContent = text;
    parent.appendChild(node);
    return node;
  }
  function nice(max) {  // the smallest round number 5% above the data
    if (!(max > 0)) return 1;
    var want = max * 1.05, unit = Math.pow(10, Math.floor(Math.log10(want)));
    var steps = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * unit >= want) return steps[i] * unit;
    return 10 * unit;
  }
  function label(v) { return Math.abs(v) >= 1000 ? (v / 1000).toFixed(1) + 'k' : +v.toPrecision(3) + ''; }
  function clock(ms) { var d = new Date(ms); return d.toISOString().substr(11, data.end - data.start > 900000 ? 5 : 8); }
  document.querySelectorAll('svg.graph').forEach(function (svg) {
    var g = data.graphs[+svg.getAttribute('data-index')], box = svg.viewBox.baseVal;
    var L = 46, R = box.width - 46, T = 10, B = box.height - 58;
    var sides = {left: 0, right: 0}, drawn = 0;
    g.series.forEach(function (s) { s.points.forEach(function (p) {
      var side = s.right ? 'right' : 'left'; sides[side] = Math.max(sides[side], p[1]); }); });
    var peak = sides.left;
    g.annotations.forEach(function (a) { if (!(peak > 0) || a.value <= 3 * peak) sides.left = Math.max(sides.left, a.value); });
    var top = {left: nice(sides.left), right: nice(sides.right)};
    function x(t) { return L + (R - L) * (t - data.start) / (data.end - data.start); }
    function y(v, side) { return B - (B - T) * v / top[side]; }
    for (var i = 0; i <= 4; i++) {
      var v = top.left * i / 4;
      el(svg, 'line', {x1: L, x2: R, y1: y(v, 'left'), y2: y(v, 'left'), stroke: '#eee'});
      el(svg, 'text', {x: L - 4, y: y(v, 'left') + 3, 'text-anchor': 'end'}, label(v));
      if (sides.right > 0) el(svg, 'text', {x: R + 4, y: y(top.right * i / 4, 'right') + 3}, label(top.right * i / 4));
    }
    var stepMs = data.period * 1000 * Math.max(1, Math.ceil((data.end - data.start) / (data.period * 1000) / 8));
    for (var t = data.start; t <= data.end; t += stepMs) {
      el(svg, 'line', {x1: x(t), x2: x(t), y1: T, y2: B, stroke: '#f3f3f3'});
      el(svg, 'text', {x: x(t), y: B + 12, 'text-anchor': 'middle'}, clock(t));
    }
    el(svg, 'line', {x1: L, x2: R, y1: B, y2: B, stroke: '#999'});
    el(svg, 'text', {x: 4, y: T + 8}, g.left);
    if (sides.right > 0) el(svg, 'text', {x: box.width - 4, y: T + 8, 'text-anchor': 'end'}, g.right);
    var legend = [];
    g.series.forEach(function (s, i) {
      var color = s.color || PALETTE[i % PALETTE.length], side = s.right ? 'right' : 'left';
      legend.push({label: s.label, color: color, dash: ''});
      if (!s.points.length) return;
      var pts = s.points.map(function (p) { return x(p[0]).toFixed(1) + ',' + y(p[1], side).toFixed(1); });
      var line = el(svg, 'polyline', {'class': 'series', points: pts.join(' '), fill: 'none', stroke: color,
                                      'stroke-width': 1.6, 'data-label': s.label, 'data-points': s.points.length});
      el(line, 'title', {}, s.label);
      s.points.forEach(function (p) {
        el(svg, 'circle', {cx: x(p[0]), cy: y(p[1], side), r: 2.5, fill: color}).appendChild(
          document.createElementNS(NS, 'title')).textContent = s.label + ': ' + label(p[1]) + ' at ' + clock(p[0]);
      });
      drawn++;
    });
    g.annotations.forEach(function (a) {
      if (peak > 0 && a.value > 3 * peak) { legend.push({label: a.label + ' at ' + a.value + ' (off scale)', color: a.color, dash: '4 3'}); return; }
      el(svg, 'line', {x1: L, x2: R, y1: y(a.value, 'left'), y2: y(a.value, 'left'), stroke: a.color,
                       'stroke-dasharray': '4 3', 'class': 'annotation'});
      legend.push({label: a.label, color: a.color, dash: '4 3'});
    });
    legend.forEach(function (item, i) {
      var lx = L + (i % 3) * ((R - L) / 3), ly = B + 28 + Math.floor(i / 3) * 13;
      el(svg, 'line', {x1: lx, x2: lx + 14, y1: ly - 3, y2: ly - 3, stroke: item.color, 'stroke-width': 2,
                       'stroke-dasharray': item.dash});
      el(svg, 'text', {x: lx + 18, y: ly}, item.label);
    });
    if (!drawn) el(svg, 'text', {x: (L + R) / 2, y: (T + B) / 2, 'text-anchor': 'middle', 'class': 'no-data'}, 'no data');
    svg.setAttribute('data-drawn', drawn);
  });
  document.body.setAttribute('data-rendered', '1');
})();
"""
