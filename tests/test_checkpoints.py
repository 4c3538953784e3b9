"""CheckpointService: the stored snapshots of a model, checks before a comparison job, comparisons in order."""

from __future__ import annotations

import pytest

from server.checkpoints import COMPARE_TASK, CheckpointRef, checkpoint_refs
from server.errors import InvalidInputError, NotFoundError

SNAPSHOTS = ["epoch_01", "epoch_03", "epoch_10", "epoch_30"]


def test_files_are_the_state_dicts_stored_under_the_models_folder(services):
    files = services.checkpoints.files("digits_cnn")
    assert set(SNAPSHOTS) <= set(files) and all(p.suffix == ".safetensors" for p in files.values())
    assert services.checkpoints.files("resnet18") == {}
    for bad in ("../digits_cnn", ".hidden", "a/b"):
        with pytest.raises(NotFoundError):
            services.checkpoints.files(bad)


def test_refs_by_name_need_the_model_and_at_least_two():
    assert checkpoint_refs({"model": "digits_cnn", "checkpoints": ["epoch_01", "epoch_03"]}) == [
        CheckpointRef("digits_cnn", "epoch_01"),
        CheckpointRef("digits_cnn", "epoch_03"),
    ]
    mixed = checkpoint_refs(
        {"checkpoints": [{"model": "digits_cnn"}, {"model": "alexnet", "untrained": True}]}
    )
    assert [r.label for r in mixed] == ["digits_cnn:weights", "alexnet:untrained"]
    with pytest.raises(InvalidInputError, match="Name the model"):
        checkpoint_refs({"checkpoints": ["epoch_01", "epoch_03"]})
    with pytest.raises(InvalidInputError, match="at least two"):
        checkpoint_refs({"model": "digits_cnn", "checkpoints": ["epoch_01"]})


def test_plan_loads_and_checks_every_checkpoint_before_the_job(services):
    params = {"model": "digits_cnn", "checkpoints": ["epoch_01", "final.safetensors"], "thresholds": {}}
    plan = services.checkpoints.plan(params)
    assert (plan.kind, plan.params, plan.cache_key) == (COMPARE_TASK, params, None)
    assert plan.details == {
        "checkpoints": ["digits_cnn:epoch_01", "digits_cnn:final.safetensors"],
        "untrained": False,
    }
    with pytest.raises(NotFoundError, match="epoch_"):
        services.checkpoints.plan({"model": "digits_cnn", "checkpoints": ["epoch_01", "epoch_2"]})
    with pytest.raises(InvalidInputError, match="different architectures"):
        services.checkpoints.plan(
            {
                "checkpoints": [
                    {"model": "digits_cnn", "checkpoint": "epoch_01"},
                    {"model": "squeezenet1_1", "untrained": True},
                ]
            }
        )


def test_compare_reports_updates_between_consecutive_snapshots_in_definition_order(services):
    steps: list[str] = []
    result = services.checkpoints.compare(
        {"model": "digits_cnn", "checkpoints": SNAPSHOTS[:3]}, lambda _f, m: steps.append(m)
    )
    assert [(c["a"], c["b"]) for c in result["comparisons"]] == [
        ("digits_cnn:epoch_01", "digits_cnn:epoch_03"),
        ("digits_cnn:epoch_03", "digits_cnn:epoch_10"),
    ]
    layers = [layer["layer"] for layer in result["comparisons"][0]["layers"]]
    assert layers[:3] == ["features.0", "features.2", "features.5"]  # the model's order, not the file's
    assert steps[-1] == "comparing" and result["untrained"] is False
