"""Bring your own model (issue 18): a class from the user-code folder and the checkpoints training writes."""

from __future__ import annotations

import copy

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from server.errors import InvalidInputError
from server.zoo import catalogue
from server.zoo.registry import get_spec, list_specs
from server.zoo.user_code import resolve_class


def trained_net(code_dir, seed: int = 0) -> nn.Module:
    """MyNet from the user-code folder, with BatchNorm statistics that are not the defaults."""
    torch.manual_seed(seed)
    net = resolve_class("mynet:MyNet", code_dir)(num_classes=5)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(8, 3, 16, 16))
    return net.eval()


def checkpoints(net: nn.Module, folder) -> dict[str, str]:
    """The same weights in every form the issue lists; file name -> what it is."""
    state = net.state_dict()
    torch.save(state, folder / "plain.pt")
    torch.save(
        {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, folder / "no_nbt.pth"
    )
    other = copy.deepcopy(net)  # a real optimizer state for the checkpoint, from a copy of the net
    opt = torch.optim.SGD(other.parameters(), lr=0.1, momentum=0.9)
    other(torch.randn(2, 3, 16, 16)).sum().backward()
    opt.step()
    torch.save(
        {
            "epoch": 3,
            "global_step": 120,
            "pytorch-lightning_version": "2.4.0",
            "state_dict": {f"model.{k}": v for k, v in state.items()},
            "optimizer_states": [opt.state_dict()],
            "lr_schedulers": [],
            "hparams_name": "kwargs",
            "hyper_parameters": {"lr": 0.1, "num_classes": 5},
        },
        folder / "lightning.ckpt",
    )
    compiled = torch.compile(net, backend="eager")  # OptimizedModule: keys under _orig_mod.
    compiled_state = compiled.state_dict()
    assert all(k.startswith("_orig_mod.") for k in compiled_state)
    torch.save(compiled_state, folder / "compiled.pt")
    torch.save(
        {"state_dict": {f"model.{k}": v for k, v in compiled_state.items()}},
        folder / "lightning_compiled.ckpt",
    )
    dp_state = nn.DataParallel(net).state_dict()
    assert all(k.startswith("module.") for k in dp_state)
    torch.save({"model_state_dict": dp_state, "epoch": 1}, folder / "dataparallel.pt")
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "weights.safetensors"))
    return {
        "plain.pt": "state dict",
        "no_nbt.pth": "without num_batches_tracked",
        "lightning.ckpt": "Lightning",
        "compiled.pt": "torch.compile",
        "lightning_compiled.ckpt": "Lightning + torch.compile",
        "dataparallel.pt": "DataParallel in model_state_dict",
        "weights.safetensors": "safetensors",
    }


def entry(model_id: str, weights: str, **extra: str) -> str:
    more = "".join(f'{k} = "{v}"\n' for k, v in extra.items())
    return (
        f'[[model]]\nid = "{model_id}"\nmodule = "mynet:MyNet"\nkwargs = {{num_classes = 5}}\n'
        f'weights = "{weights}"\ninput_size = [3, 16, 16]\n{more}\n'
    )


def test_every_checkpoint_format_gives_the_logits_of_the_module_it_was_saved_from(lab):
    net = trained_net(lab.code_dir)
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = net(x)
    files = checkpoints(net, lab.models_dir)
    ids = lab.register("".join(entry(f"m{i}", name) for i, name in enumerate(files)))
    assert ids == [f"m{i}" for i in range(len(files))], catalogue.catalogue_errors
    zoo = lab.zoo()
    for i, (name, what) in enumerate(files.items()):
        lm = zoo.load(f"m{i}")
        assert not lm.untrained and lm.card.architecture == "MyNet"
        with torch.no_grad():
            got = lm.model(lm.to_input(x)).cpu()
        assert (got - expected).abs().max().item() < 1e-5, (name, what)
        assert lm.card.model_class == "mynet:MyNet"
    assert get_spec("m0").card.source == "catalogue" and "user" in get_spec("m0").tags


def test_ema_weights_are_chosen_by_the_setting_and_the_entry(lab):
    from timm.utils import ModelEmaV3

    net = trained_net(lab.code_dir)
    ema = ModelEmaV3(net, decay=0.5)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1)
    ema.update(net)
    torch.save(
        {"state_dict": net.state_dict(), "state_dict_ema": ema.state_dict(), "epoch": 9},
        lab.models_dir / "ema.pth",
    )
    lab.register(entry("by_default", "ema.pth") + entry("raw", "ema.pth", checkpoint_weights="raw"))
    x = torch.randn(2, 3, 16, 16)
    zoo = lab.zoo()
    with torch.no_grad():
        want_ema, want_raw = ema.module.eval()(x), net(x)
        got_ema = zoo.load("by_default").model(x)
        got_raw = zoo.load("raw").model(x)
    assert (want_ema - want_raw).abs().max() > 1e-3  # the two really differ
    assert (got_ema - want_ema).abs().max() < 1e-5
    assert (got_raw - want_raw).abs().max() < 1e-5


