"""Projections views against the real API app (in-process): pickers, a run polled to the end, steering."""

from __future__ import annotations

import pytest
from dash import no_update

from dashboard.views import cautions as cautions_view
from dashboard.views import projections as view
from tests.conftest import encode, wait_for
from tests.datasets.test_store import png


def test_pickers_default_to_digits_and_the_penultimate_layer(api) -> None:
    ds_options, dataset, model_options, model, methods, error = view.load_pickers({})
    assert error is None and dataset == "digits" and model == "digits_cnn"
    assert {"digits", "lfw_subset"} <= {o["value"] for o in ds_options} and model_options
    assert {"tsne", "pca", "umap"} <= set(methods)
    options, layer = view.layer_options("digits_cnn")
    assert layer == "classifier.2" and any(o["value"] == "features.5" for o in options)


def test_run_poll_hover_click_and_export(api) -> None:
    files = [(f"{i}.png", png((i * 41) % 250, size=8)) for i in range(12)]
    api.create_dataset("dots", images=files, labels=["a", "b"] * 6)
    body = view.projection_body("dots", "digits_cnn", "features.5", "mean", "pca", 30, 2.3, [], [])
    job, disabled, error, _points, _result = view.run_or_steer("proj-run", None, body, running=False)
    assert error is None and disabled is False and job["method"] == "pca"

    state = {"job": job, "points": None}

    def step():
        coords, points, result, done, _status, new_job = view.poll(state["job"], state["points"])
        if new_job is not no_update:
            state["job"] = new_job
        if points is not no_update:
            state["points"] = points
        return done and coords is not no_update and (coords, result)

    coords, result = wait_for(step, 60)
    assert len(coords) == 12 and "purity" in result
    assert state["points"]["classes"] == ["a", "b"]
    fig = view.scatter(coords, state["points"], "label", None, state["job"])
    assert {t.name for t in fig.data} == {"a", "b"}
    card = view.hover({"points": [{"customdata": 3}]}, state["job"], state["points"])
    assert card.children[0].src.startswith("data:image/png;base64,")
    href = view.open_in_explore({"points": [{"customdata": 3}]}, state["job"])
    assert href.startswith("/?model=digits_cnn&image=upload:")
    download = view.export_csv(state["job"])
    assert download["content"].startswith("index,x,y,label,predicted")


def test_slider_moves_steer_a_running_tsne(api) -> None:
    body = view.projection_body(
        "digits", "digits_cnn", "classifier.2", "mean", "tsne", 20, 2.0, [{"name": "n_iter"}], [5000]
    )
    job, *_ = view.run_or_steer("proj-run", None, body, running=False)
    wait_for(lambda: api.job(job["job_id"])["frame"], 120)
    moved = view.projection_body(
        "digits", "digits_cnn", "classifier.2", "mean", "tsne", 20, 2.5, [{"name": "n_iter"}], [5000]
    )
    steered, disabled, error, *_ = view.run_or_steer("proj-epsilon", job, moved, running=True)
    assert error is None and disabled is False and steered["job_id"] == job["job_id"] and steered["steered"]
    frame = wait_for(
        lambda: (
            (f := api.job(job["job_id"])["frame"]) and f.get("learning_rate") == pytest.approx(316.2) and f
        ),
        60,
    )
    assert frame["graph_builds"] == 1
    bad = view.projection_body("digits", "digits_cnn", "classifier.2", "mean", "tsne", 5000, 2.5, [], [])
    _, _, error, *_ = view.run_or_steer("proj-perplexity", job, bad, running=True)
    assert "perplexity" in str(error.children[1].children)
    api.cancel_job(job["job_id"])


def test_dropping_a_zip_or_images_creates_a_dataset(api) -> None:
    import base64

    from tests.datasets.test_store import zip_bytes

    def uri(data: bytes) -> str:
        return "data:application/octet-stream;base64," + base64.b64encode(data).decode()

    archive = zip_bytes({"set/cat/a.png": png(10), "set/dog/b.png": png(90)})
    options, selected, message = view.upload_dataset([uri(archive)], ["pets.zip"], None)
    assert selected == "pets" and any(o["value"] == "pets" for o in options)
    assert "2 classes" in message.children
    options, selected, message = view.upload_dataset(
        [uri(png(5)), uri(png(50))], ["a.png", "b.png"], "loose ones"
    )
    assert selected == "loose-ones"
    _, _, refused = view.upload_dataset([uri(zip_bytes({"../x.png": png(1)}))], ["evil.zip"], None)
    assert "refused" in str(refused.children)


