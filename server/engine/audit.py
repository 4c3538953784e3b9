"""Neuron audit: dead, saturated, near-constant and redundant filters, positive-only layers,
layer similarity (linear CKA), cluster-to-next-layer drive, class separability per layer,
checkpoint comparison and what-if zeroing.

One forward pass over a dataset feeds streaming per-channel statistics for every conv and linear
layer (:class:`ChannelAccumulator`); everything else is computed from those statistics and the
weights by pure functions that also take plain arrays (so they are tested on hand-set values).

A layer's *response* is where its units are judged: the output of the first activation that follows
it in execution order (skipping norms, dropout and identities), so that a conv followed by
BatchNorm + ReLU6 is judged after the ReLU6. A layer with no activation after it (logits, linear
projections) is judged on its own output and gets no dead check.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from server.engine.hooks import first_tensor, hooked
from server.engine.layers import CONV_TYPES, LINEAR_TYPES, NORM_TYPES
from server.errors import InvalidInputError

# --- thresholds ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditThresholds:
    """Every threshold of the audit, each a number in [0, 1] (see docs/AUDIT.md)."""

    dead_share: float = 0.001  # dead: positive on less than this share of positions (or never)
    saturation_level: float = 0.99  # a sigmoid output >= this or <= 1 - this; |tanh| >= this
    saturated_share: float = 0.95  # saturated: saturated on at least this share of positions
    low_variance_ratio: float = 0.01  # near-constant: std below this fraction of the layer's median std
    redundant_correlation: float = 0.98  # redundant: activation correlation with another filter >= this
    weight_cosine: float = 0.99  # redundant: weight cosine similarity with another filter >= this
    cluster_correlation: float = 0.5  # CNNVis clusters: average-linkage correlation >= this
    positive_share: float = 0.95  # positive-only layer: share of non-zero weights that are > 0 >= this
    layer_cka: float = 0.99  # redundant layer pair: linear CKA between consecutive layers >= this
    unchanged_update: float = 1e-6  # checkpoints: a filter whose relative change is <= this never changed

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise InvalidInputError(f"Threshold '{f.name}' must be a number in [0, 1], got {value!r}.")
            if not 0.0 <= value <= 1.0:
                raise InvalidInputError(f"Threshold '{f.name}' must be in [0, 1], got {value}.")

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None) -> AuditThresholds:
        """Defaults overridden by ``values``; unknown names are an error that lists the valid ones."""
        values = dict(values or {})
        valid = [f.name for f in fields(cls)]
        unknown = [k for k in values if k not in valid]
        if unknown:
            raise InvalidInputError(f"Unknown threshold(s) {', '.join(unknown)}; valid: {', '.join(valid)}.")
        return cls(**values)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


# --- where each layer's units are judged -----------------------------------------------------------------

RECTIFIERS: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
)
UNIT_SATURATING: tuple[type[nn.Module], ...] = (nn.Sigmoid, nn.Hardsigmoid)  # outputs in [0, 1]
SYMMETRIC_SATURATING: tuple[type[nn.Module], ...] = (nn.Tanh, nn.Hardtanh)  # outputs in [-1, 1]
PASS_THROUGH: tuple[type[nn.Module], ...] = (nn.Identity, nn.Dropout, nn.Dropout2d, *NORM_TYPES)


@dataclass(frozen=True)
class ResponsePoint:
    """Layer ``layer`` is judged at the ``call``-th output (0-based, per forward) of module ``module``."""

    layer: str
    module: str
    call: int
    activation: str | None  # class name of the activation, None when judged on the layer's own output
    rectified: bool  # a ReLU-like activation: the dead check applies
    saturating: str | None  # "unit" (sigmoid-like), "symmetric" (tanh-like) or None
    nonnegative: bool = False  # the activation never outputs a negative value (ReLU, ReLU6)


def _leaf_calls(model: nn.Module, example: torch.Tensor) -> list[tuple[str, int, tuple[int, ...]]]:
    """(module name, call index, output shape) of every leaf and weighted module, in completion order."""
    named = [
        (n, m)
        for n, m in model.named_modules()
        if n and (not any(True for _ in m.children()) or isinstance(m, CONV_TYPES + LINEAR_TYPES))
    ]
    calls: list[tuple[str, int, tuple[int, ...]]] = []
    counts: dict[str, int] = {}

    def make_hook(name: str) -> Callable[..., None]:
        def hook(_m: nn.Module, _i: Any, out: Any) -> None:
            t = first_tensor(out)
            k = counts.get(name, 0)
            counts[name] = k + 1
            if t is not None:
                calls.append((name, k, tuple(t.shape)))

        return hook

    with hooked(lambda: (m.register_forward_hook(make_hook(n)) for n, m in named)), torch.inference_mode():
        model(example)
    return calls


def response_points(model: nn.Module, example: torch.Tensor) -> dict[str, ResponsePoint]:
    """For each conv and linear layer called in a forward of ``example``, where its units are judged."""
    modules = dict(model.named_modules())
    calls = _leaf_calls(model, example)
    points: dict[str, ResponsePoint] = {}
    for i, (name, call, shape) in enumerate(calls):
        module = modules[name]
        if not isinstance(module, CONV_TYPES + LINEAR_TYPES) or name in points:
            continue
        point = ResponsePoint(name, name, call, None, False, None)
        for next_name, next_call, next_shape in calls[i + 1 :]:
            nxt = modules[next_name]
            if next_shape != shape:
                break
            if isinstance(nxt, PASS_THROUGH) and not isinstance(nxt, (*RECTIFIERS, *UNIT_SATURATING)):
                continue
            act = type(nxt).__name__
            if isinstance(nxt, RECTIFIERS):
                nonneg = isinstance(nxt, (nn.ReLU, nn.ReLU6))
                point = ResponsePoint(name, next_name, next_call, act, True, None, nonneg)
            elif isinstance(nxt, UNIT_SATURATING):
                point = ResponsePoint(name, next_name, next_call, act, False, "unit")
            elif isinstance(nxt, SYMMETRIC_SATURATING):
                point = ResponsePoint(name, next_name, next_call, act, False, "symmetric")
            break
        points[name] = point
    return points


def output_channels(module: nn.Module) -> int:
    """Output channels of a conv, output features of a linear layer."""
    value = getattr(module, "out_channels", None) or getattr(module, "out_features", None)
    if not isinstance(value, int):
        raise InvalidInputError(f"{type(module).__name__} is not a conv or linear layer.")
    return value


class CallCounter:
    """Counts the calls of each hooked module within one forward of the root model."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def reset(self, *_args: Any) -> None:
        self.counts.clear()

    def next(self, name: str) -> int:
        k = self.counts.get(name, 0)
        self.counts[name] = k + 1
        return k


