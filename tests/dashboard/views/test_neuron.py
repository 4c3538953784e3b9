"""Neuron page views against the real API app (in-process) on digits_cnn: the path is checked, the jobs
run and every section is drawn from their real results."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from dash import dcc, no_update

from dashboard.views import audit as audit_view
from dashboard.views import neuron as view
from dashboard.views.attributions import poll_top_images
from tests.dashboard.trees import find, texts

TARGET = {"model": "digits_cnn", "layer": "features.3", "channel": "5", "dataset": None}


def links(tree) -> dict[str, str]:
    return {c.id: c.href for c in find(tree, lambda c: isinstance(c, dcc.Link) and getattr(c, "id", None))}


def until_done(tick, *args, seconds: float = 240):
    """Call a polling view until it says to stop polling (its ``disabled`` output is True)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out = tick(*args)
        if out[1] is True or (tick is poll_top_images and out[2] is True):
            return out
        time.sleep(0.2)
    pytest.fail(f"{tick.__name__} never finished")


def test_the_page_checks_the_path_and_shows_weights_navigation_and_the_dataset(api):
    title, nav, error, checked, options, dataset, weights, store, disabled, status, hidden = view.load(TARGET)
    assert error is None and "digits_cnn · features.3 · filter 5" in texts(title)
    assert checked == {"model": "digits_cnn", "layer": "features.3", "channel": 5, "channels": 32}
    hrefs = links(nav)
    assert hrefs["neuron-prev"] == "/neuron/digits_cnn/features.3/4"
    assert hrefs["neuron-next"] == "/neuron/digits_cnn/features.3/6"
    assert "layer=features.3&filter=5" in hrefs["neuron-explore-link"]
    assert dataset == "digits" and "digits" in [o["value"] for o in options]
    # features.3 is a ReLU: the weights are those of features.2, the conv behind it (1 x 16 x 3 x 3 here)
    assert "Weights of features.2" in texts(weights)
    graph = next(find(weights, lambda c: isinstance(c, dcc.Graph)))
    assert graph.figure.data, "an empty weights figure"
    assert set(store["jobs"]) == {"deepvis", "lucid"} and disabled is False and "128 steps" in status
    assert hidden is False


def test_first_and_last_filters_have_one_neighbour(api):
    first = links(view.load({**TARGET, "channel": "0"})[1])
    assert "neuron-prev" not in first and first["neuron-next"].endswith("/features.3/1")
    last = links(view.load({**TARGET, "channel": "31", "dataset": "digits"})[1])
    assert (
        "neuron-next" not in last and last["neuron-prev"] == "/neuron/digits_cnn/features.3/30?dataset=digits"
    )


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"model": "no_such_net"}, "Unknown model 'no_such_net'"),
        ({"layer": "features.9"}, "digits_cnn has no layer 'features.9'"),
        ({"channel": "32"}, "features.3 of digits_cnn has filters 0 to 31; there is no filter '32'"),
        ({"channel": "-1"}, "there is no filter '-1'"),
        ({"channel": "five"}, "there is no filter 'five'"),
    ],
)
def test_bad_paths_show_a_readable_message_and_start_nothing(api, target, message):
    _title, nav, error, checked, *_rest, store, disabled, _status, hidden = view.load({**TARGET, **target})
    assert error.role == "alert" and message in texts(error)
    assert checked is None and nav is None and store is None and disabled is True and hidden is True
    assert view.start_dataset_jobs(checked, "digits") == (no_update,) * 8


