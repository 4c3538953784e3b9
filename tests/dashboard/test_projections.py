"""Projections page: pure figure and component functions, and its callbacks against the real API in-process."""

from __future__ import annotations

import pytest
from dash import no_update

import dashboard.callbacks.projections as cb
from dashboard.components.projection import (
    collect_params,
    epsilon_from_slider,
    param_controls,
    slider_from_epsilon,
)
from dashboard.figures.projection import SVG_MAX_POINTS, UIREVISION, projection_figure
from tests.conftest import wait_for
from tests.datasets.test_store import png


def test_figure_has_one_trace_per_class_with_point_indices() -> None:
    coords = [[0, 0], [1, 1], [2, 2], [3, 3]]
    fig = projection_figure(coords, labels=[1, 0, 1, 0], classes=["cat", "dog"])
    assert [t.name for t in fig.data] == ["cat", "dog"]
    assert list(fig.data[0].customdata) == [1, 3] and list(fig.data[1].x) == [0, 2]
    assert fig.layout.uirevision == UIREVISION
    by_pred = projection_figure(
        coords,
        color_by="predicted",
        labels=[0, 0, 0, 0],
        classes=["a"],
        predictions=[2, 2, 5, 2],
        model_labels=["x", "y", "z"],
    )
    assert sorted(t.name for t in by_pred.data) == ["5", "z"]
    by_filter = projection_figure(
        coords, color_by="filter", labels=[0, 1, 0, 1], classes=["a", "b"], values=[0.1, 0.2, 0.3, 0.4]
    )
    assert len(by_filter.data) == 1 and list(by_filter.data[0].marker.color) == [0.1, 0.2, 0.3, 0.4]
    assert fig.data[0].type == "scatter"  # SVG: hoverable DOM points, vector export
    assert projection_figure([[i, i] for i in range(SVG_MAX_POINTS + 1)]).data[0].type == "scattergl"


def test_controls_leave_the_live_sliders_out_for_tsne() -> None:
    specs = [
        {"name": "perplexity", "kind": "float", "default": 30.0},
        {"name": "learning_rate", "kind": "float", "default": None},
        {"name": "metric", "kind": "choice", "default": "euclidean", "choices": ["euclidean", "cosine"]},
    ]
    controls = param_controls("tsne", specs)
    assert len(controls) == 1
    assert collect_params([{"name": "a"}, {"name": "b"}], [3, None]) == {"a": 3}
    assert epsilon_from_slider(slider_from_epsilon(200.0)) == pytest.approx(200.0, rel=1e-3)


@pytest.fixture
def page_api(api, settings, monkeypatch):
    monkeypatch.setattr(cb, "get_settings", lambda: settings)
    return api


def test_pickers_default_to_digits_and_the_penultimate_layer(page_api) -> None:
    ds_options, dataset, model_options, model, methods, error = cb.load_pickers({})
    assert error is None and dataset == "digits" and model == "digits_cnn"
    assert {"digits", "lfw_subset"} <= {o["value"] for o in ds_options} and model_options
    assert {"tsne", "pca", "umap"} <= set(methods)
    options, layer = cb.layer_options("digits_cnn")
    assert layer == "classifier.2" and any(o["value"] == "features.5" for o in options)


def test_run_poll_hover_click_and_export(page_api, settings) -> None:
    files = [(f"{i}.png", png((i * 41) % 250, size=8)) for i in range(12)]
    page_api.create_dataset("dots", images=files, labels=["a", "b"] * 6)
    body = cb.projection_body("dots", "digits_cnn", "features.5", "mean", "pca", 30, 2.3, [], [])
    job, disabled, error, _points, _result = cb.run_or_steer("proj-run", None, body, running=False)
    assert error is None and disabled is False and job["method"] == "pca"

    state = {"job": job, "points": None}

    def step():
        coords, points, result, done, _status, new_job = cb.poll(state["job"], state["points"])
        if new_job is not no_update:
            state["job"] = new_job
        if points is not no_update:
            state["points"] = points
        return done and coords is not no_update and (coords, result)

    coords, result = wait_for(step, 60)
    assert len(coords) == 12 and "purity" in result
    assert state["points"]["classes"] == ["a", "b"]
    fig = cb.scatter(coords, state["points"], "label", None, state["job"])
    assert {t.name for t in fig.data} == {"a", "b"}
    card = cb.hover({"points": [{"customdata": 3}]}, state["job"], state["points"])
    assert card.children[0].src.startswith("data:image/png;base64,")
    href = cb.open_in_explore({"points": [{"customdata": 3}]}, state["job"])
    assert href.startswith("/?model=digits_cnn&image=upload:")
    download = cb.export_csv(state["job"])
    assert download["content"].startswith("index,x,y,label,predicted")


def test_slider_moves_steer_a_running_tsne(page_api) -> None:
    body = cb.projection_body(
        "digits", "digits_cnn", "classifier.2", "mean", "tsne", 20, 2.0, [{"name": "n_iter"}], [5000]
    )
    job, *_ = cb.run_or_steer("proj-run", None, body, running=False)
    wait_for(lambda: page_api.job(job["job_id"])["frame"], 120)
    moved = cb.projection_body(
        "digits", "digits_cnn", "classifier.2", "mean", "tsne", 20, 2.5, [{"name": "n_iter"}], [5000]
    )
    steered, disabled, error, *_ = cb.run_or_steer("proj-epsilon", job, moved, running=True)
    assert error is None and disabled is False and steered["job_id"] == job["job_id"] and steered["steered"]
    frame = wait_for(
        lambda: (
            (f := page_api.job(job["job_id"])["frame"])
            and f.get("learning_rate") == pytest.approx(316.2)
            and f
        ),
        60,
    )
    assert frame["graph_builds"] == 1
    bad = cb.projection_body("digits", "digits_cnn", "classifier.2", "mean", "tsne", 5000, 2.5, [], [])
    _, _, error, *_ = cb.run_or_steer("proj-perplexity", job, bad, running=True)
    assert "perplexity" in str(error.children[1].children)
    page_api.cancel_job(job["job_id"])


def test_dropping_a_zip_or_images_creates_a_dataset(page_api) -> None:
    import base64

    from tests.datasets.test_store import zip_bytes

    def uri(data: bytes) -> str:
        return "data:application/octet-stream;base64," + base64.b64encode(data).decode()

    archive = zip_bytes({"set/cat/a.png": png(10), "set/dog/b.png": png(90)})
    options, selected, message = cb.upload_dataset([uri(archive)], ["pets.zip"], None)
    assert selected == "pets" and any(o["value"] == "pets" for o in options)
    assert "2 classes" in message.children
    options, selected, message = cb.upload_dataset(
        [uri(png(5)), uri(png(50))], ["a.png", "b.png"], "loose ones"
    )
    assert selected == "loose-ones"
    _, _, refused = cb.upload_dataset([uri(zip_bytes({"../x.png": png(1)}))], ["evil.zip"], None)
    assert "refused" in str(refused.children)