def test_method_controls_dataset_label_epsilon_and_purity_placeholder():
    specs = {"pca": [{"name": "whiten", "kind": "choice", "default": "no", "choices": ["no", "yes"]}]}
    controls, sliders = view.method_controls("pca", specs)
    assert len(controls) == 1 and sliders == {"display": "none"}  # the t-SNE sliders are hidden
    assert view.method_controls("tsne", None) == ([], {})
    options = [{"label": "digits (1,797 images, 10 classes)", "value": "digits"}]
    assert view.dataset_info("digits", options) == "digits (1,797 images, 10 classes)"
    assert view.dataset_info("nothing", options) == ""
    assert view.epsilon_label(2.0) == "ε = 100.0"
    assert view.purity(None).children == "Shown when a run finishes."


def run_to_end(body: dict) -> tuple[dict, dict]:
    job, _disabled, error, _p, _r = view.run_or_steer("proj-run", None, body, running=False)
    assert error is None, error
    state = {"job": job, "points": None}

    def step():
        _coords, points, result, done, _status, new_job = view.poll(state["job"], state["points"])
        if new_job is not no_update:
            state["job"] = new_job
        if points is not no_update:
            state["points"] = points
        return done and result is not no_update and result

    return wait_for(step, 300), state["points"]


def test_cautions_show_stability_noise_baseline_faithfulness_and_sweep(api) -> None:
    """Real digits_cnn features of 240 digits, t-SNE over 2 seeds, the noise baseline and a 2-value sweep."""
    from sklearn.datasets import load_digits

    d = load_digits()
    files = [(f"{i}.png", encode((d.images[i] / 16 * 255).astype("uint8"))) for i in range(240)]
    api.create_dataset("digits240", images=files, labels=[str(t) for t in d.target[:240]])
    body = view.projection_body(
        "digits240",
        "digits_cnn",
        "classifier.2",
        "mean",
        "tsne",
        20,
        2.3,
        [{"name": "n_iter"}],
        [300],
        "0, 1",
        ["noise"],
        "5, 30",
    )
    assert body["seeds"] == [0, 1] and body["baseline"] == "noise" and body["perplexities"] == [5.0, 30.0]
    result, points = run_to_end(body)
    shown = cautions_view.cautions(result, points)
    text = " ".join(str(c) for c in shown.children if not hasattr(c, "figure"))
    st = result["stability"]
    assert f"{st['mean_jaccard']:.3f}" in text and "Procrustes" in text
    graphs = {
        c.id: c.figure
        for c in shown.children
        if getattr(c, "id", None) in ("proj-stability", "proj-baseline", "proj-sweep")
    }
    assert len(graphs["proj-stability"].data) == 2  # one panel per seed
    assert list(graphs["proj-stability"].data[0].marker.color) == st["per_point"]
    assert len(graphs["proj-baseline"].data) == 2 and len(graphs["proj-baseline"].data[1].x) == 240
    assert f"{result['baseline']['purity']:.3f}" in text and "Hopkins" in text
    assert result["distance_faithfulness"]["sentence"] in text
    assert len(graphs["proj-sweep"].data) == 2
    guide = str(view.guidance("digits240"))
    assert "N = 240" in guide and "N / 3" in guide


def test_malformed_cautions_fields_get_a_visible_message_and_no_job(api) -> None:
    body = view.projection_body(
        "digits", "digits_cnn", "classifier.2", "mean", "tsne", 20, 2.3, [], [], "0, one", [], ""
    )
    job, _disabled, error, _p, _r = view.run_or_steer("proj-run", None, body, running=False)
    assert job is no_update and "'one' is not a number" in str(error)
    # the API's own reasons come back readable too: perplexity at or above N / 3
    files = [(f"{i}.png", png((i * 41) % 250, size=8)) for i in range(12)]
    api.create_dataset("dots12", images=files, labels=["a", "b"] * 6)
    body = view.projection_body("dots12", "digits_cnn", "features.5", "mean", "tsne", 30, 2.3, [], [])
    job, _disabled, error, _p, _r = view.run_or_steer("proj-run", None, body, running=False)
    assert job is no_update and "N / 3" in str(error)