@dataclass
class _Hooks:
    """Hooks that call ``fn(point, tensor)`` on every response point; ``fn`` may return a replacement."""

    model: nn.Module
    points: list[ResponsePoint]
    fn: Callable[[ResponsePoint, torch.Tensor], torch.Tensor | None]
    counter: CallCounter = field(default_factory=CallCounter)

    def handles(self) -> Iterator[torch.utils.hooks.RemovableHandle]:
        modules = dict(self.model.named_modules())
        by_module: dict[str, dict[int, ResponsePoint]] = {}
        for p in self.points:
            by_module.setdefault(p.module, {})[p.call] = p
        yield self.model.register_forward_pre_hook(self.counter.reset)
        for module_name, wanted in by_module.items():
            yield modules[module_name].register_forward_hook(self._make(module_name, wanted))

    def _make(self, module_name: str, wanted: dict[int, ResponsePoint]) -> Callable[..., Any]:
        def hook(_m: nn.Module, _i: Any, out: Any) -> Any:
            k = self.counter.next(module_name)
            point = wanted.get(k)
            if point is None or not isinstance(out, torch.Tensor):
                return None
            return self.fn(point, out)

        return hook


# --- streaming statistics ----------------------------------------------------------------------------------


class ChannelAccumulator:
    """Streaming per-channel statistics of one layer's response over a dataset.

    Exact over every position: each image's spatially averaged response (for CKA, separability, top
    images and the channel means) and, with ``maximum`` = "exact", each channel's maximum, so that
    "never positive" is exact. For ReLU and ReLU6 responses (never negative) ``maximum`` =
    "from_means" takes the largest image mean instead, which is positive exactly when some position
    is, at no extra cost; "skip" keeps none (layers without a rectifier have no dead check).
    Over a seeded sample of ``stat_positions`` positions per image (every position of maps that
    small): the positive and saturated shares. Over ``positions_per_image`` of those: the covariance
    between channels (and so each channel's variance), accumulated in blocks of ``flush_rows`` rows.
    Sampling keeps the cost of the largest maps to one reduction per response.
    """

    def __init__(
        self,
        channels: int,
        positions_per_image: int,
        saturating: str | None,
        level: float,
        seed: int,
        stat_positions: int = 16,
        maximum: str = "exact",
        flush_rows: int = 1024,
    ) -> None:
        self.channels = channels
        self.positions_per_image = positions_per_image
        self.stat_positions = max(stat_positions, positions_per_image)
        self.saturating = saturating
        self.level = level
        self.maximum_mode = maximum
        self.flush_rows = flush_rows
        self.generator = torch.Generator().manual_seed(seed)
        self.maximum = torch.full((channels,), -torch.inf, dtype=torch.float64)
        self.positions = 0  # sampled positions behind the shares
        self.positive = torch.zeros(channels, dtype=torch.float64)
        self.saturated = torch.zeros(channels, dtype=torch.float64)
        self.samples = 0  # rows behind the covariance
        self.shift: torch.Tensor | None = None  # subtracted before summing products (numerical stability)
        self.shifted_sum = torch.zeros(channels, dtype=torch.float64)
        self.shifted_products = torch.zeros(channels, channels, dtype=torch.float64)
        self.pooled: list[torch.Tensor] = []
        self._rows: list[torch.Tensor] = []
        self._buffered = 0

    def _positions(self, spatial: int, count: int, device: torch.device) -> torch.Tensor | None:
        if spatial <= count:
            return None
        return torch.randperm(spatial, generator=self.generator)[:count].to(device)

    def update(self, output: torch.Tensor) -> None:
        x = output.detach().float()
        b, c = x.shape[0], self.channels
        # (B, S, C): free for channels_last conv outputs, one copy otherwise
        rows3 = x.permute(0, 2, 3, 1) if x.dim() == 4 else x.reshape(b, c, -1).transpose(1, 2)
        rows3 = rows3.reshape(b, -1, c)
        spatial = rows3.shape[1]
        self.pooled.append(rows3.mean(1).cpu())
        if self.maximum_mode == "exact":
            self.maximum = torch.maximum(self.maximum, rows3.amax((0, 1)).double().cpu())
        elif self.maximum_mode == "from_means":
            self.maximum = torch.maximum(self.maximum, self.pooled[-1].amax(0).double())
        idx = self._positions(spatial, self.stat_positions, x.device)
        sample = rows3 if idx is None else rows3.index_select(1, idx)
        rows = sample.reshape(-1, c)
        self.positions += rows.shape[0]
        self.positive += (rows > 0).float().sum(0).double().cpu()
        if self.saturating == "unit":
            self.saturated += ((rows >= self.level) | (rows <= 1 - self.level)).float().sum(0).double().cpu()
        elif self.saturating == "symmetric":
            self.saturated += (rows.abs() >= self.level).float().sum(0).double().cpu()
        idx = self._positions(sample.shape[1], self.positions_per_image, x.device)
        corr_rows = (sample if idx is None else sample.index_select(1, idx)).reshape(-1, c)
        self._rows.append(corr_rows.clone() if idx is None else corr_rows)
        self._buffered += corr_rows.shape[0]
        if self._buffered >= self.flush_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        rows = torch.cat(self._rows)
        self._rows, self._buffered = [], 0
        if self.shift is None:
            self.shift = rows.mean(0)
        shifted = rows - self.shift
        self.shifted_products += (shifted.T @ shifted).double().cpu()
        self.shifted_sum += shifted.sum(0).double().cpu()
        self.samples += rows.shape[0]

    def stats(self) -> ChannelStatistics:
        self._flush()
        n = max(self.samples, 1)
        mean_shifted = self.shifted_sum / n
        comoment = self.shifted_products - torch.outer(mean_shifted, mean_shifted) * n
        std = torch.sqrt(torch.clamp(torch.diagonal(comoment) / n, min=0)).numpy()
        pooled = torch.cat(self.pooled).numpy() if self.pooled else np.zeros((0, self.channels), np.float32)
        mean = pooled.astype(np.float64).mean(0) if pooled.shape[0] else np.zeros(self.channels)
        return ChannelStatistics(
            maximum=self.maximum.numpy(),
            active_share=(self.positive / max(self.positions, 1)).numpy(),
            saturated_share=(self.saturated / max(self.positions, 1)).numpy() if self.saturating else None,
            mean=mean,
            std=std,
            rms=np.sqrt(mean**2 + std**2),
            correlation=correlation_from_comoment(comoment.numpy()),
            pooled=pooled,
        )


