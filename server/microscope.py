"""The static microscope (issue 17): a model's filters on a dataset, exported as an HTML site that opens from
disk - an index per layer and one page per filter, every image a file next to its page, relative links only.

Built from the services, a layer at a time: one features pass (the feature cache's per-channel peaks) gives
every filter's top images, their deconvolutions run in batches, DeepVis renders many filters in one
optimisation batch per preset, and one audit gives the statistics, flags and correlations. Writes go to a
temporary folder renamed into place, so a failed export leaves nothing behind. No web imports.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from server.artifacts import ArtifactStore
from server.audits import AuditRequest, AuditService
from server.datasets.store import DatasetStore
from server.deepvis import DeepVisService, check_target, image_png
from server.engine.imaging import mosaic, png_bytes
from server.engine.layers import LayerInfo
from server.errors import InvalidInputError
from server.explore import ExploreService
from server.microscope_pages import (
    CSS,
    STYLESHEET,
    FilterPage,
    TopImageEntry,
    filter_file,
    filter_page,
    layer_index,
    site_index,
)
from server.top_images import TopImagesService
from server.zoo.manager import LoadedModel, ZooManager

MARKER = ".convlens-microscope"  # an export's folder carries it, so that a re-export may replace it
PRESETS = {
    "deepvis": "deepvis (Yosinski: pixels, decay, blur)",
    "lucid": "lucid (FFT, jitter/scale/rotate)",
}
WEIGHTED_KINDS = ("conv", "linear")
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class MicroscopeRequest:
    model: str
    dataset: str
    layers: tuple[str, ...]
    filters: int | None = None  # the first n filters of each layer; all when None
    k: int = 9
    steps: int = 48  # DeepVis steps per preset (the dashboard's neuron page renders 128)
    batch: int = 64  # filters per DeepVis optimisation batch
    untrained: bool = False

    def validate(self) -> None:
        if not self.layers:
            raise InvalidInputError("Give at least one layer, e.g. --layers features.3,features.5.")
        if len(set(self.layers)) != len(self.layers):
            raise InvalidInputError("A layer is named twice in --layers.")
        if self.filters is not None and self.filters < 1:
            raise InvalidInputError(f"filters must be at least 1, got {self.filters}.")
        if not 1 <= self.k <= 64:
            raise InvalidInputError(f"k must be between 1 and 64, got {self.k}.")
        if not 1 <= self.steps <= 4096:
            raise InvalidInputError(f"steps must be between 1 and 4096, got {self.steps}.")
        if not 1 <= self.batch <= 1024:
            raise InvalidInputError(f"batch must be between 1 and 1024, got {self.batch}.")


@dataclass(frozen=True)
class MicroscopeSite:
    """What an export wrote."""

    out: Path
    layers: list[str]
    pages: int  # HTML files
    images: int  # PNG files
    seconds: float


def layer_folder(layer: str) -> str:
    """A layer's folder name: its dotted name with anything but letters, digits, '.', '_' and '-' replaced."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", layer)


def weights_source(layers: list[LayerInfo], name: str) -> str | None:
    """The conv or linear layer whose filters produce ``name``'s channels: itself, else the last such layer
    inside it (a block) or before it (a norm, activation or pooling) with the same channel count."""
    names = [la.name for la in layers]
    if name not in names:
        return None
    pos = names.index(name)
    target = layers[pos]
    if target.kind in WEIGHTED_KINDS:
        return name
    inside = [la for la in layers[pos + 1 :] if la.name.startswith(name + ".")]
    for la in reversed(inside or layers[:pos]):
        if la.kind in WEIGHTED_KINDS and la.channels == target.channels:
            return la.name
    return None


def audit_layer(report: dict[str, Any], layer: str) -> dict[str, Any] | None:
    """The audit's entry for ``layer``: the conv layer itself, or the one whose response ``layer`` is."""
    layers = report.get("layers") or []
    return next((la for la in layers if la["name"] == layer), None) or next(
        (la for la in layers if la.get("response") == layer), None
    )


def filter_statistics(report: dict[str, Any], la: dict[str, Any], filt: int) -> list[tuple[str, str]]:
    """The audit's numbers for one filter of its layer entry ``la``, as (name, text) rows."""
    sparsity = (la.get("sparsity") or {}).get("filters") or {}
    measured = la["response"] and f"{la['response']} (after {la['activation'] or 'no activation'})"
    rows = [
        ("Dataset", f"{report['dataset']['id']} ({report['summary']['images']:,} images)"),
        ("Measured at", measured or la["name"]),
        *([("Mean", f"{la['mean'][filt]:.4g}")] if la.get("mean") else []),
        ("Active", f"positive on {100 * la['active_share'][filt]:.2f}% of positions"),
        ("Response std", f"{la['std'][filt]:.4g}"),
    ]
    if la.get("saturated_share"):
        rows.append(("Saturated", f"{100 * la['saturated_share'][filt]:.2f}% of positions at the ceiling"))
    if sparsity.get("zero_share"):
        zeros, hoyer = sparsity["zero_share"][filt], sparsity["hoyer"][filt]
        rows.append(("Sparsity", f"{100 * zeros:.1f}% zeros · Hoyer {hoyer:.3f}"))
    return rows


