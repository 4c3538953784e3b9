"""Component trees of the audit page (plain functions of API data)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dash import dcc, html

from dashboard.components.common import badge
from dashboard.components.neuron import neuron_link
from dashboard.state import ExploreState

KIND_LABELS = {
    "dead": "dead",
    "saturated": "saturated",
    "low_variance": "near-constant",
    "redundant": "redundant",
}
KIND_TONES = {"dead": "danger", "saturated": "warn", "low_variance": "warn", "redundant": "neutral"}


def threshold_inputs(defaults: dict[str, float]) -> list[html.Div]:
    """One number input per threshold, pre-filled with its default (all in [0, 1])."""
    return [
        html.Div(
            [
                html.Label(name, htmlFor=f"audit-threshold-{name}", className="cl-caption"),
                dcc.Input(
                    id={"type": "audit-threshold", "name": name},
                    type="number",
                    min=0,
                    max=1,
                    step="any",
                    value=value,
                    debounce=True,
                    className="cl-audit-threshold",
                ),
            ],
            className="cl-audit-threshold-row",
        )
        for name, value in defaults.items()
    ]


def summary_badges(report: dict[str, Any]) -> html.Div:
    s = report["summary"]
    items: list[Any] = [
        html.Span(
            f"{report['model']} on {report['dataset']['id']}: {s['images']:,} images, "
            f"{s['layers']} layers, {s['filters']:,} filters"
        )
    ]
    if report.get("untrained"):
        items.append(badge("UNTRAINED", "danger"))
    items.append(badge("clean", "good") if s["clean"] else badge(f"{s['flagged']:,} flagged", "warn"))
    for kind, label in KIND_LABELS.items():
        if s["counts"][kind]:
            items.append(badge(f"{label} {s['counts'][kind]} ({s['percent'][kind]:.1f}%)", KIND_TONES[kind]))
    if report["positive_layers"]:
        items.append(badge(f"positive-only: {', '.join(report['positive_layers'])}", "warn"))
    for gate in report.get("gates") or []:
        items.append(
            badge(
                f"{gate['gate']}: {'FAILED' if gate['failed'] else 'passed'}",
                "danger" if gate["failed"] else "good",
            )
        )
    what_if = report.get("what_if")
    if what_if:
        items.append(
            html.Span(
                f" What-if: zeroing {what_if['zeroed_filters']} flagged filters changes accuracy by "
                f"{what_if['change_points']:+.2f} points ({100 * what_if['accuracy_before']:.2f}% → "
                f"{100 * what_if['accuracy_after']:.2f}%).",
                className="cl-caption",
            )
        )
    return html.Div(items, id="audit-summary-badges", className="cl-audit-badges")


def layer_table(report: dict[str, Any]) -> html.Table:
    """The per-layer summary table; a layer name is a button that shows its correlation heat map."""
    head = html.Tr(
        [html.Th("layer"), html.Th("type"), html.Th("filters"), html.Th("activation")]
        + [html.Th(label) for label in KIND_LABELS.values()]
        + [html.Th("positive weights"), html.Th("clusters"), html.Th("k-NN purity")]
    )
    rows = []
    for la in report["layers"]:
        flagged = sum(la["counts"].values())
        rows.append(
            html.Tr(
                [
                    html.Td(
                        html.Button(
                            la["name"],
                            id={"type": "audit-layer-pick", "name": la["name"]},
                            n_clicks=0,
                            className="cl-link-button",
                        )
                    ),
                    html.Td(la["type"]),
                    html.Td(la["channels"]),
                    html.Td(la["activation"] or "-"),
                ]
                + [
                    html.Td(la["counts"][k] or "", className="cl-bad" if la["counts"][k] else "")
                    for k in KIND_LABELS
                ]
                + [
                    html.Td(
                        f"{100 * la['positive_weight_share']:.0f}%" + (" ⚠" if la["positive_only"] else ""),
                        className="cl-bad" if la["positive_only"] else "",
                    ),
                    html.Td(sum(1 for c in la["clusters"] if len(c) > 1)),
                    html.Td("" if la["separability"] is None else f"{la['separability']:.3f}"),
                ],
                className="cl-row-flagged" if flagged or la["positive_only"] else "",
            )
        )
    return html.Table([html.Thead(head), html.Tbody(rows)], id="audit-layer-table", className="cl-table")


def flag_list(report: dict[str, Any], limit: int = 300) -> html.Div:
    """Every flagged filter as a button that opens it (the first ``limit``)."""
    flags = report["flags"]
    if not flags:
        return html.Div("No flagged filters at these thresholds.", className="cl-notice")
    buttons = [
        html.Button(
            [html.Strong(f"{f['layer']} #{f['filter']}"), f" {KIND_LABELS[f['kind']]}: {f['detail']}"],
            id={"type": "audit-flag", "layer": f["layer"], "filter": f["filter"]},
            n_clicks=0,
            className=f"cl-audit-flag cl-audit-flag-{f['kind']}",
        )
        for f in flags[:limit]
    ]
    more = (
        [html.Div(f"… and {len(flags) - limit:,} more (see the JSON report).", className="cl-caption")]
        if len(flags) > limit
        else []
    )
    return html.Div(buttons + more, className="cl-audit-flags")


def filter_flags(flags: list[dict[str, Any]]) -> html.Div:
    """The audit's findings for this filter (dead, saturated, near-constant, redundant), or that it has none."""
    if not flags:
        return html.Div(
            [badge("no flags", "good"), " The audit finds nothing wrong with this filter."],
            id="neuron-flag-list",
        )
    return html.Div(
        [
            html.Div(
                [
                    badge(KIND_LABELS[f["kind"]], KIND_TONES[f["kind"]]),
                    html.Span(f" {f['detail']}", className="cl-caption"),
                ]
            )
            for f in flags
        ],
        id="neuron-flag-list",
    )


