"""CompareService: one image through two checkpoints or two models, and the CKA between their layers."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from server.checkpoints import CheckpointRef
from server.compare import CKA_TASK, CkaRequest, CompareRequest, stage_layers
from server.config import REPO_ROOT
from server.errors import InvalidInputError, NotFoundError

DIGIT3 = (REPO_ROOT / "static" / "samples" / "digit3.png").read_bytes()
EPOCH_01, FINAL = CheckpointRef("digits_cnn", "epoch_01"), CheckpointRef("digits_cnn", "final")


@pytest.fixture
def digit3(services):
    return services.compare.explore.decode(DIGIT3)


def test_two_checkpoints_predict_side_by_side_and_list_the_filters_that_moved_most(services, digit3):
    out = services.compare.compare(CompareRequest(EPOCH_01, FINAL, "features.2", changed=5), *digit3)
    assert out["mode"] == "checkpoints"
    a, b = out["sides"]
    assert (a["label"], b["label"]) == ("digits_cnn:epoch_01", "digits_cnn:final")
    assert a["weights"] == "checkpoint 'epoch_01.safetensors'" and not a["untrained"]
    assert b["predictions"][0]["label"] == "3" and b["predictions"][0]["probability"] > 0.9
    assert a["layer"] == b["layer"] == "features.2"
    assert a["activations"]["mosaic_url"] != b["activations"]["mosaic_url"]  # each side's own artifacts
    assert len(a["activations"]["channels"]) == 32

    changed = out["changed"]
    assert changed["scope"] == ["features.2"]
    assert [u["layer"] for u in changed["layers"]] == [
        "features.0",
        "features.2",
        "features.5",
        "classifier.1",
        "classifier.4",
    ]
    filters = changed["filters"]
    assert len(filters) == 5 and all(f["layer"] == "features.2" for f in filters)
    assert [f["change"] for f in filters] == sorted((f["change"] for f in filters), reverse=True)
    top = filters[0]
    epoch_01 = services.checkpoints.load(EPOCH_01)["features.2.weight"][top["index"]]
    np.testing.assert_allclose(top["before"]["values"], epoch_01.numpy(), rtol=1e-6)
    assert top["before"]["shape"] == [16, 3, 3] and top["before"]["values"] != top["after"]["values"]
    assert top["before"]["map_url"].endswith(f"/channel_{top['index']}.png")
    assert top["before"]["map_url"] != top["after"]["map_url"]


def test_a_layer_without_weights_ranks_the_filters_of_every_conv_layer(services, digit3):
    out = services.compare.compare(
        CompareRequest(EPOCH_01, CheckpointRef("digits_cnn"), "features.3"), *digit3
    )
    assert out["changed"]["scope"] == ["features.0", "features.2", "features.5"]
    assert out["sides"][1]["label"] == "digits_cnn:weights"


def test_checkpoint_models_are_loaded_once_and_freed_from_the_memory_budget(services):
    first = services.checkpoints.loaded(EPOCH_01)
    assert services.checkpoints.loaded(EPOCH_01) is first
    assert services.checkpoints.loaded(CheckpointRef("digits_cnn")) is services.zoo.load("digits_cnn")
    with pytest.raises(NotFoundError, match="epoch_01"):
        services.checkpoints.loaded(CheckpointRef("digits_cnn", "epoch_1"))
    zoo = services.zoo
    used = zoo.used_bytes()
    del first
    services.checkpoints._models.clear()
    gc.collect()
    assert zoo.used_bytes() < used


def test_two_models_show_each_ones_default_layer_and_no_changed_filters(services, chelsea_jpeg):
    img, sha = services.compare.explore.decode(chelsea_jpeg)
    req = CompareRequest(CheckpointRef("efficientnet_lite0"), CheckpointRef("efficientnet_lite1"), "blocks.5")
    out = services.compare.compare(req, img, sha)
    assert out["mode"] == "models" and out["changed"] is None
    assert [s["layer"] for s in out["sides"]] == ["blocks.5", "blocks.3"]  # B: Lite1's default layer
    assert all("cat" in s["predictions"][0]["label"] for s in out["sides"])
    assert out["same_top1"] is (
        out["sides"][0]["predictions"][0]["label"] == out["sides"][1]["predictions"][0]["label"]
    )


@pytest.mark.parametrize(
    ("req", "error", "match"),
    [
        (CompareRequest(EPOCH_01, EPOCH_01), InvalidInputError, "Both sides are digits_cnn:epoch_01"),
        (CompareRequest(EPOCH_01, FINAL, changed=65), InvalidInputError, "changed must be"),
        (CompareRequest(EPOCH_01, FINAL, top_k=0), InvalidInputError, "top_k"),
        (CompareRequest(EPOCH_01, FINAL, "features.9"), NotFoundError, "features"),
        (CompareRequest(EPOCH_01, CheckpointRef("digits_cnm")), NotFoundError, "digits_cnn"),
        (
            CompareRequest(CheckpointRef("dcgan_digits_generator"), FINAL),
            InvalidInputError,
            "generator",
        ),
    ],
)
def test_bad_requests_are_user_errors_before_any_forward(services, req, error, match):
    with pytest.raises(error, match=match):
        services.compare.load(req)


def test_stage_layers_are_a_networks_blocks_or_else_its_conv_and_linear_layers(services, lite0, digits_model):
    assert stage_layers(lite0.layers()) == [
        "conv_stem", *(f"blocks.{i}" for i in range(7)), "conv_head", "classifier",
    ]  # fmt: skip
    assert stage_layers(digits_model.layers()) == [
        "features.0", "features.2", "features.5", "classifier.1", "classifier.4",
    ]  # fmt: skip


def test_cka_of_two_checkpoints_matches_each_layer_with_itself(services):
    params = {
        "a": {"model": "digits_cnn", "checkpoint": "epoch_30"},
        "b": {"model": "digits_cnn"},
        "dataset": "digits",
        "max_images": 64,
    }
    plan = services.compare.plan_cka(params)
    assert plan.kind == CKA_TASK and plan.cache_key
    assert plan.details == {
        "a": "digits_cnn:epoch_30",
        "b": "digits_cnn:weights",
        "dataset": "digits",
        "num_images": 64,
    }
    steps: list[float] = []
    out = services.compare.cka(params, lambda f, _m: steps.append(f))
    assert out["num_images"] == 64 and out["layers_a"] == out["layers_b"] == stage_layers(
        services.zoo.load("digits_cnn").layers()
    )
    n = len(out["layers_a"])
    assert len(out["cka"]) == n and all(len(row) == n for row in out["cka"])
    assert [m["layer_b"] for m in out["best_match"]] == out["layers_a"]  # late snapshots: the same layer
    assert all(m["cka"] > 0.9 for m in out["best_match"])
    assert steps == sorted(steps) and steps[-1] == 0.9
    other = services.compare.plan_cka({**params, "max_images": 32})
    assert other.cache_key != plan.cache_key


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"a": {"model": "digits_cnn"}, "b": {"model": "digits_cnn"}, "dataset": "digits"}, InvalidInputError, "Both sides"),
        ({"a": {"model": "digits_cnn"}, "b": {}, "dataset": "digits"}, InvalidInputError, "model of side b"),
        ({"a": {"model": "digits_cnn"}, "b": {"model": "digits_cnn", "checkpoint": "final"}, "dataset": "digits", "max_images": 1}, InvalidInputError, "max_images"),
        ({"a": {"model": "digits_cnn"}, "b": {"model": "digits_cnn", "checkpoint": "final"}, "dataset": "digits", "pool": "sum"}, InvalidInputError, "pooling"),
        ({"a": {"model": "digits_cnn"}, "b": {"model": "digits_cnn", "checkpoint": "final"}, "dataset": "digitz"}, NotFoundError, "digits"),
        ({"a": {"model": "digits_cnn"}, "b": {"model": "digits_cnn", "checkpoint": "final"}, "dataset": "digits", "layers_b": ["features.9"]}, NotFoundError, "features"),
    ],
)  # fmt: skip
def test_cka_plans_refuse_bad_requests(services, params, error, match):
    with pytest.raises(error, match=match):
        services.compare.plan_cka(params)


def test_cka_refuses_flattened_features_too_large_to_hold(services):
    params = {
        "a": {"model": "efficientnet_lite0"},
        "b": {"model": "efficientnet_lite1"},
        "dataset": "lfw_subset",
    }
    with pytest.raises(InvalidInputError, match=r"MiB.*use mean or max pooling"):
        services.compare.plan_cka({**params, "pool": "flatten", "max_images": 200})
    assert services.compare.plan_cka(
        {**params, "pool": "flatten", "layers_a": ["blocks.6"], "layers_b": ["blocks.6"]}
    )


def test_cka_request_defaults():
    req = CkaRequest.from_params(
        {"a": {"model": "x"}, "b": {"model": "y", "untrained": True}, "dataset": "d"}
    )
    assert (req.max_images, req.pool, req.layers_a, req.b.untrained) == (64, "mean", (), True)
