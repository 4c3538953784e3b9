"""``convlens weights pull`` (issue 17): official weights from a mirror, SHA-256 checked, stored as safetensors,
named under [weights]; a wrong hash leaves no file and no entry. The mirror is a local HTTP server."""

from __future__ import annotations

import tomllib

import pytest
import torch
from safetensors.torch import load_file

from server.config import get_settings
from server.errors import ChecksumMismatchError, ConflictError, DownloadFailedError, InvalidInputError
from server.zoo import pull
from server.zoo.builtin import ensure_registered, torchvision_default_weights
from server.zoo.manager import ZooManager, weights_status
from server.zoo.registry import get_spec

MODEL = "squeezenet1_1"  # a lecture model of the zoo, 1.2M parameters


@pytest.fixture(autouse=True)
def _registered() -> None:
    ensure_registered()


def files_in(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_official_weights_come_from_torchvision_without_network():
    w = pull.official_weights("resnet18")
    assert w.url == torchvision_default_weights("resnet18").url
    assert (w.file_name, w.sha256_prefix, w.stored_name) == (
        "resnet18-f37072fd.pth",
        "f37072fd",
        "resnet18-f37072fd.safetensors",
    )
    assert pull.official_weights("alexnet").sha256_prefix == "7be5be79"  # alexnet-owt-7be5be79.pth
    assert w.source_url("http://lab.example/weights/") == "http://lab.example/weights/resnet18-f37072fd.pth"
    assert w.source_url("") == w.url


@pytest.mark.parametrize("model_id", ["efficientnet_lite0", "digits_cnn", "inception_resnet_v2", "nope"])
def test_models_without_official_torchvision_weights_are_refused(model_id):
    with pytest.raises(InvalidInputError, match="no official weights to pull: choose among alexnet"):
        pull.official_weights(model_id)


def test_pull_from_the_mirror_registers_weights_the_zoo_loads_as_pretrained(weights_mirror):
    state, sha256 = weights_mirror.publish(MODEL)
    before = weights_status(get_spec(MODEL))
    assert before[0] == "unavailable" and f"convlens weights pull {MODEL}" in before[2]

    done = pull.pull(pull.official_weights(MODEL), get_settings())

    name = f"{MODEL}-{sha256[:8]}"
    assert weights_mirror.requests == [f"/lab/{name}.pth"]  # the mirror, not the official host
    assert done.sha256 == sha256 and done.path == weights_mirror.models_dir / f"{name}.safetensors"
    assert files_in(weights_mirror.models_dir) == ["catalogue.toml", f"{name}.safetensors"]  # no temporaries
    catalogue = tomllib.loads((weights_mirror.models_dir / "catalogue.toml").read_text())
    assert catalogue == {"weights": {MODEL: f"{name}.safetensors"}}
    stored = load_file(str(done.path))
    assert stored.keys() == state.keys() and all(torch.equal(stored[k], state[k]) for k in state)

    status, source, _ = weights_status(get_spec(MODEL))
    assert status == "available" and f"{name}.safetensors" in source
    lm = ZooManager("cpu").load(MODEL)
    assert lm.pretrained and not lm.untrained
    loaded = lm.model.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_pulling_again_downloads_nothing(weights_mirror):
    weights_mirror.publish(MODEL)
    pull.pull(pull.official_weights(MODEL), get_settings())
    catalogue = (weights_mirror.models_dir / "catalogue.toml").read_text()
    again = pull.pull(pull.official_weights(MODEL), get_settings())
    assert again.already_there and len(weights_mirror.requests) == 1
    assert (weights_mirror.models_dir / "catalogue.toml").read_text() == catalogue


def test_a_wrong_hash_is_refused_and_leaves_nothing(weights_mirror):
    weights_mirror.models_dir.mkdir()
    lab_catalogue = '# the lab\'s models\n\n[weights]\nresnet18 = "resnet18-mine.safetensors"\n'
    (weights_mirror.models_dir / "catalogue.toml").write_text(lab_catalogue)
    _state, sha256 = weights_mirror.publish(MODEL, sha256_prefix="deadbeef")
    assert not sha256.startswith("deadbeef")

    with pytest.raises(ChecksumMismatchError, match=f"SHA-256 is {sha256}.*starts with deadbeef"):
        pull.pull(pull.official_weights(MODEL), get_settings())

    assert weights_mirror.requests == [f"/lab/{MODEL}-deadbeef.pth"]  # it was downloaded, then refused
    assert files_in(weights_mirror.models_dir) == ["catalogue.toml"]
    assert (weights_mirror.models_dir / "catalogue.toml").read_text() == lab_catalogue
    assert weights_status(get_spec(MODEL))[0] == "unavailable"


def test_a_file_missing_on_the_mirror_and_a_mirror_down_are_readable_errors(weights_mirror, monkeypatch):
    weights = pull.official_weights(MODEL)  # the real name, which this mirror does not hold
    with pytest.raises(DownloadFailedError, match=f"Could not download .*/lab/{weights.file_name}: HTTP 404"):
        pull.pull(weights, get_settings())
    monkeypatch.setenv("CONVLENS_WEIGHTS_MIRROR", "http://127.0.0.1:9/lab")  # discard: nothing listens
    get_settings.cache_clear()
    with pytest.raises(DownloadFailedError, match=r"Could not download http://127\.0\.0\.1:9/lab/.*refused"):
        pull.pull(weights, get_settings())
    assert files_in(weights_mirror.models_dir) == []


def test_a_download_cut_short_is_an_error_and_leaves_nothing(weights_mirror):
    weights_mirror.publish(MODEL)
    weights_mirror.server.cut_after = 1000
    with pytest.raises(DownloadFailedError, match=r"the connection ended after 1,000 of [\d,]+ bytes"):
        pull.pull(pull.official_weights(MODEL), get_settings())
    assert files_in(weights_mirror.models_dir) == []


def test_a_mirror_on_a_shared_disk_is_a_file_url(weights_mirror, monkeypatch):
    state, _sha256 = weights_mirror.publish(MODEL)
    monkeypatch.setenv("CONVLENS_WEIGHTS_MIRROR", weights_mirror.folder.as_uri())
    get_settings.cache_clear()
    done = pull.pull(pull.official_weights(MODEL), get_settings())
    assert weights_mirror.requests == [] and done.url.startswith("file:///")
    stored = load_file(str(done.path))
    assert all(torch.equal(stored[k], state[k]) for k in state)


def test_weights_the_lab_named_itself_are_not_overwritten(weights_mirror):
    weights_mirror.publish(MODEL)
    weights_mirror.models_dir.mkdir()
    lab_catalogue = f'[weights]\n{MODEL} = "ours.safetensors"\n'
    (weights_mirror.models_dir / "catalogue.toml").write_text(lab_catalogue)
    with pytest.raises(ConflictError, match=r"already names 'ours\.safetensors'"):
        pull.pull(pull.official_weights(MODEL), get_settings())
    assert weights_mirror.requests == []  # refused before downloading
    assert (weights_mirror.models_dir / "catalogue.toml").read_text() == lab_catalogue


def test_the_entry_joins_the_labs_weights_table_and_keeps_the_rest(weights_mirror):
    weights_mirror.models_dir.mkdir()
    lab_catalogue = (
        '# the lab\'s models\n[weights]  # built-ins\nresnet18 = "r18.safetensors"\n\n'
        '[[model]]\nid = "my_resnet"\narchitecture = "resnet18"\nweights = "my.safetensors"\n'
    )
    (weights_mirror.models_dir / "catalogue.toml").write_text(lab_catalogue)
    _state, sha256 = weights_mirror.publish(MODEL)
    pull.pull(pull.official_weights(MODEL), get_settings())
    text = (weights_mirror.models_dir / "catalogue.toml").read_text()
    assert text.startswith("# the lab's models\n[weights]  # built-ins\n")
    data = tomllib.loads(text)
    assert data["weights"] == {"resnet18": "r18.safetensors", MODEL: f"{MODEL}-{sha256[:8]}.safetensors"}
    assert data["model"] == tomllib.loads(lab_catalogue)["model"]
