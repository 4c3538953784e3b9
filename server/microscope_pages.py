"""The static microscope's HTML: pure functions from the export's data to page text (relative links only,
so the site opens from disk and can be published as it is). No web imports, no file access."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

STYLESHEET = "microscope.css"
CSS = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1180px; padding: 12px 20px; color: #1d2330; }
h1 { font-size: 20px; margin: 8px 0; } h2 { font-size: 15px; margin: 4px 0 8px; color: #46506a; }
a { color: #2456c8; text-decoration: none; } a:hover { text-decoration: underline; }
nav { display: flex; gap: 16px; margin: 6px 0 12px; font-size: 14px; }
.meta { color: #5a6478; font-size: 13px; margin-bottom: 10px; }
.row { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 12px; margin-bottom: 12px; }
section { border: 1px solid #dde2ec; border-radius: 6px; padding: 10px 12px; background: #fff; }
.tiles { display: flex; flex-wrap: wrap; gap: 8px; }
figure { margin: 0; font-size: 12px; color: #46506a; }
.pair { display: flex; gap: 2px; }
.pair img { width: 64px; height: 64px; object-fit: contain; image-rendering: pixelated; background: #000; }
.deepvis img { width: 192px; height: 192px; flex: none; object-fit: contain; image-rendering: pixelated; }
.weights img { max-width: 100%; image-rendering: pixelated; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; font-size: 13px; margin: 0; }
dt { color: #5a6478; }
.badge { display: inline-block; padding: 1px 6px; border-radius: 8px; font-size: 12px; background: #e8f5e9; }
.badge.warn { background: #fdecea; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; }
.grid figure { text-align: center; } .grid .pair { justify-content: center; }
.grid img { width: 72px; height: 72px; object-fit: contain; image-rendering: pixelated; background: #000; }
.grid .flag { color: #b3261e; }
"""


@dataclass(frozen=True)
class TopImageEntry:
    crop: str  # relative path of the image's crop
    deconv_crop: str  # relative path of its deconvolution's crop
    index: int
    label: str
    value: float


@dataclass(frozen=True)
class FilterPage:
    """What one filter's page shows; every path is relative to the layer's folder."""

    model: str
    dataset: str
    layer: str
    channel: int
    channels: int
    top: list[TopImageEntry]
    deepvis: dict[str, str]  # preset -> image path
    statistics: list[tuple[str, str]]
    flags: list[dict[str, Any]]
    weights: str | None  # image path
    weights_note: str
    correlated: list[tuple[int, float]]
    cluster: list[int] = field(default_factory=list)
    audit_note: str = ""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def filter_file(channel: int) -> str:
    return f"filter_{int(channel)}.html"


def _page(title: str, body: str, css_path: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title>"
        f'<link rel="stylesheet" href="{_e(css_path)}"></head>\n<body>\n{body}\n</body></html>\n'
    )