def test_jobs_fill_top_images_deepvis_statistics_flags_and_correlated_filters(api):
    *_head, checked, _options, dataset, _weights, store, _disabled, _status, _hidden = view.load(TARGET)
    top_job, top_off, _top_status, _grid, audit_job, audit_off, audit_error, _ = view.start_dataset_jobs(
        checked, dataset
    )
    assert top_off is False and audit_off is False and audit_error is None

    status, grid, _ = until_done(poll_top_images, top_job)
    assert "The 9 images" in status
    srcs = [c.src for c in find(grid, lambda c: getattr(c, "src", None))]
    assert len(srcs) == 18 and all(s.startswith("/api-artifacts/") for s in srcs)  # 9 crops + 9 deconv crops

    pair, _done, dv_status = until_done(view.poll_deepvis, store)
    images = {c.id: c.src for c in find(pair, lambda c: getattr(c, "id", "").startswith("neuron-deepvis-"))}
    assert set(images) == {"neuron-deepvis-deepvis", "neuron-deepvis-lucid"}
    assert images["neuron-deepvis-deepvis"] != images["neuron-deepvis-lucid"] and "rendered" in dv_status

    deadline = time.monotonic() + 240
    report = no_update
    while report is no_update and time.monotonic() < deadline:
        report, _off, _st, err = audit_view.poll(audit_job)
        assert err in (None, no_update)
        time.sleep(0.2)
    stats, flags, correlated = view.audit_sections(report, checked)
    la = next(
        x for x in report["layers"] if x["name"] == "features.2"
    )  # the conv whose response is features.3
    assert f"positive on {100 * la['active_share'][5]:.2f}% of positions" in texts(stats)
    assert f"{la['std'][5]:.4g}" in texts(stats) and "zeros · Hoyer" in texts(stats)
    assert f"Mean{la['mean'][5]:.4g}" in texts(stats) and la["mean"][5] > 0
    expected_flags = [f for f in report["flags"] if f["layer"] == "features.2" and f["filter"] == 5]
    assert ("no flags" in texts(flags)) == (not expected_flags)

    corr = np.load(io.BytesIO(api.artifact(report["artifacts"]["correlation"]["features.2"]).content))
    row = corr[5].astype(float)
    row[5] = -np.inf
    best = int(np.argmax(row))
    listed = [c.href for c in find(correlated, lambda c: isinstance(c, dcc.Link))]
    assert len(listed) == 5 and listed[0] == f"/neuron/digits_cnn/features.3/{best}?dataset=digits"
    assert f"r = {row[best]:.3f}" in texts(correlated)


def test_a_dead_filter_shows_its_flag(api):
    """features.0 filter 0 of digits_cnn never fires on digits (its audit flags it dead)."""
    checked = view.check_target({**TARGET, "layer": "features.0", "channel": "0"})[0]
    job = view.start_dataset_jobs(checked, "digits")[4]
    deadline = time.monotonic() + 240
    report = no_update
    while report is no_update and time.monotonic() < deadline:
        report = audit_view.poll(job)[0]
        time.sleep(0.2)
    flagged = [f for f in report["flags"] if f["layer"] == "features.0" and f["filter"] == 0]
    assert [f["kind"] for f in flagged] == ["dead"]
    _stats, flags, _corr = view.audit_sections(report, checked)
    assert "dead" in texts(flags) and "no flags" not in texts(flags)


def test_the_default_dataset_is_the_links_else_digits_for_digits_sized_models(api):
    options = view.dataset_options()[0]
    assert {"digits", "lfw_subset"} <= {o["value"] for o in options}
    assert view.default_dataset(None, options, {"input_size": [1, 8, 8]}) == "digits"
    photo = view.default_dataset(None, options, {"input_size": [3, 224, 224]})
    assert photo != "digits" and photo in {o["value"] for o in options}
    assert view.default_dataset("lfw_subset", options, {"input_size": [1, 8, 8]}) == "lfw_subset"
    assert view.default_dataset("no_such_set", options, {"input_size": [1, 8, 8]}) == "digits"


def test_a_block_the_audit_does_not_measure_says_so(api):
    """digits_cnn's `features` is a Sequential: it has channels (64) but the audit judges its layers."""
    checked = view.check_target({**TARGET, "layer": "features", "channel": "3"})[0]
    report = {"layers": [{"name": "features.2", "response": "features.3", "channels": 32}], "flags": []}
    stats, flags, correlated = view.audit_sections(report, checked)
    assert "does not measure features" in texts(stats) and flags is None and correlated is None