def correlation_from_comoment(comoment: np.ndarray) -> np.ndarray:
    """Pearson correlation from a co-moment matrix; rows of constant channels are 0 (diagonal 1)."""
    var = np.diag(comoment).copy()
    scale = np.sqrt(np.clip(var, 0, None))
    ok = scale > 1e-12 * max(float(scale.max(initial=0.0)), 1e-30)
    inv = np.where(ok, 1.0 / np.where(ok, scale, 1.0), 0.0)
    corr = comoment * inv[:, None] * inv[None, :]
    corr = np.clip(corr, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    return corr


@dataclass
class ChannelStatistics:
    maximum: np.ndarray  # (C,) largest response over every position
    active_share: np.ndarray  # (C,) share of positions with a positive response
    saturated_share: np.ndarray | None  # (C,) for sigmoid/tanh responses
    mean: np.ndarray
    std: np.ndarray
    rms: np.ndarray  # root mean square response, how much signal a channel sends on
    correlation: np.ndarray  # (C, C) over sampled positions
    pooled: np.ndarray  # (N, C) spatial mean of each image's response


# --- per-filter checks on arrays -----------------------------------------------------------------------------


def dead_filters(active_share: np.ndarray, threshold: float, maximum: np.ndarray | None = None) -> np.ndarray:
    """Indices of filters never positive (``maximum <= 0`` when given, else a zero share), or positive on
    less than ``threshold`` of positions."""
    share = np.asarray(active_share, dtype=np.float64)
    never = share <= 0 if maximum is None else np.asarray(maximum) <= 0
    return np.flatnonzero(never | (share < threshold))


def saturated_units(saturated_share: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of units saturated on at least ``threshold`` of positions."""
    return np.flatnonzero(np.asarray(saturated_share, dtype=np.float64) >= threshold)


def low_variance_filters(std: np.ndarray, ratio: float, exclude: Iterable[int] = ()) -> np.ndarray:
    """Filters whose std is below ``ratio`` x the median std of the layer's other, non-excluded filters."""
    std = np.asarray(std, dtype=np.float64)
    keep = np.ones(std.shape[0], bool)
    keep[list(exclude)] = False
    ref = std[keep & (std > 0)]
    if ref.size == 0:
        return np.flatnonzero(keep & (std <= 0))
    return np.flatnonzero(keep & (std < ratio * float(np.median(ref))))


def weight_cosine(weight: torch.Tensor | np.ndarray) -> np.ndarray:
    """(C, C) cosine similarity between the flattened weights of each output filter; zero filters get 0."""
    w = torch.as_tensor(weight).detach().cpu().float()
    w = w.reshape(w.shape[0], -1)
    norm = w.norm(dim=1)
    unit = w / torch.where(norm > 0, norm, 1.0)[:, None]
    cos = (unit @ unit.T).double().numpy()
    np.fill_diagonal(cos, 1.0)
    return cos


def positive_weight_share(weight: torch.Tensor | np.ndarray) -> float:
    """Share of the non-zero weights that are positive (1.0 for an all-positive layer)."""
    w = np.asarray(weight.detach().cpu().float() if isinstance(weight, torch.Tensor) else weight)
    nonzero = int(np.count_nonzero(w))
    return float((w > 0).sum() / nonzero) if nonzero else 0.0


@dataclass(frozen=True)
class Redundancy:
    filter: int
    partner: int  # the filter it duplicates (kept)
    correlation: float
    cosine: float | None


def redundant_filters(
    correlation: np.ndarray,
    cosine: np.ndarray | None,
    corr_threshold: float,
    cos_threshold: float,
    exclude: Iterable[int] = (),
) -> list[Redundancy]:
    """Filters that duplicate another (activation correlation or weight cosine above threshold).

    Filters linked by either test form groups; the lowest index of each group is kept and the others
    are reported with it as partner.
    """
    c = correlation.shape[0]
    excluded = set(int(i) for i in exclude)
    linked = correlation >= corr_threshold
    if cosine is not None:
        linked = linked | (cosine >= cos_threshold)
    np.fill_diagonal(linked, False)
    parent = list(range(c))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(linked, 1)), strict=True):
        if int(i) in excluded or int(j) in excluded:
            continue
        ri, rj = find(int(i)), find(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    out = []
    for i in range(c):
        root = find(i)
        if root != i:
            out.append(
                Redundancy(
                    i, root, float(correlation[i, root]), None if cosine is None else float(cosine[i, root])
                )
            )
    return out


def correlation_clusters(correlation: np.ndarray, threshold: float) -> tuple[list[list[int]], list[int]]:
    """CNNVis-style clusters: average linkage on 1 - correlation cut at ``threshold``.

    Returns the clusters (largest first) and a filter order that puts each cluster together
    (dendrogram leaf order), for heat maps.
    """
    c = correlation.shape[0]
    if c < 2:
        return [list(range(c))], list(range(c))
    from scipy.cluster.hierarchy import fcluster, leaves_list, linkage
    from scipy.spatial.distance import squareform

    dist = np.clip(1.0 - correlation, 0.0, 2.0)
    dist = (dist + dist.T) / 2
    np.fill_diagonal(dist, 0.0)
    z = linkage(squareform(dist, checks=False), method="average")
    order = [int(i) for i in leaves_list(z)]
    labels = fcluster(z, t=1.0 - threshold, criterion="distance")
    groups: dict[int, list[int]] = {}
    for i in order:
        groups.setdefault(int(labels[i]), []).append(i)
    clusters = sorted(groups.values(), key=lambda g: (-len(g), order.index(g[0])))
    return clusters, order


def input_drive(weight: torch.Tensor, groups: int, in_rms: np.ndarray) -> np.ndarray | None:
    """(C_out, C_in) drive of each input channel on each output unit: sum |w| x the input's RMS response.

    None when the layer's input does not line up with ``in_rms`` channel for channel.
    """
    w = weight.detach().cpu().float().abs()
    c_in = in_rms.shape[0]
    if w.dim() == 2:  # linear; a flattened (C, H, W) input maps feature f to channel f // (H*W)
        if w.shape[1] % c_in:
            return None
        per = w.shape[1] // c_in
        e = w.reshape(w.shape[0], c_in, per).sum(2).numpy()
    else:
        c_out = w.shape[0]
        if w.shape[1] * groups != c_in:
            return None
        per_group = w.reshape(c_out, w.shape[1], -1).sum(2).numpy()
        e = np.zeros((c_out, c_in))
        out_per_group = c_out // groups
        for g in range(groups):
            rows = slice(g * out_per_group, (g + 1) * out_per_group)
            e[rows, g * w.shape[1] : (g + 1) * w.shape[1]] = per_group[rows]
    return e * np.asarray(in_rms)[None, :]


def cluster_drive(
    drive: np.ndarray,
    source_clusters: list[list[int]],
    target_clusters: list[list[int]],
    top: int = 3,
    max_sources: int = 32,
) -> list[dict[str, Any]]:
    """CNNVis edges: for the ``max_sources`` source clusters that send the most, their share of the next
    layer's total input drive and the ``top`` target clusters that receive the largest share of their
    input from them (cluster numbers index the ``clusters`` lists)."""
    src_of = np.empty(drive.shape[1], dtype=np.int64)
    for k, members in enumerate(source_clusters):
        src_of[members] = k
    tgt_of = np.empty(drive.shape[0], dtype=np.int64)
    for k, members in enumerate(target_clusters):
        tgt_of[members] = k
    by_target = np.zeros((len(target_clusters), drive.shape[1]))
    np.add.at(by_target, tgt_of, drive)
    between = np.zeros((len(source_clusters), len(target_clusters)))
    np.add.at(between, src_of, by_target.T)
    between = between.T  # (targets, sources)
    received = between.sum(1, keepdims=True)
    shares = np.divide(between, received, out=np.zeros_like(between), where=received > 0)
    total = float(between.sum()) or 1.0
    sent = between.sum(0)
    out = []
    for k in np.argsort(-sent, kind="stable")[:max_sources]:
        best = np.argsort(-shares[:, k], kind="stable")[:top]
        out.append(
            {
                "cluster": int(k),
                "size": len(source_clusters[k]),
                "share": float(sent[k]) / total,
                "targets": [{"cluster": int(t), "share": float(shares[t, k])} for t in best],
            }
        )
    return out


# --- layer similarity and separability -------------------------------------------------------------------


def centred_gram(features: np.ndarray) -> np.ndarray:
    """The doubly centred linear Gram matrix of (N, C) features."""
    x = np.asarray(features, dtype=np.float64)
    x = x - x.mean(0, keepdims=True)
    return x @ x.T


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA (Kornblith et al. 2019) between (N, C1) and (N, C2) features of the same N inputs."""
    return cka_from_grams([centred_gram(x), centred_gram(y)])[0, 1]


def cka_from_grams(grams: list[np.ndarray]) -> np.ndarray:
    """The (L, L) linear CKA matrix from centred Gram matrices; constant layers get 0 off the diagonal."""
    flat = np.stack([g.ravel() for g in grams])
    hsic = (flat @ flat.T).astype(np.float64)
    norm = np.sqrt(np.clip(np.diag(hsic), 0, None))
    denom = np.outer(norm, norm)
    cka = np.divide(hsic, denom, out=np.zeros_like(hsic), where=denom > 0)
    np.fill_diagonal(cka, 1.0)
    return np.clip(cka, 0.0, 1.0)


def knn_purity_from_gram(gram: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Mean share of each point's ``k`` nearest neighbours (Euclidean, from a Gram matrix) with its label."""
    labels = np.asarray(labels)
    n = labels.shape[0]
    if n < 2:
        return float("nan")
    k = max(1, min(k, n - 1))
    sq = np.diag(gram)
    dist = sq[:, None] + sq[None, :] - 2 * gram
    np.fill_diagonal(dist, np.inf)
    nn_idx = np.argpartition(dist, k - 1, axis=1)[:, :k]
    return float((labels[nn_idx] == labels[:, None]).mean())


# --- the audit --------------------------------------------------------------------------------------------

KINDS = ("dead", "saturated", "low_variance", "redundant")


@dataclass
class FilterFlag:
    layer: str
    filter: int
    kind: str  # one of KINDS (a filter is reported once, under the first kind that applies)
    value: float  # the measured quantity that crossed the threshold
    detail: str
    partner: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LayerAudit:
    name: str
    type: str
    channels: int
    response: str  # module whose output was judged
    activation: str | None
    rectified: bool
    positive_weight_share: float
    positive_only: bool
    active_share: list[float]
    std: list[float]
    saturated_share: list[float] | None
    clusters: list[list[int]]
    order: list[int]
    drive: list[dict[str, Any]] | None  # CNNVis edges to the next layer's clusters
    next_layer: str | None
    separability: float | None
    counts: dict[str, int]
    correlation: np.ndarray | None = None  # (C, C), kept out of to_dict (stored as an artifact)
    pooled: np.ndarray | None = None  # (N, C) mean response per image, kept out of to_dict

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("correlation", "pooled")}


