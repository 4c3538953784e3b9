"""Blocking (checkerboard) artifacts: flagged from the architecture, then measured on the data.

Odena, Dumoulin & Olah (2016), "Deconvolution and Checkerboard Artifacts": a transposed convolution
whose kernel size is not divisible by its stride overlaps unevenly, so some output positions receive
more of the kernel than others, a pattern that repeats with the stride; a strided convolution (or
pooling) has the same uneven overlap in its backward pass, which is what deconvnet and gradient maps
show. :func:`architecture_flags` lists every strided conv, transposed conv and pooling layer and flags
those whose kernel is not a multiple of the stride.

The measured score: the layer's map on its fine grid (the larger one) - a transposed conv's own
output, or for a strided conv or pooling layer one deconvnet step (Zeiler & Fergus 2014): its
rectified output projected back through its transposed filters (max unpooling with the switches for
max pooling) - and of that map's spectral energy (per-channel mean removed, summed over channels) the
share at the stride's lattice frequencies ``(j H / s, l W / s)``, which holds exactly the energy of
every pattern that repeats with period ``s``. It is averaged over the data set's images and set against
the same share for a layer without stride (the first stride-1 conv with a spatial kernel), and the
images with the highest share are kept as the worst maps.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from server.engine.hooks import module_hooks

STRIDED_TYPES: tuple[type[nn.Module], ...] = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
)
MEASURED_TYPES: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d)
TRANSPOSED_TYPES: tuple[type[nn.Module], ...] = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
POOLING_TYPES: tuple[type[nn.Module], ...] = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
)
MAP_CROP = 96  # worst maps larger than this are kept as a central crop (the pattern is local)
CHUNK_ELEMENTS = 1 << 24  # maps transformed this many values at a time


def _pair(value: Any, dims: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * dims
    return tuple(int(v) for v in value)


@dataclass(frozen=True)
class StridedLayer:
    """A layer that moves between grids of different resolution, as the architecture declares it."""

    layer: str
    type: str
    kind: str  # "conv", "transposed" or "pool"
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    flagged: bool  # some kernel size is not divisible by its stride (uneven overlap)
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "type": self.type,
            "kind": self.kind,
            "kernel": list(self.kernel),
            "stride": list(self.stride),
            "flagged": self.flagged,
            "reason": self.reason,
        }


def architecture_flags(model: nn.Module) -> list[StridedLayer]:
    """Every conv, transposed conv and pooling layer with a stride above 1, in module order; those whose
    kernel size is not divisible by the stride are flagged (Odena et al. 2016)."""
    out: list[StridedLayer] = []
    for name, module in model.named_modules():
        if not name or not isinstance(module, STRIDED_TYPES):
            continue
        base = next(t for t in STRIDED_TYPES if isinstance(module, t))  # subclasses: timm's Conv2dSame
        dims = int(base.__name__[-2])  # every STRIDED_TYPES name ends in 1d, 2d or 3d
        kernel = _pair(module.kernel_size, dims)  # type: ignore[arg-type]
        stride = _pair(module.stride if module.stride is not None else module.kernel_size, dims)  # type: ignore[arg-type]
        if max(stride) <= 1:
            continue
        kind = "conv"
        if isinstance(module, TRANSPOSED_TYPES):
            kind = "transposed"
        elif isinstance(module, POOLING_TYPES):
            kind = "pool"
        uneven = any(k % s != 0 for k, s in zip(kernel, stride, strict=True) if s > 1)
        ks = "x".join(map(str, kernel))
        ss = "x".join(map(str, stride))
        what = {"conv": "strided convolution", "transposed": "transposed convolution", "pool": "pooling"}[
            kind
        ]
        if uneven:
            reason = (
                f"{what} with kernel {ks} not divisible by stride {ss}: uneven overlap, a checkerboard risk"
            )
        else:
            reason = f"{what} with kernel {ks} divisible by stride {ss}: even overlap"
        out.append(StridedLayer(name, type(module).__name__, kind, kernel, stride, uneven, reason))
    return out


def reference_layer(model: nn.Module) -> str | None:
    """The first 2-D conv with stride 1 and a spatial kernel: the score of a layer without stride."""
    for name, module in model.named_modules():
        if (
            isinstance(module, nn.Conv2d)
            and max(_pair(module.stride, 2)) == 1
            and min(_pair(module.kernel_size, 2)) > 1
        ):
            return name
    return None


def fine_side_map(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """The layer's (B, C, H, W) map on its finer grid: a transposed conv's output, else one deconvnet
    step - the rectified output through the transposed filters, max unpooling with the switches."""
    if isinstance(module, nn.ConvTranspose2d):
        return out
    signal = out.clamp(min=0)
    if isinstance(module, nn.Conv2d):
        k, st, d = _pair(module.kernel_size, 2), _pair(module.stride, 2), _pair(module.dilation, 2)
        oh, ow = out.shape[-2:]
        if not isinstance(module.padding, str) and module.padding_mode == "zeros":
            p = _pair(module.padding, 2)
            expected = tuple(
                (i + 2 * p[a] - d[a] * (k[a] - 1) - 1) // st[a] + 1 for a, i in enumerate(inp.shape[-2:])
            )
            if expected == (oh, ow):
                return torch.nn.grad.conv2d_input(inp.shape, module.weight, signal, st, p, d, module.groups)
        # padded inside forward ("same", TF-style or non-zero padding): the map on the padded grid
        size = ((oh - 1) * st[0] + d[0] * (k[0] - 1) + 1, (ow - 1) * st[1] + d[1] * (k[1] - 1) + 1)
        return torch.nn.grad.conv2d_input(
            (inp.shape[0], inp.shape[1], *size), module.weight, signal, st, 0, d, module.groups
        )
    if isinstance(module, nn.MaxPool2d):
        _, idx = F.max_pool2d(
            inp, module.kernel_size, module.stride, module.padding, module.dilation, module.ceil_mode, True
        )
        return F.max_unpool2d(out, idx, module.kernel_size, module.stride, module.padding, inp.shape[-2:])
    if isinstance(module, nn.AvgPool2d):
        kh, kw = _pair(module.kernel_size, 2)
        c = inp.shape[1]
        weight = torch.full((c, 1, kh, kw), 1.0 / (kh * kw), dtype=out.dtype, device=out.device)
        return torch.nn.grad.conv2d_input(
            inp.shape, weight, out, module.stride or module.kernel_size, module.padding, 1, c
        )
    raise TypeError(f"no fine-side map for {type(module).__name__}")


def lattice_share(maps: torch.Tensor, stride: tuple[int, int]) -> np.ndarray:
    """Per image of (B, C, H, W) ``maps``: the share of its spectral energy (each channel's mean removed,
    summed over channels) at the frequencies of period-``stride`` patterns, ``(j H/sy, l W/sx)`` but DC."""
    b, c, h, w = maps.shape
    sy, sx = stride
    ys = sorted({round(j * h / sy) % h for j in range(sy)})
    xs = sorted({round(j * w / sx) % w for j in range(sx)})
    out = np.zeros(b, dtype=np.float64)
    step = max(1, CHUNK_ELEMENTS // max(c * h * w, 1))
    for start in range(0, b, step):
        m = maps[start : start + step].float()
        m = m - m.mean((2, 3), keepdim=True)
        power = torch.fft.fft2(m).abs().square().sum(1).double()  # (b, H, W)
        total = power.sum((1, 2)) - power[:, 0, 0]
        lattice = power[:, ys][:, :, xs].sum((1, 2)) - power[:, 0, 0]
        share = torch.where(total > 0, lattice / total.clamp(min=1e-300), torch.zeros_like(total))
        out[start : start + step] = share.cpu().numpy()
    return out


def chance_share(size: tuple[int, int], stride: tuple[int, int]) -> float:
    """The lattice share of white noise: the lattice's bins among all but DC."""
    h, w = size
    ys = {round(j * h / stride[0]) % h for j in range(stride[0])}
    xs = {round(j * w / stride[1]) % w for j in range(stride[1])}
    return (len(ys) * len(xs) - 1) / max(h * w - 1, 1)


