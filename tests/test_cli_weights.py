"""``convlens weights pull`` against a local mirror (tests/weights_mirror.py): exit 0 and a model the API then
serves with ``"pretrained": true``; 2 for an id it cannot pull, 3 for a wrong hash or an unreachable mirror,
with one readable line on stderr and nothing written."""

from __future__ import annotations

import tomllib

import pytest

from server.cli import EXIT_BAD_INPUT, EXIT_ERROR, EXIT_OK, main

MODEL = "squeezenet1_1"


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def api(weights_mirror, tmp_path):
    """The API over the environment's settings (the mirror's models dir), with a zoo of its own."""
    from tests.weights_mirror import mirrored_api

    with mirrored_api(tmp_path) as client:
        yield client


def test_pull_registers_a_model_the_api_serves_pretrained(weights_mirror, api, capsys):
    card = api.get(f"/api/v1/models/{MODEL}").json()
    assert card["pretrained"] is False and f"`convlens weights pull {MODEL}`" in card["weights_message"]
    _state, sha256 = weights_mirror.publish(MODEL)

    code, out, err = run(["weights", "pull", MODEL], capsys)

    assert code == EXIT_OK, err
    assert f"{MODEL}: {weights_mirror.base_url}/{MODEL}-{sha256[:8]}.pth" in out
    assert f"sha256 {sha256} (checked)" in out and "Named under [weights]" in out
    card = api.get(f"/api/v1/models/{MODEL}").json()  # the running API, no restart
    assert card["pretrained"] is True and card["weights_status"] == "available"
    assert card["origin"]["checkpoint"] == f"{MODEL}-{sha256[:8]}.safetensors"
    layers = api.get(f"/api/v1/models/{MODEL}/layers").json()  # loads the pulled weights
    assert layers["pretrained"] is True and layers["untrained"] is False

    code, out, _ = run(["weights", "pull", MODEL], capsys)
    assert code == EXIT_OK and "already pulled" in out and len(weights_mirror.requests) == 1


def test_a_wrong_hash_exits_3_and_registers_nothing(weights_mirror, capsys):
    weights_mirror.publish(MODEL, sha256_prefix="0badc0de")
    code, _out, err = run(["weights", "pull", MODEL], capsys)
    assert code == EXIT_ERROR
    assert err.startswith("convlens: error: Refused ") and "starts with 0badc0de" in err
    assert err.count("\n") == 1  # one line
    assert not weights_mirror.models_dir.exists() or not any(weights_mirror.models_dir.iterdir())


def test_an_unknown_id_exits_2_before_anything_is_downloaded(weights_mirror, capsys):
    weights_mirror.publish(MODEL)
    code, _out, err = run(["weights", "pull", MODEL, "efficientnet_lite0"], capsys)
    assert code == EXIT_BAD_INPUT and "'efficientnet_lite0' has no official weights to pull" in err
    assert weights_mirror.requests == []


def test_an_unreachable_mirror_exits_3_with_a_readable_line(weights_mirror, monkeypatch, capsys):
    from server.config import get_settings

    monkeypatch.setenv("CONVLENS_WEIGHTS_MIRROR", "http://127.0.0.1:9")  # discard: nothing listens
    get_settings.cache_clear()
    code, _out, err = run(["weights", "pull", "alexnet"], capsys)
    assert code == EXIT_ERROR
    assert err.startswith("convlens: error: Could not download http://127.0.0.1:9/alexnet-owt-7be5be79.pth")
    assert "Traceback" not in err


def test_models_pulled_before_a_failure_stay_pulled(weights_mirror, capsys):
    weights_mirror.publish(MODEL)
    weights_mirror.publish("resnet18", sha256_prefix="00000000")
    code, _out, err = run(["weights", "pull", MODEL, "resnet18"], capsys)
    assert code == EXIT_ERROR and "resnet18" in err
    catalogue = tomllib.loads((weights_mirror.models_dir / "catalogue.toml").read_text())
    assert list(catalogue["weights"]) == [MODEL]
    assert sorted(p.suffix for p in weights_mirror.models_dir.iterdir()) == [".safetensors", ".toml"]
