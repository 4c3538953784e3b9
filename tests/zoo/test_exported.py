"""torch.export archives (issue 18): digits_cnn as a .pt2 gives digits_cnn's activations; unsafe archives
are refused before torch.export.load could run what they hold."""

from __future__ import annotations

import contextlib
import os
import pickle
import zipfile

import pytest
import torch

from server.engine.hooks import active_hook_count, capture
from server.errors import UnsafeCheckpointError
from server.zoo import catalogue
from server.zoo.exported import check_archive, load_exported
from tests.zoo.contract import assert_model_contract


def export_digits(model, path) -> None:
    ep = torch.export.export(
        model.cpu().eval(), (torch.randn(2, 1, 8, 8),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    torch.export.save(ep, str(path))


@pytest.fixture(scope="module")
def digits_pt2(tmp_path_factory, digits_model):
    path = tmp_path_factory.mktemp("pt2") / "digits.pt2"
    export_digits(digits_model.model, path)
    return path


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pt2_export_of_digits_cnn_gives_the_same_activations(lab, digits_model, digits_pt2):
    from server.zoo.digits import digits_split

    (lab.models_dir / "digits.pt2").write_bytes(digits_pt2.read_bytes())
    ids = lab.register(
        '[[model]]\nid = "digits_export"\nexported = "digits.pt2"\ninput_size = [1, 8, 8]\n'
        'labels = ["0","1","2","3","4","5","6","7","8","9"]\ndefault_layer = "features.3"\n'
    )
    assert ids == ["digits_export"], catalogue.catalogue_errors
    lm = lab.zoo().load("digits_export")
    ref = digits_model
    # the layers are the module hierarchy the export kept, with the classes they had before export
    ours = {layer.name: layer for layer in lm.layers()}
    theirs = {layer.name: layer for layer in ref.layers()}
    assert list(ours) == list(theirs)
    for name, layer in theirs.items():
        assert (ours[name].type, ours[name].kind, ours[name].output_shape) == (
            layer.type,
            layer.kind,
            layer.output_shape,
        ), name
    x = torch.from_numpy(digits_split().x_test[:32])
    names = list(theirs)
    with capture(lm.model, names) as got, torch.inference_mode():
        lm.model(lm.to_input(x))
    with capture(ref.model, names) as want, torch.inference_mode():
        ref.model(ref.to_input(x))
    for name in names:
        assert torch.allclose(got[name].cpu(), want[name].cpu(), atol=1e-5), name
    assert active_hook_count(lm.model) == 0
    assert_model_contract(lm)
    assert get_origin("digits_export") == {
        "class": "ExportedProgram",
        "checkpoint": "digits.pt2",
        "format": "torch.export",
        "group": "lab",
    }


def get_origin(model_id: str) -> dict:
    from server.zoo.manager import model_origin
    from server.zoo.registry import get_spec

    return model_origin(get_spec(model_id))


def test_an_archive_whose_pickle_runs_code_is_refused_before_loading(tmp_path, digits_pt2):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt2"
    with zipfile.ZipFile(digits_pt2) as src, zipfile.ZipFile(evil, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name.endswith("sample_inputs/model.pt"):
                data = pickle.dumps(_Exploit(str(marker)))
            dst.writestr(name, data)
    with pytest.raises(UnsafeCheckpointError, match="needs more than tensors"):
        load_exported(evil)
    assert not marker.exists()
    # why the check exists: torch.export.load itself falls back to full unpickling and runs the code
    with contextlib.suppress(Exception):
        torch.export.load(str(evil))
    assert marker.exists()


def test_an_archive_with_a_custom_operator_is_refused_by_name(tmp_path):
    @torch.library.custom_op("convlens_test::double", mutates_args=())
    def double(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    @double.register_fake
    def _(x):
        return torch.empty_like(x)

    class Net(torch.nn.Module):
        def forward(self, x):
            return torch.ops.convlens_test.double(x)

    path = tmp_path / "custom.pt2"
    torch.export.save(torch.export.export(Net(), (torch.randn(2, 3),)), str(path))
    check_archive(path)  # its files are plain; the operator is what is refused
    with pytest.raises(UnsafeCheckpointError, match=r"convlens_test\.double"):
        load_exported(path)
