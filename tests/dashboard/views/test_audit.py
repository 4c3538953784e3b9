"""Audit views against the real API app (in-process): an audit job, its report views, checkpoints."""

from __future__ import annotations

import time

import numpy as np
import plotly.graph_objects as go
import pytest
from dash import html, no_update

from dashboard.views import audit
from tests.audit_models import CLEAN_ID as CLEAN
from tests.audit_models import PLAN
from tests.audit_models import PLANTED_ID as PLANTED
from tests.dashboard.trees import find

pytestmark = pytest.mark.usefixtures("planted_audit_models")


def wait_report(job: dict) -> dict:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        report, disabled, _status, error = audit.poll(job)
        assert error in (None, no_update), error
        if report is not no_update:
            return report
        assert disabled is False
        time.sleep(0.2)
    pytest.fail("the audit job did not finish")


def test_audit_page_runs_an_audit_and_opens_a_flagged_filter(api):
    _model_opts, model, _ds_opts, dataset, thresholds, error = audit.load_page({"model": PLANTED})
    assert error is None and model == PLANTED and dataset == "digits"
    assert len(thresholds) == 10
    names = [t.children[1].id for t in thresholds]
    values = [t.children[1].value for t in thresholds]
    body = audit.audit_body(model, dataset, "dead>1%", ["on"], names, values)
    assert body["thresholds"]["dead_share"] == 0.001 and body["what_if"] is True
    job, disabled, error, _ = audit.start(body)
    assert error is None and disabled is False
    report = wait_report(job)

    summary, options, layer, flags, _sep, _cka, sparsity, board = audit.render_report(report)
    assert [t.name for t in sparsity.data] == ["share at the floor (zeros)", "Hoyer sparsity"]
    assert list(sparsity.data[0].x) == [la["name"] for la in report["layers"]]
    assert list(sparsity.data[1].y) == [la["sparsity"]["hoyer"] for la in report["layers"]]
    per_filter = audit.layer_sparsity(report, "features.5")
    assert len(per_filter.data[0].y) == 64
    # digits_cnn downsamples with 2x2 max pools of stride 2: listed, measured, not flagged
    pools = [la for la in report["checkerboard"]["layers"] if la["kind"] == "pool"]
    assert pools and not any(la["flagged"] for la in pools) and all(la["score"] is not None for la in pools)
    text = str(board)
    assert pools[0]["layer"] in text and "even" in text and "/api/v1/artifacts/" not in text
    assert text.count("cl-checker-map") >= 3 * len(pools)
    assert layer == "features.2"  # the first layer with findings
    assert [o["value"] for o in options] == [la["name"] for la in report["layers"]]
    assert "FAILED" in str(summary) and "positive-only" in str(summary)
    assert len(flags.children) == len(PLAN.expected_filters())

    fig = audit.heatmap(report, "features.5")
    assert np.asarray(fig.data[0].z).shape == (64, 64)

    selected = audit.selection_from({"type": "audit-flag", "layer": "features.5", "filter": 10}, None, None)
    assert selected == {"layer": "features.5", "filter": 10}
    view = audit.detail(report, selected)
    text = str(view)
    assert "duplicates filter 3" in text and "#3 (r = 1.000)" in text
    assert text.count("data:image/png;base64,") == 4
    assert "layer=features.5&filter=10" in text
    page = next(find(view, lambda c: getattr(c, "id", None) == "audit-neuron-link"))
    assert page.href == f"/neuron/{PLANTED}/features.5/10"

    click = {"points": [{"x": "7", "y": "40"}]}
    assert audit.selection_from("audit-heatmap", click, "features.5") == {"layer": "features.5", "filter": 40}


def test_audit_page_errors_are_readable(api):
    job, disabled, error, _ = audit.start(
        {"model": CLEAN, "dataset": "digits", "thresholds": {"dead_share": 3}}
    )
    assert job is None and disabled is True
    assert isinstance(error, html.Div) and "dead_share" in str(error)
    _, _, error, _ = audit.start({"model": None, "dataset": "digits"})
    assert "Pick a model" in str(error)
    assert "No filter 99" in str(
        audit.detail({"layers": [{"name": "a", "channels": 3}]}, {"layer": "a", "filter": 99})
    )


def test_checkpoint_panel_compares_digits_snapshots(api):
    options, value = audit.checkpoint_options("digits_cnn")
    assert value == ["epoch_01", "epoch_03", "epoch_10", "epoch_30"]
    assert {o["value"] for o in options} >= set(value)
    job, disabled, _status = audit.start_compare("digits_cnn", value)
    assert disabled is False
    deadline = time.monotonic() + 120
    while True:
        fig, done, _status = audit.poll_compare(job)
        if done:
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert isinstance(fig, go.Figure) and len(fig.data) == 3
    first, last = fig.data[0].y, fig.data[-1].y
    assert all(a > b for a, b in zip(first, last, strict=True))  # every layer moves less per epoch later
    _, _, msg = audit.start_compare("digits_cnn", ["epoch_01"])
    assert "two or more" in msg
