"""Projection cautions over the API: seeds -> stability, baseline noise, faithfulness, perplexity guidance."""

from __future__ import annotations

import pytest

from tests.api.test_projections import SMALL_TSNE, finished
from tests.datasets.test_store import png


def make_three_class_dataset(client, name: str, n: int) -> None:
    files = [("images", (f"{i}.png", png((i * 37) % 250, size=8), "image/png")) for i in range(n)]
    labels = ["abc"[i % 3] for i in range(n)]
    r = client.post("/api/v1/datasets", data={"name": name, "labels": labels}, files=files)
    assert r.status_code == 201, r.text


def test_tsne_with_seeds_noise_baseline_and_a_sweep_returns_every_caution(client) -> None:
    make_three_class_dataset(client, "sixty", 60)
    body = {
        "model": "digits_cnn",
        "layer": "features.5",
        "dataset": "sixty",
        "method": "tsne",
        "params": SMALL_TSNE,
        "seeds": [3, 1, 2],
        "baseline": "noise",
        "perplexities": [5, 15],
    }
    r = client.post("/api/v1/projections", json=body)
    assert r.status_code == 202, r.text
    assert r.json()["params"]["init"] == "random" and r.json()["params"]["seed"] == 3
    job = finished(client, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    res = job["result"]
    st = res["stability"]
    assert st["seeds"] == [3, 1, 2] and st["init"] == "random" and st["k"] == 10
    assert len(st["per_point"]) == 60 and 0 <= st["mean_jaccard"] <= 1
    assert st["mean_jaccard"] == pytest.approx(sum(st["per_point"]) / 60, abs=1e-3)
    assert [len(run["coords"]) for run in st["runs"]] == [60, 60, 60]
    assert st["runs"][0]["coords"] == res["coords"]  # the first seed's run is the main projection
    base = res["baseline"]
    assert base["kind"] == "noise" and len(base["coords"]) == 60
    assert base["chance_uniform"] == pytest.approx(1 / 3) and 0 <= base["purity"] <= 1
    assert 0 <= base["hopkins"] <= 1 and 0 <= base["hopkins_real"] <= 1 and "noise" in base["sentence"]
    faithful = res["distance_faithfulness"]
    assert faithful["n_classes"] == 3 and faithful["pairs"] == 3 and faithful["sentence"]
    sweep = res["perplexity_sweep"]
    assert sweep["perplexities"] == [5.0, 15.0] and sweep["graph_builds"] == 0
    assert [len(run["coords"]) for run in sweep["runs"]] == [60, 60]
    assert res["perplexity_guidance"]["limit"] == 20.0
    again = client.post("/api/v1/projections", json=body).json()
    assert again["cached"] is True
    other = client.post("/api/v1/projections", json={**body, "seeds": [3, 1]}).json()
    assert other["cached"] is False  # seeds are part of the cache key


def test_pca_is_perfectly_stable_and_always_reports_distance_faithfulness(client) -> None:
    make_three_class_dataset(client, "thirty", 30)
    body = {"model": "digits_cnn", "layer": "features.5", "dataset": "thirty", "method": "pca"}
    plain = finished(client, client.post("/api/v1/projections", json=body).json()["job_id"])["result"]
    assert "stability" not in plain and "baseline" not in plain
    assert plain["distance_faithfulness"]["pairs"] == 3
    r = client.post("/api/v1/projections", json={**body, "seeds": [0, 1], "baseline": "noise"})
    res = finished(client, r.json()["job_id"])["result"]
    assert res["stability"]["mean_jaccard"] == pytest.approx(1.0)
    assert len(res["baseline"]["coords"]) == 30


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"seeds": [1]}, "2 to 5"),
        ({"seeds": [1, 1]}, "different"),
        ({"seeds": [1, 2, 3, 4, 5, 6]}, "2 to 5"),
        ({"perplexities": [5, 40]}, "N / 3"),
        ({"perplexities": [5]}, "2 to 5"),
        ({"method": "pca", "perplexities": [5, 6]}, "sweeps t-SNE"),
        ({"params": {**SMALL_TSNE, "perplexity": 20}}, "a third of the number of points (N / 3 = 20"),
        ({"baseline": "uniform"}, "noise"),
    ],
)
def test_bad_caution_options_get_422_with_the_reason(client, extra: dict, message: str) -> None:
    make_three_class_dataset(client, "sixty", 60)
    body = {"model": "digits_cnn", "layer": "features.5", "dataset": "sixty", "params": SMALL_TSNE, **extra}
    r = client.post("/api/v1/projections", json=body)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]


def test_perplexity_guidance_endpoint(client) -> None:
    g = client.get("/api/v1/projections/perplexity-guidance", params={"n": 1797}).json()
    assert (g["min"], g["max"], g["limit"]) == (5.0, 50.0, 599.0) and "N / 3" in g["reason"]
    assert client.get("/api/v1/projections/perplexity-guidance", params={"n": 2}).status_code == 422