def _display(maps: torch.Tensor) -> np.ndarray:
    """(C, H, W) map -> (H, W) channel mean, centrally cropped to MAP_CROP."""
    m = maps.float().mean(0)
    h, w = m.shape
    top, left = max(0, (h - MAP_CROP) // 2), max(0, (w - MAP_CROP) // 2)
    return m[top : top + MAP_CROP, left : left + MAP_CROP].cpu().numpy().astype(np.float32)


@dataclass
class WorstMap:
    image: int  # position of the image in the audited batches
    share: float
    map: np.ndarray  # (H, W) channel mean of the fine-side map (central crop)


@dataclass
class LayerScore:
    """The measured score of one strided layer (or of the stride-1 reference)."""

    stride: tuple[int, int]
    size: tuple[int, int] = (0, 0)  # the fine grid
    total: float = 0.0
    images: int = 0
    reference: dict[tuple[int, int], float] = field(default_factory=dict)  # the reference layer only
    reference_images: int = 0
    worst: list[WorstMap] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        return self.total / self.images if self.images else None


class CheckerboardMeter:
    """Measures every 2-D strided layer (and the stride-1 reference) during the audit's forwards."""

    def __init__(self, model: nn.Module, *, max_images: int = 64, worst: int = 3) -> None:
        self.model = model
        self.max_images = max_images
        self.keep_worst = worst
        self.strided = architecture_flags(model)
        modules = dict(model.named_modules())
        self.reference = reference_layer(model)
        self.scores: dict[str, LayerScore] = {
            s.layer: LayerScore((s.stride[0], s.stride[1]))
            for s in self.strided
            if isinstance(modules[s.layer], MEASURED_TYPES) and len(s.stride) == 2
        }
        self.reference_strides = sorted({sc.stride for sc in self.scores.values()})
        self.reference_score = LayerScore((1, 1))
        self.offset = 0  # index of the current batch's first image

    def _measure(self, name: str, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if not args or not isinstance(args[0], torch.Tensor) or not isinstance(output, torch.Tensor):
            return
        is_ref = name == self.reference
        score = self.reference_score if is_ref else self.scores[name]
        seen = score.reference_images if is_ref else score.images
        take = min(output.shape[0], self.max_images - seen)
        if take <= 0:
            return
        inp, out = args[0][:take].detach(), output[:take].detach()
        maps = fine_side_map(module, inp, out)
        if is_ref:
            for stride in self.reference_strides:
                share = lattice_share(maps, stride)
                score.reference[stride] = score.reference.get(stride, 0.0) + float(share.sum())
            score.reference_images += take
            return
        share = lattice_share(maps, score.stride)
        score.size = (int(maps.shape[-2]), int(maps.shape[-1]))
        score.total += float(share.sum())
        score.images += take
        for i in np.argsort(-share)[: self.keep_worst]:
            if len(score.worst) < self.keep_worst or share[i] > score.worst[-1].share:
                score.worst.append(WorstMap(self.offset + int(i), float(share[i]), _display(maps[int(i)])))
                score.worst.sort(key=lambda m: -m.share)
                del score.worst[self.keep_worst :]

    @contextmanager
    def measuring(self) -> Iterator[None]:
        """Inside the block, this thread's forwards of the model are measured."""
        modules = dict(self.model.named_modules())
        names = list(self.scores) + ([self.reference] if self.reference and self.reference_strides else [])

        def hook_for(name: str) -> Any:
            return lambda module, args, output: self._measure(name, module, args, output)

        with module_hooks([(modules[n], None, hook_for(n)) for n in dict.fromkeys(names)]):
            yield

    def result(self) -> Checkerboard:
        ref = self.reference_score
        reference = {
            s: ref.reference[s] / ref.reference_images for s in self.reference_strides if ref.reference_images
        }
        layers = []
        for s in self.strided:
            sc = self.scores.get(s.layer)
            score = sc.score if sc else None
            ref_share = reference.get(sc.stride) if sc else None
            layers.append(
                CheckerboardLayer(
                    s,
                    score,
                    ref_share,
                    None if score is None or not ref_share else score / ref_share,
                    chance_share(sc.size, sc.stride) if sc and sc.images else None,
                    sc.images if sc else 0,
                    sc.worst if sc else [],
                )
            )
        return Checkerboard(layers, self.reference if reference else None, reference)


@dataclass
class CheckerboardLayer:
    strided: StridedLayer
    score: float | None  # mean lattice share over the measured images (None: not a 2-D layer)
    reference_score: float | None  # the stride-1 reference layer's share at this stride
    ratio: float | None  # score / reference_score
    chance: float | None  # the share of white noise on this grid
    images: int
    worst: list[WorstMap]

    def to_dict(self) -> dict[str, Any]:
        d = self.strided.to_dict()
        d.update(
            score=None if self.score is None else round(self.score, 5),
            reference_score=None if self.reference_score is None else round(self.reference_score, 5),
            ratio=None if self.ratio is None else round(self.ratio, 4),
            chance=None if self.chance is None else round(self.chance, 6),
            images=self.images,
            worst=[{"image": w.image, "share": round(w.share, 5)} for w in self.worst],
        )
        return d


@dataclass
class Checkerboard:
    layers: list[CheckerboardLayer]
    reference_layer: str | None
    reference_scores: dict[tuple[int, int], float]

    def layer(self, name: str) -> CheckerboardLayer | None:
        return next((la for la in self.layers if la.strided.layer == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference_layer": self.reference_layer,
            "reference_scores": [
                {"stride": list(s), "score": round(v, 5)} for s, v in sorted(self.reference_scores.items())
            ],
            "flagged": [la.strided.layer for la in self.layers if la.strided.flagged],
            "layers": [la.to_dict() for la in self.layers],
        }
