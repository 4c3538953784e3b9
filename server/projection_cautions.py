"""The t-SNE cautions of a projection job, as JSON for its result (issue 14).

Called by :meth:`server.projections.ProjectionService.run` after the main projection:

- ``stability`` (with ``seeds``): the other seeds' runs - t-SNE reuses the main run's neighbour
  graph and affinities - aligned by Procrustes on the first, the mean and per-point 10-NN Jaccard;
- ``baseline`` (with ``baseline: "noise"``): the same method on Gaussian noise, its purity against
  chance and its Hopkins clumpiness beside the real embedding's;
- ``distance_faithfulness`` (always), ``perplexity_guidance`` (t-SNE) and ``perplexity_sweep``
  (with ``perplexities``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from server.engine.projection import TSNERun
from server.engine.projection.cautions import (
    distance_faithfulness,
    noise_baseline,
    perplexity_guidance,
    perplexity_sweep,
    seed_runs,
    stability,
)

if TYPE_CHECKING:
    from server.features_cache import DatasetFeatures
    from server.projections import ProjectionRequest


def _coords(c: np.ndarray) -> list[list[float]]:
    return np.round(np.asarray(c, dtype=np.float64), 4).tolist()


def _num(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return float(v) if np.isfinite(v) else None
    return v


def projection_cautions(
    ctx: Any,
    req: ProjectionRequest,
    feats: DatasetFeatures,
    x: np.ndarray,
    params: dict[str, Any],
    projection: Any,
    run: TSNERun | None,
    *,
    n_jobs: int = 1,
    start: float = 0.5,
) -> dict[str, Any]:
    """The extra result keys; ``run`` is the main t-SNE run (its graph and P are shared)."""
    extra_runs = (len(req.seeds) - 1 if req.seeds else 0) + (req.baseline is not None)
    extra_runs += len(req.perplexities or ())
    step = (0.95 - start) / max(extra_runs, 1)
    done = {"runs": 0}

    def report(message: str) -> None:
        ctx.report(start + step * done["runs"], message)
        done["runs"] += 1

    def cancel_check(_frame: dict[str, Any]) -> None:
        ctx.check_cancelled()

    out: dict[str, Any] = {
        "distance_faithfulness": distance_faithfulness(feats.features, projection.coords, feats.labels)
    }
    if req.method == "tsne":
        out["perplexity_guidance"] = perplexity_guidance(int(x.shape[0]))
    shared = run is not None and run.perplexity == float(params.get("perplexity", -1))
    if req.seeds:
        runs = seed_runs(
            x,
            req.method,
            params,
            req.seeds,
            first=projection,
            graph=run.graph if run is not None and shared else None,
            affinities=run.affinities if run is not None and shared else None,
            n_jobs=n_jobs,
            progress=lambda _f, m: report(m),
            on_frame=cancel_check,
        )
        st = stability(runs, req.seeds)
        out["stability"] = {
            "seeds": st["seeds"],
            "k": st["k"],
            "init": params.get("init"),
            "mean_jaccard": st["mean_jaccard"],
            "per_point": np.round(st["per_point"], 4).tolist(),
            "runs": [
                {"seed": s, "coords": _coords(c), "kl_divergence": _num(m.get("kl_divergence"))}
                for s, c, m in zip(st["seeds"], st["aligned"], st["metrics"], strict=True)
            ],
            "sentence": st["sentence"],
        }
    if req.baseline == "noise":
        report("noise baseline")
        nb = noise_baseline(
            x,
            feats.labels,
            feats.classes,
            req.method,
            params,
            projection.coords,
            k=req.k,
            n_jobs=n_jobs,
            on_frame=cancel_check,
        )
        out["baseline"] = {
            "kind": "noise",
            **{k: _num(v) for k, v in nb.items() if k not in ("coords", "metrics")},
            "coords": _coords(nb["coords"]),
            "seconds": _num(nb["metrics"].get("seconds")),
        }
    if req.perplexities:
        sweep = perplexity_sweep(
            x,
            params,
            req.perplexities,
            graph=run.graph if run is not None else None,
            n_jobs=n_jobs,
            progress=lambda _f, m: report(m),
            on_frame=cancel_check,
        )
        out["perplexity_sweep"] = {
            "perplexities": sweep["perplexities"],
            "graph_neighbors": sweep["graph_neighbors"],
            "graph_builds": int(sum(r["graph_builds"] for r in sweep["runs"])),
            "runs": [
                {
                    "perplexity": r["perplexity"],
                    "coords": _coords(r["coords"]),
                    "kl_divergence": _num(r["kl_divergence"]),
                }
                for r in sweep["runs"]
            ],
        }
    return out
