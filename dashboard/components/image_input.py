"""Image input: drag-and-drop upload plus a gallery of bundled photos and digits."""

from __future__ import annotations

from collections.abc import Sequence

from dash import dcc, html

from dashboard.images import Sample


def sample_src(sample_id: str) -> str:
    """The dashboard route that serves a bundled sample's thumbnail."""
    return f"/samples/{sample_id.removeprefix('sample:')}.png?thumb=1"


def gallery_button(sample: Sample, selected: bool = False) -> html.Button:
    return html.Button(
        html.Img(src=sample_src(sample.id), alt=sample.title, className=f"cl-thumb cl-thumb-{sample.group}"),
        id={"type": "gallery-item", "image": sample.id},
        title=sample.title,
        className="cl-gallery-item" + (" is-selected" if selected else ""),
        n_clicks=0,
    )


def image_input(samples: Sequence[Sample]) -> html.Div:
    """No size limit in the browser: the API refuses files over its limit with a readable 413."""
    photos = [s for s in samples if s.group == "photo"]
    digits = [s for s in samples if s.group == "digit"]
    return html.Div(
        [
            dcc.Upload(
                id="image-upload",
                children=html.Div(
                    ["Drop an image here or ", html.A("choose a file", className="cl-link")],
                    className="cl-upload-text",
                ),
                className="cl-upload",
                multiple=False,
            ),
            dcc.Loading(  # the upload is checked by the API before it is used
                html.Div(id="upload-status", className="cl-upload-status", **{"aria-live": "polite"}),
                type="dot",
                delay_show=150,
            ),
            html.Div("Photos", className="cl-gallery-label"),
            html.Div([gallery_button(s) for s in photos], className="cl-gallery", id="gallery-photos"),
            html.Div("Digits (for digits_cnn)", className="cl-gallery-label"),
            html.Div([gallery_button(s) for s in digits], className="cl-gallery cl-gallery-digits"),
        ]
    )
