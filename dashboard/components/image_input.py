"""Image input: drag-and-drop upload, the camera, and a gallery of bundled photos and digits."""

from __future__ import annotations

from collections.abc import Sequence

from dash import dcc, html

from dashboard.components.camera import camera_controls
from dashboard.images import MAX_SEED, Sample


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


def latent_input(seed: int | None) -> html.Div:
    """A generator's input: the seed of its latent vector (shown instead of the images for a generator)."""
    return html.Div(
        [
            html.Label("Latent seed", htmlFor="latent-seed", className="cl-label"),
            dcc.Input(
                id="latent-seed",
                type="number",
                min=0,
                max=MAX_SEED,
                step=1,
                value=0 if seed is None else seed,
                debounce=True,
                className="cl-input-number",
            ),
            html.Button("Next seed", id="latent-next", n_clicks=0, className="cl-btn"),
            html.Div(
                "A generator's input is a latent vector, not an image: each seed is one vector "
                "(the same as image 0 of that seed on the GAN page).",
                className="cl-caption",
            ),
            html.Div(id="latent-status", **{"aria-live": "polite"}),
        ],
        id="latent-box",
        hidden=True,
        className="cl-latent-box",
    )


def image_input(samples: Sequence[Sample], seed: int | None = None) -> html.Div:
    """No size limit in the browser: the API refuses files over its limit with a readable 413.

    For a generator the images are hidden and ``latent_input`` is shown in their place."""
    photos = [s for s in samples if s.group == "photo"]
    digits = [s for s in samples if s.group == "digit"]
    return html.Div([_images(photos, digits), latent_input(seed)])


def _images(photos: Sequence[Sample], digits: Sequence[Sample]) -> html.Div:
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
            html.Div("Camera", className="cl-gallery-label"),
            camera_controls(),
            html.Div("Photos", className="cl-gallery-label"),
            html.Div([gallery_button(s) for s in photos], className="cl-gallery", id="gallery-photos"),
            html.Div("Digits (for digits_cnn)", className="cl-gallery-label"),
            html.Div([gallery_button(s) for s in digits], className="cl-gallery cl-gallery-digits"),
        ],
        id="image-box",
    )
