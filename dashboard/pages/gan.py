"""GAN: a latent playground, the training game scrubbed snapshot by snapshot, and the mode histogram."""

from __future__ import annotations

import dash
from dash import dcc, html

from dashboard.components.common import panel, placeholder_graph
from dashboard.views.gan import DIRECTIONS

dash.register_page(__name__, path="/gan", name="GAN", title="ConvLens · GAN", order=5)


def _number(id_: str, label: str, value: int, **kw) -> html.Div:
    return html.Div(
        [html.Label(label, htmlFor=id_), dcc.Input(id=id_, type="number", value=value, debounce=True, **kw)]
    )


def layout(**_query: str) -> html.Div:
    sliders = [
        html.Div(
            [
                html.Label(f"latent direction {i}", htmlFor=f"gan-dir-{i}"),
                dcc.Slider(
                    id=f"gan-dir-{i}", min=-3, max=3, step=0.25, value=0, marks={-3: "-3", 0: "0", 3: "+3"}
                ),
            ]
        )
        for i in range(DIRECTIONS)
    ]
    return html.Div(
        [
            html.H2("GAN: dcgan_digits"),
            html.P(
                [
                    "A generator that learnt from noise to fool a discriminator. Open them in Explore: ",
                    dcc.Link("the generator", href="/?model=dcgan_digits_generator", id="gan-link-generator"),
                    " · ",
                    dcc.Link(
                        "the discriminator",
                        href="/?model=dcgan_digits_discriminator",
                        id="gan-link-discriminator",
                    ),
                ]
            ),
            html.Div(id="gan-error"),
            panel(
                "Latent playground",
                html.Div(
                    [
                        html.Div(
                            [_number("gan-seed", "Seed", 0, min=0), *sliders], className="cl-gan-controls"
                        ),
                        html.Div(id="gan-image"),
                        html.Div(
                            [
                                _number("gan-seed-a", "From seed", 0, min=0),
                                _number("gan-seed-b", "to seed", 1, min=0),
                                _number("gan-steps", "steps", 8, min=2, max=64),
                            ],
                            className="cl-gan-controls",
                        ),
                        html.Div(id="gan-strip"),
                    ]
                ),
            ),
            panel(
                "Training: the game, snapshot by snapshot",
                html.Div(
                    [
                        dcc.Store(id="gan-training"),
                        dcc.Slider(id="gan-snapshot", min=0, max=1, step=1, value=0),
                        html.Div(id="gan-snapshot-caption"),
                        html.Div(id="gan-samples"),
                        placeholder_graph("gan-losses", "loading...", height=260),
                        placeholder_graph("gan-scores", "loading...", height=260),
                    ]
                ),
            ),
            panel(
                "Modes: which digits does it draw?",
                html.Div(
                    [
                        _number("gan-modes-n", "samples", 1000, min=10, max=5000),
                        html.Div(id="gan-modes-warning"),
                        placeholder_graph("gan-modes", "loading...", height=260),
                    ]
                ),
            ),
        ],
        className="cl-page cl-gan",
    )