def _img(src: str, alt: str, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<img src="{_e(src)}" alt="{_e(alt)}"{klass}>'


def filter_page(p: FilterPage, presets: dict[str, str]) -> str:
    """One filter: top images with deconvnet crops, DeepVis per preset, statistics, flags, weights,
    correlated filters, and links to the previous and next filter and the layer's index."""
    links = []
    if p.channel > 0:
        links.append(f'<a id="prev" href="{filter_file(p.channel - 1)}">&larr; filter {p.channel - 1}</a>')
    links.append('<a id="layer-index" href="index.html">all filters of this layer</a>')
    if p.channel < p.channels - 1:
        links.append(f'<a id="next" href="{filter_file(p.channel + 1)}">filter {p.channel + 1} &rarr;</a>')
    links.append('<a href="../index.html">all layers</a>')
    top = "".join(
        f'<figure><div class="pair">{_img(t.crop, f"image {t.index}")}'
        f"{_img(t.deconv_crop, f'deconvolution of image {t.index}')}</div>"
        f"<figcaption>#{t.index} &middot; {_e(t.label)} &middot; {t.value:.3g}</figcaption></figure>"
        for t in p.top
    )
    deepvis = "".join(
        f'<figure class="deepvis">{_img(src, f"DeepVis image, {preset} preset")}'
        f"<figcaption><strong>{_e(presets.get(preset, preset))}</strong></figcaption></figure>"
        for preset, src in p.deepvis.items()
    )
    stats = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in p.statistics)
    if p.flags:
        flags = "".join(
            f'<div><span class="badge warn">{_e(f["kind"])}</span> {_e(f.get("detail", ""))}</div>'
            for f in p.flags
        )
    else:
        flags = (
            '<div><span class="badge">no flags</span> The audit finds nothing wrong with this filter.</div>'
        )
    if p.correlated:
        items = "".join(
            f'<li><a href="{filter_file(i)}">filter {i}</a> r = {r:.3f}</li>' for i, r in p.correlated
        )
        others = [i for i in p.cluster if i != p.channel]
        note = (
            f"Clustered with {', '.join(f'#{i}' for i in others)} by the audit."
            if others
            else "In a cluster of its own."
        )
        correlated = f"<ol>{items}</ol><div class='meta'>{_e(note)}</div>"
    else:
        correlated = "<div class='meta'>No correlation matrix for this layer in the audit.</div>"
    weights = (_img(p.weights, f"weights of filter {p.channel}") if p.weights else "") + (
        f"<div class='meta'>{_e(p.weights_note)}</div>" if p.weights_note else ""
    )
    body = f"""<h1>{_e(p.model)} &middot; {_e(p.layer)} &middot; filter <span id="filter-index">{p.channel}</span></h1>
<nav>{" ".join(links)}</nav>
<div class="meta">Dataset {_e(p.dataset)} &middot; exported by <code>convlens microscope</code></div>
<div class="row">
<section id="top"><h2>Top {len(p.top)} images, with deconvnet crops</h2><div class="tiles">{top}</div></section>
<section id="deepvis"><h2>DeepVis images</h2><div class="tiles">{deepvis}</div></section>
</div>
<div class="row">
<section id="stats"><h2>Activation statistics over the dataset</h2>
{f"<div class='meta'>{_e(p.audit_note)}</div>" if p.audit_note else ""}<dl>{stats}</dl>
<h2>Audit flags</h2>{flags}</section>
<section id="weights" class="weights"><h2>Weights</h2>{weights}</section>
<section id="correlated"><h2>Most correlated filters</h2>{correlated}</section>
</div>"""
    return _page(f"{p.model} · {p.layer} · filter {p.channel}", body, f"../{STYLESHEET}")


def layer_index(
    model: str, dataset: str, layer: str, channels: int, tiles: list[tuple[int, str, str, bool]]
) -> str:
    """Every exported filter of a layer as a tile ``(channel, DeepVis image, strongest crop, flagged)``."""
    items = "".join(
        f'<figure><a class="pair" href="{filter_file(c)}">{_img(dv, f"DeepVis image of filter {c}")}'
        f"{_img(top, f'strongest image of filter {c}') if top else ''}</a>"
        f'<figcaption><a href="{filter_file(c)}">filter {c}</a>'
        f"{' <span class=flag>flagged</span>' if flagged else ''}</figcaption></figure>"
        for c, dv, top, flagged in tiles
    )
    body = f"""<h1>{_e(model)} &middot; {_e(layer)}</h1>
<nav><a href="../index.html">all layers</a></nav>
<div class="meta">{len(tiles)} of {channels} filters &middot; dataset {_e(dataset)} &middot;
each tile: the filter's DeepVis image (deepvis preset) and the crop of its strongest image</div>
<div class="grid">{items}</div>"""
    return _page(f"{model} · {layer}", body, f"../{STYLESHEET}")


def site_index(
    model: str, dataset: str, layers: list[tuple[str, str, int]], details: list[tuple[str, str]]
) -> str:
    """The site's front page: the model, the dataset and a link per layer ``(layer, folder, filters)``."""
    items = "".join(
        f'<li><a href="{_e(folder)}/index.html">{_e(layer)}</a> &middot; {n} filters</li>'
        for layer, folder, n in layers
    )
    facts = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in details)
    body = f"""<h1>ConvLens microscope: {_e(model)}</h1>
<div class="meta">Dataset {_e(dataset)}</div>
<section><dl>{facts}</dl></section>
<h2>Layers</h2><ul>{items}</ul>"""
    return _page(f"ConvLens microscope · {model}", body, STYLESHEET)
