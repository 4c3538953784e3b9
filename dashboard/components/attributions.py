"""The selected filter seen four ways (activation, deconvnet, guided backprop, Grad-CAM) and the DeepVis
panel (target, preset, steps, seed, live progress and the image updating while the job runs; for a class
image, the second model's verdict and top 5)."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboard.components.common import radio

METHOD_TITLES = {
    "activation": "Activation",
    "deconvnet": "Deconvnet",
    "guided_backprop": "Guided backprop",
    "gradcam": "Grad-CAM (top class)",
}
POLL_MS = 400


def attribution_tile(method: str, src: str | None = None, caption: str = "") -> html.Figure:
    return html.Figure(
        [
            html.Img(
                src=src, alt=f"{METHOD_TITLES[method]} map", className="cl-attr-img", id=f"attr-img-{method}"
            )
            if src
            else html.Div("…", className="cl-attr-img cl-attr-empty"),
            html.Figcaption([html.Strong(METHOD_TITLES[method]), html.Br(), caption]),
        ],
        className="cl-attr-tile",
    )


def attribution_row(srcs: dict[str, str | None], captions: dict[str, str] | None = None) -> html.Div:
    """The four tiles side by side, in the lecture's order."""
    captions = captions or {}
    return html.Div(
        [attribution_tile(m, srcs.get(m), captions.get(m, "")) for m in METHOD_TITLES],
        className="cl-attr-row",
    )


def attributions_section() -> html.Section:
    """Side-by-side maps of the selected filter; callbacks fill ``attr-row``."""
    return html.Section(
        [
            html.Div(
                [
                    html.H4("What drives this filter", className="cl-subtitle"),
                    radio(
                        "attr-position",
                        [(" strongest position", "max"), (" whole map", "all")],
                        "max",
                        "cl-radio",
                    ),
                ],
                className="cl-attr-header",
            ),
            html.Div(id="attr-error"),
            dcc.Loading(html.Div(id="attr-row", className="cl-attr-box"), type="dot", delay_show=150),
        ],
        className="cl-attr-section",
        id="panel-attributions",
    )


def deepvis_section() -> html.Section:
    """DeepVis for the selected filter or a class: knobs, start/cancel, progress, the live image and, for
    a class, the second model's verdict."""
    return html.Section(
        [
            html.H4("DeepVis: an image that excites this filter (or a class)", className="cl-subtitle"),
            html.Div(
                [
                    html.Label("Target", htmlFor="deepvis-target", className="cl-label"),
                    radio(
                        "deepvis-target",
                        [("this filter", "filter"), ("class", "class")],
                        "filter",
                        "cl-deepvis-target",
                    ),
                    html.Div(
                        dcc.Input(
                            id="deepvis-class", type="number", min=0, step=1, value=1, placeholder="class"
                        ),
                        className="cl-num",
                        title="class index (ImageNet: 1 = goldfish)",
                    ),
                    html.Label("Preset", htmlFor="deepvis-preset", className="cl-label"),
                    dcc.Dropdown(
                        id="deepvis-preset",
                        options=[
                            {
                                "label": "deepvis (Yosinski: pixels, decay, blur, clipping)",
                                "value": "deepvis",
                            },
                            {
                                "label": "lucid (FFT, decorrelated colour, jitter/scale/rotate)",
                                "value": "lucid",
                            },
                            {
                                "label": "fooling (pixels, no regularisers: adversarial noise)",
                                "value": "fooling",
                            },
                        ],
                        value="deepvis",
                        clearable=False,
                        className="cl-deepvis-preset",
                    ),
                    html.Label("Steps", htmlFor="deepvis-steps", className="cl-label"),
                    html.Div(
                        dcc.Input(id="deepvis-steps", type="number", min=1, max=4096, step=1, value=128),
                        className="cl-num",
                    ),
                    html.Label("Seed", htmlFor="deepvis-seed", className="cl-label"),
                    html.Div(
                        dcc.Input(id="deepvis-seed", type="number", min=0, step=1, value=0),
                        className="cl-num",
                    ),
                    html.Button(
                        "Run DeepVis", id="deepvis-start", n_clicks=0, className="cl-btn cl-btn-primary"
                    ),
                    html.Button("Cancel", id="deepvis-cancel", n_clicks=0, className="cl-btn", disabled=True),
                ],
                className="cl-deepvis-controls",
            ),
            html.Progress(id="deepvis-progress", value="0", max="1", className="cl-deepvis-progress"),
            html.Div(id="deepvis-status", className="cl-caption", role="status"),
            html.Div(
                [
                    html.Img(id="deepvis-image", className="cl-deepvis-img", alt="DeepVis image"),
                    html.Div(id="deepvis-verdict", className="cl-deepvis-verdict"),
                ],
                className="cl-deepvis-result",
            ),
            dcc.Store(id="deepvis-job"),
            dcc.Interval(id="deepvis-poll", interval=POLL_MS, disabled=True),
        ],
        className="cl-deepvis-section",
        id="panel-deepvis",
    )


