"""What the GAN page shows, as plain functions of its inputs (the callbacks only wire them)."""

from __future__ import annotations

from typing import Any

from dash import html

from dashboard.api_client import ApiError, browser_url, get_client
from dashboard.components.common import error_alert
from dashboard.figures import gan as figures

GAN = "dcgan_digits"
DIRECTIONS = 4  # latent components the sliders move


def _scores(images: list[dict[str, Any]]) -> html.Div:
    return html.Div(
        [html.Span(f"{im['d_score']:.2f}", className="cl-gan-score") for im in images],
        className="cl-gan-scores",
        title="the discriminator's P(real) of each image",
    )


def playground(seed: int | None, offsets: list[float | None]) -> tuple[Any, Any]:
    """The seed's image, moved along the first latent components by the sliders: (image, error)."""
    api = get_client()
    try:
        base = api.gan_generate(GAN, {"seed": int(seed or 0), "n": 1})
        z = list(base["latent"][0])
        for i, off in enumerate(offsets[:DIRECTIONS]):
            z[i] += float(off or 0.0)
        out = api.gan_generate(GAN, {"latent": [z]})
    except ApiError as exc:
        return None, error_alert(str(exc), "Could not generate")
    image = out["images"][0]
    return (
        html.Div(
            [
                html.Img(src=browser_url(out["grid_url"]), className="cl-gan-image", id="gan-image-img"),
                html.Div(f"D(real) = {image['d_score']:.3f}", className="cl-gan-dscore"),
            ]
        ),
        None,
    )


def strip(seed_a: int | None, seed_b: int | None, steps: int | None) -> tuple[Any, Any]:
    try:
        out = get_client().gan_interpolate(
            GAN, {"seed_a": int(seed_a or 0), "seed_b": int(seed_b or 0), "steps": int(steps or 0)}
        )
    except ApiError as exc:
        return None, error_alert(str(exc), "Could not interpolate")
    return html.Div(
        [html.Img(src=browser_url(out["grid_url"]), className="cl-gan-strip"), _scores(out["images"])]
    ), None


def training() -> tuple[dict[str, Any] | None, Any]:
    try:
        return get_client().gan_training(GAN), None
    except ApiError as exc:
        return None, error_alert(str(exc), "Could not load the training record")


def scrub(record: dict[str, Any] | None, index: int | None) -> tuple[Any, Any, Any, str]:
    """(sample grid, loss figure, score figure, caption) at snapshot ``index``."""
    if not record:
        return None, figures.loss_curves([]), figures.score_curves([]), ""
    snaps = record["snapshots"]
    i = min(max(int(index or 0), 0), len(snaps) - 1)
    s = snaps[i]
    caption = (
        f"step {s['step']}: G loss {s['g_loss']:.2f}, D loss {s['d_loss']:.2f}, "
        f"D(real) {s['d_real']:.2f}, D(fake) {s['d_fake']:.2f}"
    )
    image = html.Img(src=browser_url(s["samples_url"]), className="cl-gan-samples", id="gan-samples-img")
    return image, figures.loss_curves(snaps, i), figures.score_curves(snaps, i), caption


def modes(n: int | None) -> tuple[Any, Any, Any]:
    """(histogram figure, warning, error)."""
    try:
        out = get_client().gan_modes(GAN, int(n or 1000))
    except ApiError as exc:
        return (
            figures.mode_histogram(
                {
                    "labels": [],
                    "histogram": [],
                    "missing": [],
                    "classifier": "digits_cnn",
                    "n": 0,
                    "mean_confidence": 0.0,
                }
            ),
            None,
            error_alert(str(exc), "Could not count modes"),
        )
    warning = (
        html.Div(out["warning"], className="cl-alert cl-alert-warning")
        if out["warning"]
        else html.Div(
            f"{out['classes_present']} of {len(out['labels'])} classes generated: no mode collapse.",
            className="cl-gan-ok",
        )
    )
    return figures.mode_histogram(out), warning, None