@dataclass
class AuditResult:
    layers: list[LayerAudit]
    flags: list[FilterFlag]
    positive_layers: list[str]
    cka_layers: list[str]
    cka: list[list[float]]
    redundant_layer_pairs: list[dict[str, Any]]
    thresholds: AuditThresholds
    images: int
    labelled: bool
    skipped_layers: list[str]

    @property
    def total_filters(self) -> int:
        return sum(layer.channels for layer in self.layers)

    def summary(self) -> dict[str, Any]:
        """Counts and shares (percent of all audited filters) per kind, plus layer-level findings."""
        total = max(self.total_filters, 1)
        counts = {k: sum(1 for f in self.flags if f.kind == k) for k in KINDS}
        return {
            "layers": len(self.layers),
            "filters": self.total_filters,
            "images": self.images,
            "counts": counts,
            "percent": {k: 100.0 * v / total for k, v in counts.items()},
            "flagged": len(self.flags),
            "flagged_percent": 100.0 * len(self.flags) / total,
            "positive_layers": len(self.positive_layers),
            "redundant_layers": len(self.redundant_layer_pairs),
            "clean": not self.flags and not self.positive_layers and not self.redundant_layer_pairs,
        }

    def flagged(self, kinds: Iterable[str] = KINDS) -> dict[str, list[int]]:
        """{layer: sorted filter indices} flagged as any of ``kinds``."""
        kinds = set(kinds)
        out: dict[str, list[int]] = {}
        for f in self.flags:
            if f.kind in kinds:
                out.setdefault(f.layer, []).append(f.filter)
        return {k: sorted(v) for k, v in out.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "thresholds": self.thresholds.to_dict(),
            "labelled": self.labelled,
            "layers": [layer.to_dict() for layer in self.layers],
            "flags": [f.to_dict() for f in self.flags],
            "positive_layers": self.positive_layers,
            "cka": {"layers": self.cka_layers, "matrix": self.cka},
            "redundant_layer_pairs": self.redundant_layer_pairs,
            "separability": [
                {"layer": layer.name, "purity": layer.separability}
                for layer in self.layers
                if layer.separability is not None
            ],
            "skipped_layers": self.skipped_layers,
        }