def test_a_real_mismatch_still_names_the_keys(lab):
    narrow = resolve_class("mynet:MyNet", lab.code_dir)(num_classes=5, width=4)
    state = {f"model.{k}": v for k, v in narrow.state_dict().items()}
    state.pop("model.head.bias")
    state["model.extra.weight"] = torch.zeros(3)
    torch.save({"state_dict": state}, lab.models_dir / "narrow.ckpt")
    lab.register(entry("narrow", "narrow.ckpt"))
    with pytest.raises(InvalidInputError) as e:
        lab.zoo().load("narrow")
    msg = e.value.message
    assert "missing keys (1): head.bias" in msg
    assert "model.extra.weight" in msg
    assert "features.0.weight: checkpoint (4, 3, 3, 3) vs model (8, 3, 3, 3)" in msg


def test_broken_entries_are_reported_and_skipped(lab):
    (lab.code_dir / "broken.py").write_text("import torch\nraise RuntimeError('typo in the lab code')\n")
    ids = lab.register(
        entry("ok", "nothing_yet.pt")
        + '[[model]]\nid = "no_file"\nmodule = "nonet:Net"\n\n'
        + '[[model]]\nid = "raises"\nmodule = "broken:Net"\n\n'
        + '[[model]]\nid = "no_class"\nmodule = "mynet:YourNet"\n\n'
        + '[[model]]\nid = "digits_cnn"\nmodule = "mynet:MyNet"\n'
    )
    assert ids == ["ok"]
    errors = " ".join(catalogue.catalogue_errors)
    assert "No 'nonet.py' in the user-code folder" in errors
    assert "RuntimeError: typo in the lab code" in errors
    assert "has no 'YourNet'. It defines: MyNet" in errors
    assert "already a built-in" in errors
    assert get_spec("digits_cnn").card.source == "convlens"  # a catalogue entry cannot replace a built-in
    assert get_spec("ok").locate_weights().status == "unavailable"
    assert "ok" in {s.card.id for s in list_specs()}


LITE = '''
import timm


def Lite0():
    """The lab's own wrapper around timm's EfficientNet-Lite0 (a factory function is not a class)."""
    return timm.create_model("tf_efficientnet_lite0", pretrained=False)


class MyLite0(timm.models.efficientnet.EfficientNet):
    def __init__(self):
        model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
        self.__dict__ = model.__dict__
'''


@pytest.mark.slow
def test_real_lite0_weights_from_a_lightning_compiled_checkpoint_give_the_builtin_logits(
    lab, lite0, chelsea_jpeg
):
    """Full size, real ImageNet weights: Lite0's state dict as a Lightning checkpoint of a compiled
    model, without num_batches_tracked, loaded into the lab's own class, gives Lite0's logits at 224 px."""
    import io

    from PIL import Image

    (lab.code_dir / "lite.py").write_text(LITE)
    state = {k: v for k, v in lite0.model.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(
        {"state_dict": {f"model._orig_mod.{k}": v.cpu() for k, v in state.items()}, "epoch": 1},
        lab.models_dir / "lite.ckpt",
    )
    ids = lab.register(
        '[[model]]\nid = "lab_lite0"\nmodule = "lite:MyLite0"\nweights = "lite.ckpt"\n'
        "input_size = [3, 224, 224]\nmean = [0.498, 0.498, 0.498]\nstd = [0.502, 0.502, 0.502]\n"
        'interpolation = "bicubic"\n'
        '\n[[model]]\nid = "not_a_class"\nmodule = "lite:Lite0"\n'
    )
    assert ids == ["lab_lite0"]
    assert "is not a torch.nn.Module class" in " ".join(catalogue.catalogue_errors)
    lm = lab.zoo().load("lab_lite0")
    x, _ = lite0.preprocess(Image.open(io.BytesIO(chelsea_jpeg)).convert("RGB"))
    assert tuple(x.shape) == (1, 3, 224, 224)
    with torch.inference_mode():
        ours = lm.model(lm.to_input(x.cpu())).cpu()
        theirs = lite0.model(x).cpu()
    assert (ours - theirs).abs().max().item() < 1e-5
    assert ours.argmax().item() in (281, 282, 285)  # tabby, tiger cat, Egyptian cat