def explore_link(model: str, layer: str, filt: int, untrained: bool, image: str | None = None) -> str:
    """The explore view of one filter; with ``image`` (an image id) it opens on that image's maps."""
    return "/" + ExploreState(model=model, image=image, layer=layer, filter=filt, untrained=untrained).query()


def filter_detail(
    report: dict[str, Any],
    layer: str,
    filt: int,
    thumbnails: list[tuple[int, str]],
    partners: list[tuple[int, float]],
    image: str | None = None,
) -> html.Div:
    """One filter: its finding, activation statistics, most-activating images, closest filters and a link to
    the explore page (its activation maps and DeepVis image)."""
    la = next(x for x in report["layers"] if x["name"] == layer)
    flag = next((f for f in report["flags"] if f["layer"] == layer and f["filter"] == filt), None)
    header = [html.H3(f"{layer} · filter {filt}")]
    if flag:
        header.append(badge(KIND_LABELS[flag["kind"]], KIND_TONES[flag["kind"]]))
        header.append(html.Span(f" {flag['detail']}", className="cl-caption"))
    stats = html.Ul(
        [
            html.Li(f"positive on {100 * la['active_share'][filt]:.2f}% of positions"),
            html.Li(f"response std {la['std'][filt]:.4g}"),
            html.Li(
                "most correlated filters: "
                + (", ".join(f"#{i} (r = {r:.3f})" for i, r in partners) or "none")
            ),
        ]
    )
    images = html.Div(
        [
            html.Figure(
                [
                    html.Img(src=src, alt=f"image {idx}", className="cl-audit-thumb"),
                    html.Figcaption(f"#{idx}"),
                ]
            )
            for idx, src in thumbnails
        ],
        className="cl-audit-thumbs",
    )
    link = dcc.Link(
        "Open in Explore: activation maps and DeepVis image →",
        href=explore_link(report["model"], layer, filt, bool(report.get("untrained")), image),
        id="audit-explore-link",
    )
    page = neuron_link(report["model"], layer, filt, "audit-neuron-link")
    return html.Div(
        [
            html.Div(header, className="cl-audit-detail-head"),
            stats,
            html.H4("Images it responds to most"),
            images,
            html.Div([link, " · ", page]),
        ],
        id="audit-filter-detail",
    )


def checkerboard_panel(report: dict[str, Any], src: Callable[[str], str]) -> html.Div:
    """The strided layers: flag from the architecture, measured score against a stride-1 layer, worst maps."""
    board = report.get("checkerboard")
    if not board or not board["layers"]:
        return html.Div(
            "No strided, transposed or pooling layer: no checkerboard risk.", className="cl-notice"
        )
    ref = board.get("reference_layer")
    intro = html.P(
        f"{len(board['flagged'])} of {len(board['layers'])} strided layers have a kernel not divisible by their "
        f"stride (Odena et al. 2016). Score: share of the deconvnet map's spectral energy at the stride's "
        f"frequencies" + (f", against stride-1 layer {ref}." if ref else "."),
        className="cl-caption",
    )
    head = html.Tr(
        [html.Th(h) for h in ("layer", "kernel / stride", "flag", "score", "vs stride 1", "worst maps")]
    )
    rows = []
    for la in sorted(board["layers"], key=lambda x: -(x["score"] or 0)):
        score = "—" if la["score"] is None else f"{la['score']:.3f}"
        ratio = "—" if la["ratio"] is None else f"{la['ratio']:.2f}x"
        maps = [
            html.Figure(
                [
                    html.Img(
                        src=src(w["url"]), alt=f"{la['layer']} image {w['image']}", className="cl-checker-map"
                    ),
                    html.Figcaption(f"#{w['image']} {w['share']:.2f}"),
                ]
            )
            for w in la["worst"]
            if w.get("url")
        ]
        rows.append(
            html.Tr(
                [
                    html.Td(la["layer"]),
                    html.Td(
                        f"{'x'.join(map(str, la['kernel']))} / {'x'.join(map(str, la['stride']))} ({la['kind']})"
                    ),
                    html.Td(
                        badge("uneven", "warn") if la["flagged"] else badge("even", "good"),
                        title=la["reason"],
                    ),
                    html.Td(score),
                    html.Td(ratio),
                    html.Td(html.Div(maps, className="cl-checker-maps")),
                ]
            )
        )
    return html.Div(
        [intro, html.Table([html.Thead(head), html.Tbody(rows)], className="cl-table")],
        id="audit-checkerboard-table",
    )