def top_images_section() -> html.Section:
    """The DeepVis toolbox's top-9: the dataset images that excite this filter most, with deconv crops."""
    return html.Section(
        [
            html.H4("Top images in a dataset", className="cl-subtitle"),
            html.Div(
                [
                    dcc.Dropdown(
                        id="top-dataset", placeholder="Pick a dataset", className="cl-deepvis-preset"
                    ),
                    html.Button("Find top 9", id="top-start", n_clicks=0, className="cl-btn"),
                ],
                className="cl-deepvis-controls",
            ),
            html.Div(id="top-status", className="cl-caption", role="status"),
            html.Div(id="top-grid", className="cl-top-grid"),
            dcc.Store(id="top-job"),
            dcc.Interval(id="top-poll", interval=POLL_MS, disabled=True),
        ],
        className="cl-top-section",
        id="panel-top-images",
    )


def top_images_grid(images: list[dict[str, Any]], to_src: Any) -> html.Div:
    """Each image's crop next to its deconvolution crop, strongest first."""
    return html.Div(
        [
            html.Figure(
                [
                    html.Div(
                        [
                            html.Img(
                                src=to_src(item["crop_url"]),
                                alt=f"image {item['index']}",
                                className="cl-top-img",
                            ),
                            html.Img(
                                src=to_src(item["deconv_crop_url"]),
                                alt=f"deconvolution of image {item['index']}",
                                className="cl-top-img",
                            ),
                        ],
                        className="cl-top-pair",
                    ),
                    html.Figcaption(f"#{item['index']} · {item['label']} · {item['value']:.3g}"),
                ],
                className="cl-top-tile",
            )
            for item in images
        ],
        className="cl-top-tiles",
    )


def filter_insights() -> html.Div:
    """The three sections, for the filter detail view."""
    return html.Div(
        [attributions_section(), deepvis_section(), top_images_section()], className="cl-insights"
    )


VERDICT_CLASSES = {"robust feature": "cl-verdict-robust", "fooling image": "cl-verdict-fooling"}


def unsure_note(result: dict[str, Any], second: dict[str, Any]) -> list[html.Div]:
    """A fooling image the rendered model itself is not sure of (below 50%): say so next to the verdict."""
    if second.get("verdict") != "fooling image" or second.get("own_sure", True):
        return []
    return [
        html.Div(
            f"{result.get('model')} itself is below 50% on this image: the render has not converged "
            "(more steps?), so neither model sees the class yet.",
            className="cl-caption cl-verdict-unsure",
            id="deepvis-verdict-unsure",
        )
    ]


def verdict_card(result: dict[str, Any] | None) -> html.Div | None:
    """The second opinion on a class image: the verdict, both models' probabilities, the other's top 5."""
    second = (result or {}).get("second_opinion")
    if not second:
        return None
    target = (result or {}).get("target", {}).get("class_index")
    label = (result or {}).get("class_label") or f"class {target}"
    rows = [
        html.Li(
            f"{row.get('label') or row['index']}: {row['probability']:.1%}",
            className="cl-verdict-target" if row["index"] == target else None,
        )
        for row in second.get("other_top", [])
    ]
    return html.Div(
        [
            html.Strong(
                second["verdict"], className=VERDICT_CLASSES.get(second["verdict"], "cl-verdict-other")
            ),
            html.Div(
                f"{result.get('model')}: {label} at {second['own_probability']:.1%}; "
                f"{second['model']}: {second['other_probability']:.1%} (rank {second['other_rank']})",
                className="cl-caption",
            ),
            *unsure_note(result, second),
            html.Div(f"{second['model']} top 5:", className="cl-caption"),
            html.Ol(rows, className="cl-verdict-top"),
        ],
        id="deepvis-verdict-card",
    )


def job_status_text(job: dict[str, Any]) -> str:
    status = job.get("status", "")
    if status == "succeeded":
        r = job.get("result") or {}
        return f"Done: objective {r.get('start_value', 0):.3g} at the start noise → {r.get('final_value', 0):.3g}."
    if status == "failed":
        return f"Failed: {job.get('error') or 'unknown error'}"
    if status == "cancelled":
        return "Cancelled."
    return job.get("message") or status.capitalize() + "…"
