import torch
from safetensors.torch import save_file

from server.config import Settings, get_settings
from server.zoo import catalogue
from server.zoo.registry import get_spec, list_specs


def _use_models_dir(monkeypatch, path):
    s = Settings(models_dir=path)
    monkeypatch.setattr(catalogue, "get_settings", lambda: s)


def test_user_checkpoint_and_torchscript_models_register_and_load(tmp_path, monkeypatch, zoo):
    import torchvision

    net = torchvision.models.resnet18(num_classes=3)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "mine.safetensors"))
    scripted = torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()))
    scripted.save(str(tmp_path / "ts.pt"))
    (tmp_path / "catalogue.toml").write_text(
        """
[[model]]
id = "my_resnet"
architecture = "resnet18"
weights = "mine.safetensors"
num_classes = 3
labels = ["cat", "dog", "fox"]

[[model]]
id = "my_scripted"
torchscript = "ts.pt"
num_classes = 2
input_size = [3, 16, 16]

[[model]]
id = "broken"
architecture = "resnet18"
"""
    )
    _use_models_dir(monkeypatch, tmp_path)
    try:
        ids = catalogue.register_catalogue_models()
        assert ids == ["my_resnet", "my_scripted"]
        assert any("broken" in e for e in catalogue.catalogue_errors)
        lm = zoo.load("my_resnet")
        assert lm.card.labels == ("cat", "dog", "fox") and not lm.untrained
        assert torch.equal(lm.model.state_dict()["fc.weight"].cpu(), net.state_dict()["fc.weight"])
        ts = zoo.load("my_scripted")
        assert get_spec("my_scripted").card.source == "torchscript"
        assert tuple(ts.model(ts.example_input()).shape) == (1, 4, 14, 14)
    finally:
        monkeypatch.setattr(catalogue, "get_settings", get_settings)
        catalogue.register_catalogue_models()
    assert "my_resnet" not in {s.card.id for s in list_specs()}
