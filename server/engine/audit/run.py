"""The audit of a model over a dataset: one forward pass feeds streaming per-channel statistics at
every response point, then flags, clusters, drive, CKA and separability are computed from them."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from server.engine.audit import checks, similarity
from server.engine.audit.checkerboard import Checkerboard, CheckerboardMeter
from server.engine.audit.response import (
    AUDITED_TYPES,
    ResponsePoint,
    at_response_points,
    output_channels,
    response_points,
)
from server.engine.audit.results import KINDS, AuditResult, Batch, FilterFlag, LayerAudit, Progress, rounded
from server.engine.audit.sparsity import depth_curve
from server.engine.audit.stats import ChannelAccumulator, ChannelStatistics
from server.engine.audit.thresholds import AuditThresholds
from server.engine.layers import RECURRENT_TYPES
from server.errors import InvalidInputError


def audit_model(
    model: nn.Module,
    batches: Iterable[Batch],
    *,
    thresholds: AuditThresholds | None = None,
    positions_per_image: int = 4,
    stat_positions: int = 16,
    similarity_samples: int = 500,
    knn_k: int = 5,
    total_batches: int | None = None,
    progress: Progress | None = None,
    seed: int = 0,
    checkerboard_images: int = 64,
) -> AuditResult:
    """Audit every conv and linear layer of ``model`` over ``batches`` of (inputs, labels or None).

    ``model`` is only read (hooks are removed on exit). Inputs must already be on the model's device.
    The checkerboard score of the strided layers is measured on the first ``checkerboard_images``.
    """
    thresholds = thresholds or AuditThresholds()
    if positions_per_image < 1 or similarity_samples < 2 or knn_k < 1:
        raise InvalidInputError("positions_per_image and knn_k must be >= 1 and similarity_samples >= 2.")
    iterator = iter(batches)
    try:
        first = next(iterator)
    except StopIteration:
        raise InvalidInputError("The dataset is empty: the audit needs at least one image.") from None
    points = response_points(model, first[0][:1])
    modules = dict(model.named_modules())
    accumulators: dict[str, ChannelAccumulator] = {}
    for i, point in enumerate(points.values()):
        module = modules[point.layer]
        accumulators[point.layer] = ChannelAccumulator(
            output_channels(module),
            positions_per_image,
            point.saturating,
            thresholds.saturation_level,
            seed + i,
            stat_positions=stat_positions,
            maximum=("from_means" if point.nonnegative else "exact") if point.rectified else "skip",
            nonnegative=point.nonnegative,
        )
    board = CheckerboardMeter(model, max_images=checkerboard_images)

    def on_response(point: ResponsePoint, out: torch.Tensor) -> None:
        accumulators[point.layer].update(out)

    labels: list[np.ndarray] = []
    has_labels = True
    images = 0
    with at_response_points(model, points.values(), on_response), board.measuring(), torch.inference_mode():
        for step, (x, y) in enumerate(_chain(first, iterator)):
            board.offset = images
            model(x)
            images += x.shape[0]
            if y is None:
                has_labels = False
            else:
                labels.append(np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y).reshape(-1))
            if progress:
                frac = (step + 1) / total_batches if total_batches else 0.0
                progress(0.8 * min(frac, 1.0), f"forward: {images} images")
    y_all = np.concatenate(labels) if has_labels and labels else None
    if progress:
        progress(0.8, "analysing layers")
    return analyse(
        model,
        points,
        {n: a.stats() for n, a in accumulators.items()},
        y_all,
        thresholds,
        similarity_samples=similarity_samples,
        knn_k=knn_k,
        images=images,
        seed=seed,
        all_layers=[n for n, m in model.named_modules() if n and isinstance(m, AUDITED_TYPES)],
        checkerboard=board.result(),
    )


def _chain(first: Batch, rest: Iterator[Batch]) -> Iterator[Batch]:
    yield first
    yield from rest


def _share_flags(
    flags: list[FilterFlag],
    taken: set[int],
    layer: str,
    kind: str,
    indices: Iterable[int],
    share: np.ndarray,
    what: str,
) -> None:
    """Flag ``indices`` as ``kind`` (those not already flagged), with the share of positions that tells it."""
    for i in map(int, indices):
        if i not in taken:
            flags.append(
                FilterFlag(layer, i, kind, float(share[i]), f"{what} on {100 * share[i]:.3g}% of positions")
            )
            taken.add(i)


def analyse(
    model: nn.Module,
    points: dict[str, ResponsePoint],
    stats: dict[str, ChannelStatistics],
    labels: np.ndarray | None,
    thresholds: AuditThresholds,
    *,
    similarity_samples: int,
    knn_k: int,
    images: int,
    seed: int = 0,
    all_layers: list[str] | None = None,
    checkerboard: Checkerboard | None = None,
) -> AuditResult:
    """Flags, clusters, drive, CKA and separability from per-layer statistics and the weights."""
    t = thresholds
    modules = dict(model.named_modules())
    names = list(points)
    flags: list[FilterFlag] = []
    layers: list[LayerAudit] = []
    positive_layers: list[str] = []
    clusters_of: dict[str, list[list[int]]] = {}
    for name in names:
        point, st, module = points[name], stats[name], modules[name]
        weight = out_in_weight(module)
        groups = int(getattr(module, "groups", 1))
        layer_flags: list[FilterFlag] = []
        taken: set[int] = set()

        if point.rectified:
            _share_flags(
                layer_flags,
                taken,
                name,
                "dead",
                checks.dead_filters(st.active_share, t.dead_share, st.maximum),
                st.active_share,
                "positive",
            )
        if st.saturated_share is not None:
            _share_flags(
                layer_flags,
                taken,
                name,
                "saturated",
                checks.saturated_units(st.saturated_share, t.saturated_share),
                st.saturated_share,
                "saturated",
            )
        for i in checks.low_variance_filters(st.std, t.low_variance_ratio, exclude=taken):
            layer_flags.append(
                FilterFlag(name, int(i), "low_variance", float(st.std[i]), f"std {st.std[i]:.3g}")
            )
            taken.add(int(i))
        cosine = checks.weight_cosine(weight) if groups == 1 else None
        for r in checks.redundant_filters(
            st.correlation, cosine, t.redundant_correlation, t.weight_cosine, taken
        ):
            evidence = f"activation correlation {r.correlation:.3f}"
            if r.cosine is not None:
                evidence += f", weight cosine {r.cosine:.3f}"
            layer_flags.append(
                FilterFlag(
                    name,
                    r.filter,
                    "redundant",
                    max(r.correlation, r.cosine or -1.0),
                    f"duplicates filter {r.partner} ({evidence})",
                    r.partner,
                )
            )
        pos_share = checks.positive_weight_share(weight)
        positive_only = pos_share >= t.positive_share
        if positive_only:
            positive_layers.append(name)
        clusters, order = similarity.correlation_clusters(st.correlation, t.cluster_correlation)
        clusters_of[name] = clusters
        counts = {k: sum(1 for f in layer_flags if f.kind == k) for k in KINDS}
        flags.extend(sorted(layer_flags, key=lambda f: f.filter))
        layers.append(
            LayerAudit(
                name=name,
                type=type(module).__name__,
                channels=st.std.shape[0],
                response=point.module,
                activation=point.activation,
                rectified=point.rectified,
                positive_weight_share=pos_share,
                positive_only=positive_only,
                active_share=rounded(st.active_share),
                mean=rounded(st.mean),
                std=rounded(st.std),
                saturated_share=None if st.saturated_share is None else rounded(st.saturated_share),
                clusters=clusters,
                order=order,
                drive=None,
                next_layer=None,
                separability=None,
                counts=counts,
                sparsity=None if st.sparsity is None else st.sparsity.to_dict(),
                checkerboard=_checkerboard_of(checkerboard, name),
                correlation=st.correlation,
                pooled=st.pooled,
            )
        )
    # CNNVis edges: each layer's clusters into the next layer in execution order
    for cur, nxt in itertools.pairwise(layers):
        module = modules[nxt.name]
        if isinstance(module, RECURRENT_TYPES):  # its rows mix gates and time: no per-channel drive
            continue
        drive = similarity.input_drive(
            out_in_weight(module), int(getattr(module, "groups", 1)), stats[cur.name].rms
        )
        if drive is not None:
            cur.next_layer = nxt.name
            cur.drive = similarity.cluster_drive(drive, clusters_of[cur.name], clusters_of[nxt.name])
    # CKA and separability on the pooled responses of a seeded subsample of images
    rng = np.random.default_rng(seed)
    take = (
        np.sort(rng.choice(images, size=similarity_samples, replace=False))
        if images > similarity_samples
        else None
    )
    grams = []
    for layer in layers:
        pooled = stats[layer.name].pooled
        gram = similarity.centred_gram(pooled if take is None else pooled[take]).astype(np.float32)
        grams.append(gram)
        if labels is not None:
            y = labels if take is None else labels[take]
            layer.separability = similarity.knn_purity_from_gram(gram, y, knn_k)
    cka = similarity.cka_from_grams(grams) if grams else np.zeros((0, 0))
    redundant_pairs = [
        {"a": a.name, "b": b.name, "cka": float(cka[i, i + 1])}
        for i, (a, b) in enumerate(itertools.pairwise(layers))
        if cka[i, i + 1] >= t.layer_cka
    ]
    skipped = [n for n in (all_layers or []) if n not in points]
    return AuditResult(
        layers=layers,
        flags=flags,
        positive_layers=positive_layers,
        cka_layers=[la.name for la in layers],
        cka=np.round(cka, 4).tolist(),
        redundant_layer_pairs=redundant_pairs,
        thresholds=t,
        images=images,
        labelled=labels is not None,
        skipped_layers=skipped,
        sparsity=depth_curve([(n, stats[n].sparsity) for n in names if stats[n].sparsity is not None]),
        checkerboard=checkerboard,
    )


def out_in_weight(module: nn.Module) -> torch.Tensor:
    """The layer's weight as (out, in / groups, ...): a transposed conv stores (in, out / groups, ...).

    A recurrent layer's unit j has one row per gate in ``weight_ih`` and ``weight_hh`` (gates stacked as
    (gates * hidden, ...)): its weight is those rows side by side, (hidden, gates * (in + hidden))."""
    if isinstance(module, RECURRENT_TYPES):
        h = int(module.hidden_size)
        w = torch.cat([module.weight_ih_l0, module.weight_hh_l0], dim=1)  # (gates * h, in + h)
        return w.reshape(-1, h, w.shape[1]).permute(1, 0, 2).reshape(h, -1)
    weight: torch.Tensor = module.weight  # type: ignore[assignment]
    if isinstance(module, nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d):
        g = int(module.groups)
        c_in, out_per, *k = weight.shape
        weight = weight.reshape(g, c_in // g, out_per, *k).transpose(1, 2).reshape(g * out_per, c_in // g, *k)
    return weight


def _checkerboard_of(board: Checkerboard | None, layer: str) -> dict[str, Any] | None:
    found = board.layer(layer) if board else None
    return None if found is None else found.to_dict()