def closest_filters(
    correlation: np.ndarray | None, filt: int, among: int, n: int = 5
) -> list[tuple[int, float]]:
    """The ``n`` filters of the first ``among`` (those exported) whose responses correlate most with
    ``filt``'s: ``(filter, r)``, best first."""
    if correlation is None or not 0 <= filt < correlation.shape[0]:
        return []
    row = correlation[filt, :among].astype(float)
    if filt < among:
        row[filt] = -np.inf
    best = np.argsort(-row, kind="stable")[:n]
    return [(int(i), float(row[i])) for i in best if np.isfinite(row[i])]


def weights_png(payload: dict[str, Any]) -> bytes:
    """One filter's weights (``ExploreService.filter_weights``): RGB for a first conv layer, else its kernels
    over the input channels as one viridis mosaic on a shared scale (a linear layer's as one row)."""
    if payload.get("rgb"):
        return png_bytes(np.asarray(payload["rgb"], dtype=np.uint8), upscale_to=96)
    values = np.asarray(payload["values"], dtype=np.float32)
    if values.ndim == 1:
        values = values[None, None, :]
    elif values.ndim == 2:
        values = values[:, None, :]
    return png_bytes(mosaic(values, shared_scale=True, tile=16), upscale_to=256)


class MicroscopeService:
    """Export a model's filters on a dataset as a static HTML site."""

    def __init__(
        self,
        zoo: ZooManager,
        datasets: DatasetStore,
        artifacts: ArtifactStore,
        top_images: TopImagesService,
        deepvis: DeepVisService,
        audits: AuditService,
        explore: ExploreService,
    ) -> None:
        self.zoo = zoo
        self.datasets = datasets
        self.artifacts = artifacts
        self.top_images = top_images
        self.deepvis = deepvis
        self.audits = audits
        self.explore = explore

    def check(self, req: MicroscopeRequest) -> tuple[LoadedModel, dict[str, list[int]]]:
        """Every check before any work (an unknown model, layer or dataset, a layer without channels): the
        loaded model and the filters to export per layer."""
        req.validate()
        lm = self.zoo.load(req.model, req.untrained)
        self.datasets.get(req.dataset)  # 404 with suggestions
        filters: dict[str, list[int]] = {}
        for layer in req.layers:
            info = lm.layer(layer)  # 404 naming the closest layers
            if not info.output_shape or not info.channels:
                raise InvalidInputError(
                    f"Layer '{layer}' has no channels to show (is it called in the forward?)."
                )
            check_target(lm, {"layer": layer, "channel": 0})
            filters[layer] = list(range(min(info.channels, req.filters or info.channels)))
        return lm, filters

    def export(self, req: MicroscopeRequest, out: Path, progress: Progress | None = None) -> MicroscopeSite:
        """Write the site to ``out`` (replacing an earlier export there; refusing any other non-empty folder)."""
        started = time.perf_counter()
        say = progress or (lambda _f, _m: None)
        lm, filters = self.check(req)
        out = Path(out)
        if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
            raise InvalidInputError(
                f"'{out.name}' exists and is not an earlier microscope export: choose another --out."
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            say(0.0, f"auditing {req.model} on {req.dataset}")
            report = self.audits.report(
                AuditRequest(model=req.model, dataset=req.dataset, untrained=req.untrained)
            )
            counts = [0, 0]
            listed: list[tuple[str, str, int]] = []
            for i, layer in enumerate(req.layers):
                span = (0.05 + 0.95 * i / len(req.layers), 0.95 / len(req.layers))
                self._export_layer(lm, req, layer, filters[layer], report, tmp, counts, say, span)
                listed.append((layer, layer_folder(layer), len(filters[layer])))
            details = [
                ("Model", f"{lm.id} ({'random weights' if req.untrained else 'trained weights'})"),
                ("Input", " x ".join(str(d) for d in lm.card.input_size)),
                ("Dataset", f"{req.dataset} ({report['summary']['images']:,} images)"),
                ("DeepVis", f"{req.steps} steps per preset, {req.batch} filters per optimisation batch"),
            ]
            (tmp / "index.html").write_text(site_index(lm.id, req.dataset, listed, details))
            (tmp / STYLESHEET).write_text(CSS)
            (tmp / MARKER).write_text("written by convlens microscope; a re-export replaces this folder\n")
            counts[0] += 1
            if out.exists():
                shutil.rmtree(out)
            os.replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        say(1.0, f"wrote {counts[0]} pages and {counts[1]} images")
        return MicroscopeSite(out, list(req.layers), counts[0], counts[1], time.perf_counter() - started)

    def _export_layer(
        self,
        lm: LoadedModel,
        req: MicroscopeRequest,
        layer: str,
        channels: list[int],
        report: dict[str, Any],
        root: Path,
        counts: list[int],
        say: Progress,
        span: tuple[float, float],
    ) -> None:
        start, width = span
        folder = root / layer_folder(layer)
        (folder / "img").mkdir(parents=True)

        def write(name: str, data: bytes) -> str:
            (folder / "img" / name).write_bytes(data)
            counts[1] += 1
            return f"img/{name}"

        say(start, f"{layer}: top {req.k} images of {len(channels)} filters")
        tops = self.top_images.layer_top_images(lm, req.dataset, layer, channels, req.k)
        renders: dict[str, np.ndarray] = {}
        for j, preset in enumerate(PRESETS):
            say(start + width * (0.2 + 0.35 * j), f"{layer}: DeepVis ({preset}) of {len(channels)} filters")
            renders[preset] = self.deepvis.render_filters(
                lm, layer, channels, preset, {"steps": req.steps, "seed": 0}, req.batch
            )
        say(start + width * 0.9, f"{layer}: writing {len(channels)} filter pages")
        la = audit_layer(report, layer)
        correlation = self._correlation(report, la)
        source = weights_source(lm.layers(), layer)
        tiles: list[tuple[int, str, str, bool]] = []
        n = lm.layer(layer).channels or len(channels)
        for pos, c in enumerate(channels):
            top = []
            for item in tops[c]:
                top.append(
                    TopImageEntry(
                        write(f"{c}_top{item['rank']}_crop.png", self._artifact(item["crop_url"])),
                        write(
                            f"{c}_top{item['rank']}_deconv_crop.png", self._artifact(item["deconv_crop_url"])
                        ),
                        item["index"],
                        item["label"],
                        item["value"],
                    )
                )
            deepvis = {p: write(f"{c}_{p}.png", image_png(renders[p][pos])) for p in PRESETS}
            weights, note = self._weights(lm, layer, source, c, write)
            in_audit = la is not None and 0 <= c < la["channels"]
            flags = [f for f in report["flags"] if in_audit and f["layer"] == la["name"] and f["filter"] == c]
            cluster = next((cl for cl in (la or {}).get("clusters") or [] if c in cl), [c])
            page = FilterPage(
                model=lm.id,
                dataset=req.dataset,
                layer=layer,
                channel=c,
                channels=len(channels),
                top=top,
                deepvis=deepvis,
                statistics=filter_statistics(report, la, c) if in_audit else [],
                flags=flags,
                weights=weights,
                weights_note=note,
                correlated=closest_filters(correlation, c, len(channels)) if in_audit else [],
                cluster=cluster,
                audit_note=""
                if in_audit
                else f"The audit does not measure {layer} (it audits conv and linear layers and their responses).",
            )
            (folder / filter_file(c)).write_text(filter_page(page, PRESETS))
            counts[0] += 1
            tiles.append((c, deepvis["deepvis"], top[0].crop if top else "", bool(flags)))
        (folder / "index.html").write_text(layer_index(lm.id, req.dataset, layer, n, tiles))
        counts[0] += 1

    def _artifact(self, url: str) -> bytes:
        """The bytes of an artifact the services stored, by its URL."""
        key, name = url.rsplit("/", 2)[1:]
        return self.artifacts.path(key, name).read_bytes()

    def _correlation(self, report: dict[str, Any], la: dict[str, Any] | None) -> np.ndarray | None:
        url = ((report.get("artifacts") or {}).get("correlation") or {}).get(la["name"]) if la else None
        if not url:
            return None
        key, name = url.rsplit("/", 2)[1:]
        return np.load(self.artifacts.path(key, name), allow_pickle=False)

    def _weights(
        self, lm: LoadedModel, layer: str, source: str | None, c: int, write: Callable[[str, bytes], str]
    ) -> tuple[str | None, str]:
        if source is None:
            return (
                None,
                f"{layer} has no conv or linear layer behind its channels, so there are no weights to show.",
            )
        payload = self.explore.filter_weights(lm, source, c)
        note = f"Weights of {source}, the layer that produces these channels." if source != layer else ""
        return write(f"{c}_weights.png", weights_png(payload)), note
