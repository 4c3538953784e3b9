"""Audit reports: JSON, a self-contained HTML page, and the plain-text summary the CLI prints.

All three take the JSON-ready report dict produced by :meth:`server.audits.AuditService.run`.
"""

from __future__ import annotations

import html
import io
import json
from typing import Any

import numpy as np

KIND_LABELS = {
    "dead": "dead",
    "saturated": "saturated",
    "low_variance": "near-constant",
    "redundant": "redundant",
}


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=1, allow_nan=False, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def correlation_npy(correlation: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(correlation, dtype=np.float16), allow_pickle=False)
    return buf.getvalue()


def summary_text(report: dict[str, Any]) -> str:
    """A readable multi-line summary: findings per kind, the worst layers, layer-level findings, gates."""
    s = report["summary"]
    lines = [
        f"ConvLens audit of {report.get('model', '?')}"
        f"{' (UNTRAINED weights)' if report.get('untrained') else ''} on "
        f"{report.get('dataset', {}).get('id', '?')}: {s['images']} images, {s['layers']} layers, "
        f"{s['filters']} filters",
    ]
    for kind, label in KIND_LABELS.items():
        lines.append(f"  {label:<14} {s['counts'][kind]:>6}  ({s['percent'][kind]:.2f}%)")
    lines.append(f"  positive-only layers: {', '.join(report['positive_layers']) or 'none'}")
    pairs = report.get("redundant_layer_pairs") or []
    lines.append(
        "  redundant layer pairs (CKA): "
        + (", ".join(f"{p['a']}~{p['b']} ({p['cka']:.3f})" for p in pairs) or "none")
    )
    worst = sorted(
        (layer for layer in report["layers"] if sum(layer["counts"].values())),
        key=lambda la: -sum(la["counts"].values()),
    )[:5]
    if worst:
        lines.append("  most flagged layers:")
        for la in worst:
            detail = ", ".join(f"{KIND_LABELS[k]} {v}" for k, v in la["counts"].items() if v)
            lines.append(f"    {la['name']:<32} {detail} of {la['channels']}")
    sep = report.get("separability") or []
    if sep:
        lines.append(
            f"  class separability (k-NN purity): {sep[0]['layer']} {sep[0]['purity']:.3f} -> "
            f"{sep[-1]['layer']} {sep[-1]['purity']:.3f}"
        )
    wi = report.get("what_if")
    if wi:
        lines.append(
            f"  what-if: zeroing {wi['zeroed_filters']} flagged filters changes accuracy "
            f"{100 * wi['accuracy_before']:.2f}% -> {100 * wi['accuracy_after']:.2f}% "
            f"({wi['change_points']:+.2f} points)"
        )
    for gate in report.get("gates") or []:
        verdict = "FAILED" if gate["failed"] else "passed"
        lines.append(f"  gate {gate['gate']}: {verdict} (measured {gate['value']:.4g})")
    if not report.get("gates"):
        lines.append("  verdict: " + ("clean" if s["clean"] else "findings above"))
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th{background:#f2f2f2}td.l,th.l{text-align:left}
.bad{color:#b00020;font-weight:600}.ok{color:#1b7e2f;font-weight:600}
.cka td{width:1.4rem;height:1.4rem;padding:0;border:none}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _separability_svg(points: list[dict[str, Any]], width: int = 640, height: int = 220) -> str:
    if not points:
        return "<p>No labels: no separability curve.</p>"
    pad = 30
    n = len(points)
    xs = [pad + (width - 2 * pad) * (i / max(n - 1, 1)) for i in range(n)]
    ys = [height - pad - (height - 2 * pad) * float(p["purity"]) for p in points]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3"><title>{_e(p["layer"])}: {p["purity"]:.3f}</title></circle>'
        for x, y, p in zip(xs, ys, points, strict=True)
    )
    return (
        f'<svg width="{width}" height="{height}" role="img" aria-label="k-NN purity per layer">'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#999"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#999"/>'
        f'<text x="2" y="{pad}" font-size="10">1.0</text><text x="2" y="{height - pad}" font-size="10">0.0</text>'
        f'<polyline fill="none" stroke="#3366cc" stroke-width="2" points="{path}"/>{dots}</svg>'
    )


def _cka_table(layers: list[str], matrix: list[list[float]]) -> str:
    if not layers or len(layers) > 80:
        return "<p>(CKA matrix in the JSON report.)</p>"
    rows = []
    for name, row in zip(layers, matrix, strict=True):
        cells = "".join(
            f'<td title="{_e(name)} ~ {_e(other)}: {v:.3f}" '
            f'style="background:rgb({int(255 - 200 * v)},{int(255 - 150 * v)},255)"></td>'
            for other, v in zip(layers, row, strict=True)
        )
        rows.append(f'<tr><th class="l">{_e(name)}</th>{cells}</tr>')
    return f'<table class="cka">{"".join(rows)}</table>'


def _layer_row(la: dict[str, Any]) -> str:
    purity = "" if la["separability"] is None else f"{la['separability']:.3f}"
    warn = " &#9888;" if la["positive_only"] else ""
    counts = "".join(f"<td>{la['counts'][k]}</td>" for k in KIND_LABELS)
    clusters = sum(1 for c in la["clusters"] if len(c) > 1)
    return (
        f"<tr><td class='l'>{_e(la['name'])}</td><td class='l'>{_e(la['type'])}</td><td>{la['channels']}</td>"
        f"<td class='l'>{_e(la['activation'] or '-')}</td>{counts}"
        f"<td>{100 * la['positive_weight_share']:.1f}%{warn}</td><td>{clusters}</td><td>{purity}</td></tr>"
    )


def render_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page (no scripts, no external resources)."""
    s = report["summary"]
    untrained = " <span class='bad'>(untrained weights)</span>" if report.get("untrained") else ""
    head = (
        f"<h1>Neuron audit: {_e(report.get('model', '?'))}{untrained}</h1>"
        f"<p>Dataset <b>{_e(report.get('dataset', {}).get('id', '?'))}</b>, {s['images']} images, "
        f"{s['layers']} layers, {s['filters']} filters. Verdict: "
        + ("<span class='ok'>clean</span>" if s["clean"] else "<span class='bad'>findings</span>")
        + "</p>"
    )
    counts = "".join(
        f"<tr><td class='l'>{label}</td><td>{s['counts'][k]}</td><td>{s['percent'][k]:.2f}%</td></tr>"
        for k, label in KIND_LABELS.items()
    )
    summary = f"<h2>Summary</h2><table><tr><th class='l'>finding</th><th>filters</th><th>share</th></tr>{counts}</table>"
    summary += f"<p>Positive-only layers: {_e(', '.join(report['positive_layers']) or 'none')}</p>"
    gates = "".join(
        f"<li class='{'bad' if g['failed'] else 'ok'}'>{_e(g['gate'])}: "
        f"{'failed' if g['failed'] else 'passed'} (measured {g['value']:.4g})</li>"
        for g in report.get("gates") or []
    )
    if gates:
        summary += f"<h3>Gates</h3><ul>{gates}</ul>"
    wi = report.get("what_if")
    if wi:
        summary += (
            f"<h3>What-if</h3><p>Zeroing {wi['zeroed_filters']} flagged filters ({_e(', '.join(wi['kinds']))}): "
            f"accuracy {100 * wi['accuracy_before']:.2f}% &rarr; {100 * wi['accuracy_after']:.2f}% "
            f"({wi['change_points']:+.2f} points) on {wi['images']} images.</p>"
        )
    layer_rows = "".join(_layer_row(la) for la in report["layers"])
    layers = (
        "<h2>Layers</h2><table><tr><th class='l'>layer</th><th class='l'>type</th><th>filters</th>"
        "<th class='l'>activation</th>"
        + "".join(f"<th>{label}</th>" for label in KIND_LABELS.values())
        + f"<th>positive weights</th><th>clusters</th><th>k-NN purity</th></tr>{layer_rows}</table>"
    )
    flag_rows = "".join(
        f"<tr><td class='l'>{_e(f['layer'])}</td><td>{f['filter']}</td><td class='l'>{KIND_LABELS[f['kind']]}</td>"
        f"<td class='l'>{_e(f['detail'])}</td></tr>"
        for f in report["flags"][:2000]
    )
    flags = (
        f"<h2>Flagged filters ({len(report['flags'])})</h2><table><tr><th class='l'>layer</th><th>filter</th>"
        f"<th class='l'>finding</th><th class='l'>detail</th></tr>{flag_rows}</table>"
    )
    sep = f"<h2>Class separability per layer</h2>{_separability_svg(report.get('separability') or [])}"
    cka = f"<h2>Layer similarity (linear CKA)</h2>{_cka_table(report['cka']['layers'], report['cka']['matrix'])}"
    thresholds = "".join(
        f"<tr><td class='l'>{_e(k)}</td><td>{v:g}</td></tr>" for k, v in report["thresholds"].items()
    )
    th = f"<h2>Thresholds</h2><table>{thresholds}</table>"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>ConvLens audit: {_e(report.get('model', '?'))}</title><style>{_CSS}</style></head><body>"
        f"{head}{summary}{layers}{flags}{sep}{cka}{th}</body></html>"
    )
