"""The static microscope: a site of neuron pages built from the services, that opens from disk.

On digits_cnn with a few filters and steps: every page's images and links resolve inside the site, a second
export replaces the first, bad input fails before any work and leaves nothing behind, and the CLI exits 2 on it."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest

from server.cli import EXIT_BAD_INPUT, EXIT_OK, main
from server.config import get_settings
from server.errors import InvalidInputError, NotFoundError
from server.microscope import MARKER, MicroscopeRequest, closest_filters, layer_folder, weights_source

SMALL = {"model": "digits_cnn", "dataset": "digits", "filters": 4, "k": 3, "steps": 4}


def references(page: Path) -> list[str]:
    text = page.read_text()
    return re.findall(r'(?:src|href)="([^"]+)"', text)


def test_export_writes_a_page_per_filter_whose_images_and_links_resolve(services, tmp_path):
    out = tmp_path / "site"
    messages: list[str] = []
    req = MicroscopeRequest(layers=("features.1", "features.5"), **SMALL)
    site = services.microscope.export(req, out, lambda _f, m: messages.append(m))
    assert (out / MARKER).is_file() and (out / "index.html").is_file()
    pages = sorted(out.rglob("*.html"))
    assert len(pages) == site.pages == 1 + 2 * (1 + 4)
    assert site.images == len(list(out.rglob("*.png"))) > 0
    for page in pages:
        for ref in references(page):
            assert not re.match(r"^(/|[a-z]+:)", ref), f"{page.name}: {ref} is not relative"
            assert (page.parent / ref).resolve().is_file(), f"{page.relative_to(out)} links a missing {ref}"
    f2 = (out / "features.5" / "filter_2.html").read_text()
    assert 'href="filter_1.html"' in f2 and 'href="filter_3.html"' in f2  # previous and next
    assert f2.count("deconvolution of image") == 3 and "DeepVis image, lucid preset" in f2
    assert "Activation statistics" in f2 and "Response std" in f2  # from the audit
    assert "Weights of features.0" in (out / "features.1" / "filter_0.html").read_text()  # ReLU -> its conv
    last = (out / "features.5" / "filter_3.html").read_text()
    assert 'href="filter_4.html"' not in last  # the last exported filter has no next
    assert messages[-1].startswith("wrote")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "site"]  # no temporary folder left


def test_a_second_export_replaces_the_first_and_reads_the_caches(services, tmp_path):
    out = tmp_path / "site"
    req = MicroscopeRequest(layers=("features.3",), **SMALL)
    services.microscope.export(req, out)
    (out / "stale.txt").write_text("from before")
    again = services.microscope.export(req, out)
    assert not (out / "stale.txt").exists() and again.pages == 1 + 1 + 4


def test_bad_input_fails_before_any_work_and_leaves_nothing(services, tmp_path):
    out = tmp_path / "site"
    with pytest.raises(NotFoundError, match=r"features\.9"):
        services.microscope.export(MicroscopeRequest(layers=("features.9",), **SMALL), out)
    with pytest.raises(NotFoundError, match="dataset"):
        services.microscope.export(
            MicroscopeRequest(layers=("features.1",), **{**SMALL, "dataset": "digts"}), out
        )
    with pytest.raises(InvalidInputError, match="layer"):
        services.microscope.export(MicroscopeRequest(layers=(), **SMALL), out)
    with pytest.raises(InvalidInputError, match="steps"):
        services.microscope.export(MicroscopeRequest(layers=("features.1",), **{**SMALL, "steps": 0}), out)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(InvalidInputError, match="not an earlier microscope export"):
        services.microscope.export(MicroscopeRequest(layers=("features.1",), **SMALL), mine)
    assert (mine / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "mine"]


def test_helpers(digits_model):
    assert layer_folder("blocks.0/conv pw") == "blocks.0_conv_pw"
    layers = digits_model.layers()
    assert weights_source(layers, "features.6") == "features.5"
    assert weights_source(layers, "features.7") == "features.5"  # a pool after the conv
    assert weights_source(layers, "features.0") == "features.0"
    corr = np.array([[1.0, 0.2, 0.9, 0.95], [0.2, 1, 0, 0], [0.9, 0, 1, 0], [0.95, 0, 0, 1]])
    assert closest_filters(corr, 0, among=3, n=2) == [(2, 0.9), (1, 0.2)]  # filter 3 was not exported
    assert closest_filters(None, 0, among=3) == []


@pytest.fixture
def cli_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLENS_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_cli_exports_and_exits_2_on_bad_input(cli_data_dir, capsys):
    out = io.StringIO()
    site = cli_data_dir / "site"
    argv = ["microscope", "--model", "digits_cnn", "--dataset", "digits", "--layers", "features.3"]
    small = ["--filters", "2", "--steps", "2", "--k", "2"]
    assert main([*argv, "--out", str(site), *small], out=out) == EXIT_OK
    assert "Wrote 4 pages" in out.getvalue() and (site / "features.3" / "filter_1.html").is_file()
    bad = ["microscope", "--model", "digits_cnn", "--dataset", "digits", "--layers", "features.33"]
    assert main([*bad, "--out", str(cli_data_dir / "other"), *small], out=io.StringIO()) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "features.33" in err and len(err.strip().splitlines()) == 1
    assert not (cli_data_dir / "other").exists()
