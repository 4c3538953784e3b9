"""The audit page: pure figures, components, and its callbacks against the real API app (no browser)."""

from __future__ import annotations

import time

import numpy as np
import plotly.graph_objects as go
import pytest
from dash import html, no_update

from dashboard.callbacks import audit as cb
from dashboard.components.audit import explore_link, flag_list, layer_table
from dashboard.figures.audit import checkpoint_updates_figure, correlation_heatmap, separability_figure
from tests.audit_models import CLEAN_ID, PLAN, PLANTED_ID, audit_models_registered

CLEAN, PLANTED = CLEAN_ID, PLANTED_ID


@pytest.fixture(scope="module", autouse=True)
def _audit_models():
    with audit_models_registered():
        yield


def test_heatmap_orders_rows_and_columns_by_cluster_and_marks_flags():
    corr = np.array([[1.0, 0.1, 0.9], [0.1, 1.0, 0.2], [0.9, 0.2, 1.0]])
    fig = correlation_heatmap(corr, [0, 2, 1], {2: "redundant"})
    heat = fig.data[0]
    assert list(heat.x) == ["0", "2", "1"]
    np.testing.assert_allclose(np.asarray(heat.z), corr[np.ix_([0, 2, 1], [0, 2, 1])])
    (marks,) = [t for t in fig.data if isinstance(t, go.Scatter)]
    assert marks.name == "redundant" and list(marks.x) == ["2"]


def test_separability_and_checkpoint_figures():
    fig = separability_figure(
        {"separability": [{"layer": "a", "purity": 0.5}, {"layer": "b", "purity": 0.9}]}
    )
    assert list(fig.data[0].y) == [0.5, 0.9]
    result = {
        "comparisons": [
            {
                "a": "m:epoch_01",
                "b": "m:epoch_03",
                "epochs": 2.0,
                "layers": [{"layer": "c", "relative_update": 0.4}],
            }
        ]
    }
    fig = checkpoint_updates_figure(result)
    assert fig.data[0].y[0] == pytest.approx(0.2) and "per epoch" in fig.layout.yaxis.title.text


def test_explore_link_restores_the_filter_view():
    assert (
        explore_link("digits_cnn", "features.2", 4, False) == "/?model=digits_cnn&layer=features.2&filter=4"
    )
    assert explore_link("m", "l", 1, True).endswith("&untrained=1")
    # with the filter's strongest image, Explore opens straight on its maps and DeepVis panel
    assert explore_link("m", "l", 1, False, "upload:ab12") == "/?model=m&image=upload:ab12&layer=l&filter=1"


def wait_report(job: dict) -> dict:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        report, disabled, _status, error = cb.poll(job)
        assert error in (None, no_update), error
        if report is not no_update:
            return report
        assert disabled is False
        time.sleep(0.2)
    pytest.fail("the audit job did not finish")


def test_audit_page_runs_an_audit_and_opens_a_flagged_filter(api):
    _model_opts, model, _ds_opts, dataset, thresholds, error = cb.load_page({"model": PLANTED})
    assert error is None and model == PLANTED and dataset == "digits"
    assert len(thresholds) == 10
    names = [t.children[1].id for t in thresholds]
    values = [t.children[1].value for t in thresholds]
    body = cb.audit_body(model, dataset, "dead>1%", ["on"], names, values)
    assert body["thresholds"]["dead_share"] == 0.001 and body["what_if"] is True
    job, disabled, error, _ = cb.start(body)
    assert error is None and disabled is False
    report = wait_report(job)

    summary, options, layer, flags, _sep, _cka = cb.render_report(report)
    assert layer == "features.2"  # the first layer with findings
    assert [o["value"] for o in options] == [la["name"] for la in report["layers"]]
    assert "FAILED" in str(summary) and "positive-only" in str(summary)
    assert len(flags.children) == len(PLAN.expected_filters())

    fig = cb.heatmap(report, "features.5")
    assert np.asarray(fig.data[0].z).shape == (64, 64)

    selected = cb.selection_from({"type": "audit-flag", "layer": "features.5", "filter": 10}, None, None)
    assert selected == {"layer": "features.5", "filter": 10}
    view = cb.detail(report, selected)
    text = str(view)
    assert "duplicates filter 3" in text and "#3 (r = 1.000)" in text
    assert text.count("data:image/png;base64,") == 4
    assert "layer=features.5&filter=10" in text

    click = {"points": [{"x": "7", "y": "40"}]}
    assert cb.selection_from("audit-heatmap", click, "features.5") == {"layer": "features.5", "filter": 40}


def test_audit_page_errors_are_readable(api):
    job, disabled, error, _ = cb.start({"model": CLEAN, "dataset": "digits", "thresholds": {"dead_share": 3}})
    assert job is None and disabled is True
    assert isinstance(error, html.Div) and "dead_share" in str(error)
    _, _, error, _ = cb.start({"model": None, "dataset": "digits"})
    assert "Pick a model" in str(error)
    assert "No filter 99" in str(
        cb.detail({"layers": [{"name": "a", "channels": 3}]}, {"layer": "a", "filter": 99})
    )


def test_checkpoint_panel_compares_digits_snapshots(api):
    options, value = cb.checkpoint_options("digits_cnn")
    assert value == ["epoch_01", "epoch_03", "epoch_10", "epoch_30"]
    assert {o["value"] for o in options} >= set(value)
    job, disabled, _status = cb.start_compare("digits_cnn", value)
    assert disabled is False
    deadline = time.monotonic() + 120
    while True:
        fig, done, _status = cb.poll_compare(job)
        if done:
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert isinstance(fig, go.Figure) and len(fig.data) == 3
    first, last = fig.data[0].y, fig.data[-1].y
    assert all(a > b for a, b in zip(first, last, strict=True))  # every layer moves less per epoch later
    _, _, msg = cb.start_compare("digits_cnn", ["epoch_01"])
    assert "two or more" in msg


def test_layer_table_and_flag_list_on_a_small_report():
    report = {
        "layers": [
            {
                "name": "conv",
                "type": "Conv2d",
                "channels": 2,
                "activation": "ReLU",
                "counts": {"dead": 1, "saturated": 0, "low_variance": 0, "redundant": 0},
                "positive_weight_share": 0.5,
                "positive_only": False,
                "clusters": [[0], [1]],
                "separability": 0.7,
            }
        ],
        "flags": [{"layer": "conv", "filter": 1, "kind": "dead", "detail": "positive on 0% of positions"}],
    }
    table = layer_table(report)
    assert "conv" in str(table) and "0.700" in str(table)
    assert flag_list(report).children[0].id == {"type": "audit-flag", "layer": "conv", "filter": 1}
    assert "No flagged filters" in str(flag_list({"flags": []}))


def test_audit_page_is_registered_and_its_layout_has_every_panel():
    import dash

    from dashboard.app import create_app

    create_app()
    page = next(p for p in dash.page_registry.values() if p["path"] == "/audit")
    tree = str(page["layout"](model="digits_cnn"))
    for panel_id in (
        "panel-audit-controls",
        "panel-audit-summary",
        "panel-audit-heatmap",
        "panel-audit-detail",
        "panel-audit-flags",
        "panel-audit-checkpoints",
    ):
        assert panel_id in tree
