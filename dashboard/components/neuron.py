"""Component trees of the neuron page (one filter of one layer): its link, its navigation, the sections the
callbacks fill, and the statistics and correlated filters drawn from an audit report (its flags are drawn by
``dashboard.components.audit.filter_flags``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from dash import dcc, html

from dashboard.components.attributions import POLL_MS
from dashboard.components.common import notice, panel

DEEPVIS_PRESETS = {
    "deepvis": "deepvis (Yosinski: pixels, decay, blur)",
    "lucid": "lucid (FFT, jitter/scale/rotate)",
}


def neuron_href(model: str, layer: str, channel: int, dataset: str | None = None) -> str:
    """The shareable path of one filter's page: ``/neuron/<model>/<layer>/<channel>[?dataset=..]``."""
    path = f"/neuron/{quote(model, safe='')}/{quote(layer, safe='')}/{int(channel)}"
    return path + ("?" + urlencode({"dataset": dataset}) if dataset else "")


def neuron_link(model: str, layer: str, channel: int, link_id: str) -> dcc.Link:
    """The 'Neuron page' link that Explore's filter detail and the audit's filter detail carry."""
    return dcc.Link(
        "Neuron page ↗", href=neuron_href(model, layer, channel), id=link_id, className="cl-neuron-link"
    )


def neuron_nav(
    model: str, layer: str, channel: int, channels: int, dataset: str | None, explore_href: str
) -> html.Nav:
    """Previous and next filter of the layer (bounded by its channel count) and the filter in Explore."""
    items: list[Any] = []
    if channel > 0:
        items.append(
            dcc.Link(
                f"← filter {channel - 1}",
                href=neuron_href(model, layer, channel - 1, dataset),
                id="neuron-prev",
            )
        )
    if channel < channels - 1:
        items.append(
            dcc.Link(
                f"filter {channel + 1} →",
                href=neuron_href(model, layer, channel + 1, dataset),
                id="neuron-next",
            )
        )
    items.append(dcc.Link("Open in Explore", href=explore_href, id="neuron-explore-link"))
    return html.Nav(items, className="cl-neuron-nav")


def _job_parts(name: str) -> list[Any]:
    return [
        dcc.Store(id=f"neuron-{name}-job"),
        dcc.Interval(id=f"neuron-{name}-poll", interval=POLL_MS, disabled=True),
    ]


def neuron_sections() -> html.Div:
    """The page's panels, hidden and empty until the callbacks check the path and fill them."""
    top = html.Div(
        [
            html.Div(
                [
                    html.Label("Dataset", htmlFor="neuron-dataset", className="cl-label"),
                    dcc.Dropdown(id="neuron-dataset", clearable=False, className="cl-deepvis-preset"),
                ],
                className="cl-deepvis-controls",
            ),
            html.Div(id="neuron-top-status", className="cl-caption", role="status"),
            html.Div(id="neuron-top-grid", className="cl-top-grid"),
            *_job_parts("top"),
        ]
    )
    deepvis = html.Div(
        [
            html.Div(id="neuron-deepvis-status", className="cl-caption", role="status"),
            html.Div(id="neuron-deepvis"),
            *_job_parts("deepvis"),
        ]
    )
    audit = html.Div(
        [
            html.Div(id="neuron-audit-status", className="cl-caption", role="status"),
            html.Div(id="neuron-audit-error"),
            html.Div(id="neuron-stats"),
            html.Div(id="neuron-flags"),
            dcc.Store(id="neuron-report"),
            *_job_parts("audit"),
        ]
    )
    return html.Div(
        [
            html.Div(
                [
                    panel("Top 9 images, with deconvnet crops", top, panel_id="neuron-panel-top"),
                    panel("DeepVis images", deepvis, panel_id="neuron-panel-deepvis"),
                ],
                className="cl-neuron-row",
            ),
            html.Div(
                [
                    panel("Activation statistics over the dataset", audit, panel_id="neuron-panel-stats"),
                    panel(
                        "Weights",
                        dcc.Loading(html.Div(id="neuron-weights"), type="dot"),
                        panel_id="neuron-panel-weights",
                    ),
                    panel(
                        "Most correlated filters",
                        html.Div(id="neuron-correlated"),
                        panel_id="neuron-panel-correlated",
                    ),
                ],
                className="cl-neuron-row",
            ),
        ],
        id="neuron-sections",
        hidden=True,
    )


def deepvis_pair(renders: dict[str, tuple[str | None, str]]) -> html.Div:
    """One image per preset (``preset -> (src or None while running, caption)``)."""
    return html.Div(
        [
            html.Figure(
                [
                    html.Img(
                        src=src,
                        alt=f"DeepVis image, {preset} preset",
                        className="cl-deepvis-img",
                        id=f"neuron-deepvis-{preset}",
                    )
                    if src
                    else html.Div("…", className="cl-deepvis-img cl-attr-empty"),
                    html.Figcaption([html.Strong(DEEPVIS_PRESETS.get(preset, preset)), html.Br(), caption]),
                ],
                className="cl-attr-tile",
            )
            for preset, (src, caption) in renders.items()
        ],
        className="cl-neuron-deepvis",
    )


def filter_statistics(report: dict[str, Any], la: dict[str, Any], filt: int) -> html.Dl:
    """The audit's numbers for one filter of its layer ``la`` (an entry of ``report['layers']``)."""
    sparsity = (la.get("sparsity") or {}).get("filters") or {}
    rows = [
        ("Dataset", f"{report['dataset']['id']} ({report['summary']['images']:,} images)"),
        (
            "Measured at",
            f"{la['response']} (after {la['activation'] or 'no activation'})"
            if la.get("response")
            else la["name"],
        ),
        *([("Mean", f"{la['mean'][filt]:.4g}")] if la.get("mean") else []),
        ("Active", f"positive on {100 * la['active_share'][filt]:.2f}% of positions"),
        ("Response std", f"{la['std'][filt]:.4g}"),
    ]
    if la.get("saturated_share"):
        rows.append(("Saturated", f"{100 * la['saturated_share'][filt]:.2f}% of positions at the ceiling"))
    if sparsity.get("zero_share"):
        rows.append(
            (
                "Sparsity",
                f"{100 * sparsity['zero_share'][filt]:.1f}% zeros · Hoyer {sparsity['hoyer'][filt]:.3f}",
            )
        )
    return html.Dl(
        [item for k, v in rows for item in (html.Dt(k), html.Dd(v))],
        className="cl-stats-dl",
        id="neuron-stats-list",
    )


def correlated_list(partners: list[tuple[int, float]], cluster: list[int], href: Any, filt: int) -> html.Div:
    """The closest filters by response correlation (each a link to its page) and the filter's cluster."""
    if not partners:
        return notice("No correlation matrix for this layer in the audit.")
    items = [html.Li([dcc.Link(f"filter {i}", href=href(i)), f"  r = {r:.3f}"]) for i, r in partners]
    others = [i for i in cluster if i != filt]
    note = (
        f"Clustered with {', '.join(f'#{i}' for i in others)} by the audit."
        if others
        else "In a cluster of its own."
    )
    return html.Div([html.Ol(items, id="neuron-correlated-list"), html.Div(note, className="cl-caption")])