Batch = tuple[torch.Tensor, torch.Tensor | np.ndarray | None]
Progress = Callable[[float, str], None]


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
) -> AuditResult:
    """Audit every conv and linear layer of ``model`` over ``batches`` of (inputs, labels or None).

    ``model`` is only read (hooks are removed on exit). Inputs must already be on the model's device.
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
        )

    def on_response(point: ResponsePoint, out: torch.Tensor) -> None:
        accumulators[point.layer].update(out)

    labels: list[np.ndarray] = []
    has_labels = True
    images = 0
    with hooked(_Hooks(model, list(points.values()), on_response).handles), torch.inference_mode():
        for step, (x, y) in enumerate(_chain(first, iterator)):
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
        all_layers=[n for n, m in model.named_modules() if n and isinstance(m, CONV_TYPES + LINEAR_TYPES)],
    )


def _chain(first: Batch, rest: Iterator[Batch]) -> Iterator[Batch]:
    yield first
    yield from rest


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
        weight = module.weight  # type: ignore[union-attr]
        groups = int(getattr(module, "groups", 1))
        layer_flags: list[FilterFlag] = []
        taken: set[int] = set()
        if point.rectified:
            for i in dead_filters(st.active_share, t.dead_share, st.maximum):
                layer_flags.append(
                    FilterFlag(
                        name,
                        int(i),
                        "dead",
                        float(st.active_share[i]),
                        f"positive on {100 * st.active_share[i]:.3g}% of positions",
                    )
                )
                taken.add(int(i))
        if st.saturated_share is not None:
            for i in saturated_units(st.saturated_share, t.saturated_share):
                if int(i) not in taken:
                    layer_flags.append(
                        FilterFlag(
                            name,
                            int(i),
                            "saturated",
                            float(st.saturated_share[i]),
                            f"saturated on {100 * st.saturated_share[i]:.3g}% of positions",
                        )
                    )
                    taken.add(int(i))
        for i in low_variance_filters(st.std, t.low_variance_ratio, exclude=taken):
            layer_flags.append(
                FilterFlag(name, int(i), "low_variance", float(st.std[i]), f"std {st.std[i]:.3g}")
            )
            taken.add(int(i))
        cosine = weight_cosine(weight) if groups == 1 else None
        for r in redundant_filters(st.correlation, cosine, t.redundant_correlation, t.weight_cosine, taken):
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
        pos_share = positive_weight_share(weight)
        positive_only = pos_share >= t.positive_share
        if positive_only:
            positive_layers.append(name)
        clusters, order = correlation_clusters(st.correlation, t.cluster_correlation)
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
                active_share=_round(st.active_share),
                std=_round(st.std),
                saturated_share=None if st.saturated_share is None else _round(st.saturated_share),
                clusters=clusters,
                order=order,
                drive=None,
                next_layer=None,
                separability=None,
                counts=counts,
                correlation=st.correlation,
                pooled=st.pooled,
            )
        )
    # CNNVis edges: each layer's clusters into the next layer in execution order
    for cur, nxt in itertools.pairwise(layers):
        module = modules[nxt.name]
        drive = input_drive(module.weight, int(getattr(module, "groups", 1)), stats[cur.name].rms)  # type: ignore[union-attr]
        if drive is not None:
            cur.next_layer = nxt.name
            cur.drive = cluster_drive(drive, clusters_of[cur.name], clusters_of[nxt.name])
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
        gram = centred_gram(pooled if take is None else pooled[take]).astype(np.float32)
        grams.append(gram)
        if labels is not None:
            y = labels if take is None else labels[take]
            layer.separability = knn_purity_from_gram(gram, y, knn_k)
    cka = cka_from_grams(grams) if grams else np.zeros((0, 0))
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
    )


def _round(a: np.ndarray, digits: int = 5) -> list[float]:
    return [float(v) for v in np.round(np.asarray(a, dtype=np.float64), digits)]


# --- gates for CI -------------------------------------------------------------------------------------------

GATE_METRICS = (*KINDS, "flagged", "positive_layers", "redundant_layers")
_GATE_RE = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|>|<|==)\s*([0-9]*\.?[0-9]+)\s*(%?)\s*$")


@dataclass(frozen=True)
class Gate:
    metric: str
    op: str
    value: float
    percent: bool

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}{'%' if self.percent else ''}"

    def measure(self, summary: dict[str, Any]) -> float:
        if self.metric in KINDS:
            return summary["percent" if self.percent else "counts"][self.metric]
        if self.metric == "flagged":
            return summary["flagged_percent" if self.percent else "flagged"]
        if self.percent:
            total = max(summary["layers"], 1)
            return 100.0 * summary[self.metric] / total
        return summary[self.metric]

    def failed(self, summary: dict[str, Any]) -> bool:
        v = self.measure(summary)
        return {
            ">": v > self.value,
            ">=": v >= self.value,
            "<": v < self.value,
            "<=": v <= self.value,
            "==": v == self.value,
        }[self.op]


def parse_gates(spec: str) -> list[Gate]:
    """``'dead>5%, redundant>=3'`` -> gates that fail when the condition holds."""
    gates = []
    for part in [p for p in re.split(r"[,;]", spec or "") if p.strip()]:
        m = _GATE_RE.match(part.lower())
        if not m or m.group(1) not in GATE_METRICS:
            raise InvalidInputError(
                f"Cannot read the gate '{part.strip()}': write METRIC OP NUMBER[%], e.g. 'dead>5%', "
                f"with METRIC one of {', '.join(GATE_METRICS)} and OP one of > >= < <= ==."
            )
        gates.append(Gate(m.group(1), m.group(2), float(m.group(3)), m.group(4) == "%"))
    if not gates:
        raise InvalidInputError("The gate is empty; write e.g. 'dead>5%'.")
    return gates


# --- checkpoints -------------------------------------------------------------------------------------------


@dataclass
class LayerUpdate:
    layer: str
    relative_update: float  # ||W_b - W_a|| / ||W_a||
    filter_change: list[float]  # per output filter, ||ΔW_f|| / ||W_f||
    unchanged: list[int]  # filters whose relative change <= the threshold

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CheckpointComparison:
    a: str
    b: str
    layers: list[LayerUpdate]
    relative_update: float  # over all compared layers
    epochs: float | None  # epochs between the two, when both names carry one

    @property
    def per_epoch(self) -> float | None:
        return self.relative_update / self.epochs if self.epochs else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "relative_update": self.relative_update,
            "epochs": self.epochs,
            "relative_update_per_epoch": self.per_epoch,
            "unchanged_filters": sum(len(layer.unchanged) for layer in self.layers),
            "layers": [layer.to_dict() for layer in self.layers],
        }


def check_same_architecture(
    a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], names: tuple[str, str]
) -> None:
    """Raise InvalidInputError naming the differences unless both state dicts have the same keys and shapes."""
    missing = [k for k in a if k not in b]
    extra = [k for k in b if k not in a]
    shapes = [
        f"{k}: {tuple(a[k].shape)} vs {tuple(b[k].shape)}" for k in a if k in b and a[k].shape != b[k].shape
    ]
    if missing or extra or shapes:
        parts = []
        if missing:
            parts.append(
                f"only in '{names[0]}': {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else "")
            )
        if extra:
            parts.append(f"only in '{names[1]}': {', '.join(extra[:5])}" + (" ..." if len(extra) > 5 else ""))
        if shapes:
            parts.append(f"different shapes: {'; '.join(shapes[:5])}")
        raise InvalidInputError(
            f"Checkpoints '{names[0]}' and '{names[1]}' have different architectures: " + " | ".join(parts)
        )


_EPOCH_RE = re.compile(r"epoch[_-]?(\d+)", re.IGNORECASE)


def epoch_of(name: str) -> int | None:
    m = _EPOCH_RE.search(name)
    return int(m.group(1)) if m else None


def compare_state_dicts(
    a: dict[str, torch.Tensor],
    b: dict[str, torch.Tensor],
    names: tuple[str, str] = ("a", "b"),
    unchanged_update: float = AuditThresholds.unchanged_update,
) -> CheckpointComparison:
    """Per-layer relative update, per-filter change and never-changed filters between two checkpoints.

    Layers are the weight tensors with an output-filter dimension (``*.weight`` of rank >= 2).
    """
    AuditThresholds(unchanged_update=unchanged_update)  # validates the range
    check_same_architecture(a, b, names)
    layers = []
    total_delta = total_norm = 0.0
    for key, wa in a.items():
        if not key.endswith("weight") or wa.dim() < 2 or not wa.is_floating_point():
            continue
        wa64, wb64 = (
            wa.detach().double().reshape(wa.shape[0], -1),
            b[key].detach().double().reshape(wa.shape[0], -1),
        )
        delta = (wb64 - wa64).norm(dim=1)
        norm = wa64.norm(dim=1)
        change = torch.where(norm > 0, delta / norm.clamp_min(1e-300), torch.where(delta > 0, torch.inf, 0.0))
        total_delta += float((delta**2).sum())
        total_norm += float((norm**2).sum())
        layer_norm = float(norm.norm())
        layers.append(
            LayerUpdate(
                layer=key.removesuffix(".weight"),
                relative_update=float(delta.norm()) / layer_norm if layer_norm > 0 else float("inf"),
                filter_change=_round(change.numpy(), 6),
                unchanged=[int(i) for i in torch.nonzero(change <= unchanged_update).flatten()],
            )
        )
    if not layers:
        raise InvalidInputError("The checkpoints hold no conv or linear weights to compare.")
    ea, eb = epoch_of(names[0]), epoch_of(names[1])
    return CheckpointComparison(
        a=names[0],
        b=names[1],
        layers=layers,
        relative_update=math.sqrt(total_delta / total_norm) if total_norm > 0 else float("inf"),
        epochs=float(eb - ea) if ea is not None and eb is not None and eb != ea else None,
    )


def compare_series(
    checkpoints: list[tuple[str, dict[str, torch.Tensor]]],
    unchanged_update: float = AuditThresholds.unchanged_update,
) -> list[CheckpointComparison]:
    """Comparisons of each checkpoint with the next (e.g. training snapshots in epoch order)."""
    if len(checkpoints) < 2:
        raise InvalidInputError("Compare at least two checkpoints.")
    return [
        compare_state_dicts(sa, sb, (na, nb), unchanged_update)
        for (na, sa), (nb, sb) in itertools.pairwise(checkpoints)
    ]


# --- what-if zeroing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WhatIf:
    zeroed: dict[str, list[int]]
    accuracy_before: float
    accuracy_after: float
    images: int

    @property
    def change_points(self) -> float:
        """Accuracy change in percentage points (after - before)."""
        return 100.0 * (self.accuracy_after - self.accuracy_before)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["change_points"] = self.change_points
        d["zeroed_filters"] = sum(len(v) for v in self.zeroed.values())
        return d


def accuracy_on(model: nn.Module, batches: Iterable[Batch]) -> tuple[float, int]:
    """Top-1 accuracy and image count of ``model`` on labelled ``batches``."""
    correct = total = 0
    with torch.inference_mode():
        for x, y in batches:
            if y is None:
                raise InvalidInputError("The what-if needs a labelled dataset; this one has no labels.")
            pred = model(x).argmax(1).cpu()
            target = torch.as_tensor(np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)).reshape(-1)
            correct += int((pred == target).sum())
            total += int(target.numel())
    if total == 0:
        raise InvalidInputError("The what-if dataset is empty.")
    return correct / total, total


def what_if_zeroing(
    model: nn.Module,
    batches: Callable[[], Iterable[Batch]],
    zero: dict[str, list[int]],
    example: torch.Tensor,
) -> WhatIf:
    """Accuracy before and after zeroing the responses of ``zero`` ({layer: filters}) on a private copy.

    ``batches`` is called twice (before, after). The shared ``model`` is never modified.
    """
    points = response_points(model, example[:1])
    unknown = [layer for layer in zero if layer not in points]
    if unknown:
        raise InvalidInputError(
            f"Cannot zero filters of {', '.join(unknown)}: not conv/linear layers of the model."
        )
    before, n = accuracy_on(model, batches())
    clone = copy.deepcopy(model)
    masks: dict[str, torch.Tensor] = {}
    for layer, filters in zero.items():
        module = dict(clone.named_modules())[layer]
        channels = output_channels(module)
        bad = [f for f in filters if not 0 <= int(f) < channels]
        if bad:
            raise InvalidInputError(f"Layer '{layer}' has {channels} filters; cannot zero {bad}.")
        mask = torch.ones(channels)
        mask[list(filters)] = 0.0
        masks[layer] = mask

    def apply(point: ResponsePoint, out: torch.Tensor) -> torch.Tensor:
        mask = masks[point.layer].to(out.device, out.dtype)
        return out * mask.reshape(1, -1, *([1] * (out.dim() - 2)))

    selected = [p for p in points.values() if p.layer in masks]
    with hooked(_Hooks(clone, selected, apply).handles):
        after, _ = accuracy_on(clone, batches())
    return WhatIf({k: sorted(int(i) for i in v) for k, v in zero.items()}, before, after, n)
