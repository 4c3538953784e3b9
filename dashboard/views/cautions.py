"""The projection page's cautions panel (issue 14): stability, noise baseline, faithfulness, sweep.

Stability over seeds, the noise baseline beside the real plot, distance faithfulness and the perplexity
sweep, each with its measured numbers."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboard.figures.projection import small_multiples


def real_purity(result: dict[str, Any]) -> str:
    value = ((result.get("purity") or {}).get("embedding") or {}).get("overall")
    return "n/a" if value is None else f"{value:.3f}"


def cautions(result: dict[str, Any] | None, points: dict[str, Any] | None) -> Any:
    """Stability small multiples, the noise baseline beside the real plot, distance faithfulness and the
    perplexity sweep, each with its measured numbers."""
    if not result:
        return html.Div("Shown when a run finishes.", className="cl-notice")
    labels = (points or {}).get("labels")
    parts: list[Any] = []
    faith = result.get("distance_faithfulness")
    if faith:
        rho = "n/a" if faith.get("spearman") is None else f"{faith['spearman']:.2f}"
        parts.append(
            html.P(
                [html.Strong(f"Distances (Spearman {rho}): "), faith["sentence"]],
                id="proj-faithfulness",
                className="cl-caution",
            )
        )
    st = result.get("stability")
    if st:
        panels = [(f"seed {r['seed']}", r["coords"]) for r in st["runs"]]
        parts.append(
            html.P(
                [
                    html.Strong(
                        f"Stability: mean 10-NN Jaccard {st['mean_jaccard']:.3f} over {len(st['runs'])} seeds "
                        "(runs aligned by Procrustes). "
                    ),
                    st["sentence"],
                ],
                id="proj-stability-text",
                className="cl-caution",
            )
        )
        parts.append(
            dcc.Graph(
                id="proj-stability",
                figure=small_multiples(
                    panels,
                    colours=st["per_point"],
                    continuous=True,
                    colour_name="Jaccard",
                    title="The same projection per seed, aligned by Procrustes; colour: each point's "
                    "10-NN Jaccard across seeds",
                ),
                config={"displaylogo": False},
            )
        )
    nb = result.get("baseline")
    if nb:
        parts.append(
            html.P(
                [
                    html.Strong(
                        f"Noise baseline: {nb['k']}-NN purity {nb['purity']:.3f} (chance {nb['chance']:.3f}), "
                        f"{real_purity(result)} for your features; "
                        f"Hopkins {nb['hopkins']:.2f} noise, {nb['hopkins_real']:.2f} real. "
                    ),
                    nb["sentence"],
                ],
                id="proj-baseline-text",
                className="cl-caution",
            )
        )
        real = result.get("real_coords") or []
        parts.append(
            dcc.Graph(
                id="proj-baseline",
                figure=small_multiples(
                    [("your features", real), ("Gaussian noise, same N and dimension", nb["coords"])],
                    colours=labels,
                    colour_name="class",
                    title="Noise can look clustered too: the real plot beside the noise baseline",
                ),
                config={"displaylogo": False},
            )
        )
    sw = result.get("perplexity_sweep")
    if sw:
        panels = [(f"perplexity {r['perplexity']:g}", r["coords"]) for r in sw["runs"]]
        parts.append(
            html.P(
                f"Perplexity sweep over {', '.join(f'{p:g}' for p in sw['perplexities'])}: one neighbour graph of "
                f"{sw['graph_neighbors']} neighbours, built {sw['graph_builds']} extra time(s).",
                id="proj-sweep-text",
                className="cl-caution",
            )
        )
        parts.append(
            dcc.Graph(
                id="proj-sweep",
                figure=small_multiples(panels, colours=labels, colour_name="class", title="Perplexity sweep"),
                config={"displaylogo": False},
            )
        )
    if not (st or nb or sw):
        parts.append(
            html.Div(
                "Give seeds, the noise baseline or a perplexity sweep to see more.", className="cl-notice"
            )
        )
    return html.Div(parts)
