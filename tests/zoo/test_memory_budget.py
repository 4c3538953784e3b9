"""The zoo's memory budget (issue 12): loaded models are kept within CONVLENS_MODEL_MEMORY_BYTES, least
recently used evicted first; untrained builds count; a model that cannot fit is a 507 with a message."""

from __future__ import annotations

import pytest

from server.errors import InsufficientStorageError
from server.zoo.builtin import ensure_registered
from server.zoo.manager import ZooManager, model_bytes

MiB = 2**20


@pytest.fixture
def small_zoo():
    ensure_registered()
    # squeezenet 4.7 MiB + googlenet 25.3 MiB + digits fit; adding lite0 (17.9 MiB) needs an eviction
    return ZooManager("cpu", memory_bytes=40 * MiB)


def test_meta_estimate_equals_the_built_model(small_zoo):
    lm = small_zoo.load("squeezenet1_1", untrained=True)
    assert small_zoo.estimate_bytes(small_zoo.spec("squeezenet1_1")) == model_bytes(lm.model) > 4 * MiB


def test_untrained_builds_count_and_lru_evicts_by_bytes(small_zoo):
    small_zoo.load("squeezenet1_1", untrained=True)
    small_zoo.load("googlenet", untrained=True)
    small_zoo.load("digits_cnn")
    assert small_zoo.used_bytes() <= small_zoo.memory_bytes
    small_zoo.load("squeezenet1_1", untrained=True)  # now the most recently used: googlenet is oldest
    small_zoo.load("efficientnet_lite0")  # 17.9 MiB: googlenet (25.3 MiB) must go, nothing else
    assert set(small_zoo.loaded_ids()) == {
        ("squeezenet1_1", True),
        ("digits_cnn", False),
        ("efficientnet_lite0", False),
    }
    assert small_zoo.used_bytes() <= small_zoo.memory_bytes


def test_a_model_over_the_whole_budget_is_refused_before_it_is_built(small_zoo):
    small_zoo.load("digits_cnn")
    with pytest.raises(InsufficientStorageError) as err:
        small_zoo.load("resnet18", untrained=True)  # 44.6 MiB > 40 MiB
    assert err.value.status_code == 507
    assert "CONVLENS_MODEL_MEMORY_BYTES" in err.value.message and "resnet18" in err.value.message
    assert small_zoo.loaded_ids() == [("digits_cnn", False)]  # nothing evicted for a model that cannot fit


def test_an_evicted_model_still_in_use_keeps_counting(small_zoo):
    held = small_zoo.load("googlenet", untrained=True)  # a running job holds it
    with pytest.raises(InsufficientStorageError, match="running jobs hold other models"):
        small_zoo.load("efficientnet_lite0")  # 17.9 MiB next to the held 25.3 MiB: over 40 MiB
    assert small_zoo.loaded_ids() == []  # evicted from the zoo, yet it counts while it is held
    assert small_zoo.used_bytes() == model_bytes(held.model)
    del held  # the job finished
    small_zoo.load("efficientnet_lite0")
    assert small_zoo.used_bytes() == small_zoo._sizes[("efficientnet_lite0", False)]


def test_api_answers_507_with_the_setting_to_change(tmp_path):
    from fastapi.testclient import TestClient

    from server.api.app import create_app
    from server.config import REPO_ROOT, Settings

    settings = Settings(
        data_dir=tmp_path / "data",
        models_dir=REPO_ROOT / "models",
        preload_default_model=False,
        model_memory_bytes=20 * MiB,
    )
    with TestClient(create_app(settings)) as client:
        r = client.get("/api/v1/models/vgg16/layers", params={"untrained": "true"})
        assert r.status_code == 507
        body = r.json()
        assert body["error"] == "InsufficientStorageError" and "CONVLENS_MODEL_MEMORY_BYTES" in body["detail"]
        assert client.get("/api/v1/models/digits_cnn/layers").status_code == 200  # the server goes on


def test_a_model_with_a_checkpoints_weights_counts_while_held_and_a_misfit_is_a_422(small_zoo):
    import gc

    import torch

    from server.errors import InvalidInputError

    state = {k: torch.ones_like(v) for k, v in small_zoo.spec("digits_cnn").build().state_dict().items()}
    before = small_zoo.used_bytes()
    held = small_zoo.with_state("digits_cnn", state, "checkpoint 'ones.safetensors'")
    assert held.cache_key == "digits_cnn:checkpoint 'ones.safetensors'" and not held.untrained
    assert float(held.model.features[0].weight.min()) == 1.0
    assert small_zoo.used_bytes() == before + model_bytes(held.model)
    assert small_zoo.loaded_ids() == []  # not in the LRU: the caller keeps it
    del held
    gc.collect()
    assert small_zoo.used_bytes() == before
    with pytest.raises(InvalidInputError, match="does not fit the architecture"):
        small_zoo.with_state("digits_cnn", {"features.0.weight": torch.ones(1)}, "checkpoint 'bad.pt'")
