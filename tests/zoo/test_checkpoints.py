import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from server.errors import InvalidInputError, UnsafeCheckpointError
from server.zoo.checkpoints import load_into, read_state_dict
from server.zoo.digits import DigitsCNN


class _Exploit:
    """Unpickling this object runs code that writes a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_that_runs_code_when_unpickled_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"weight": _Exploit(str(marker))}, f)
    with pytest.raises(UnsafeCheckpointError, match="arbitrary code"):
        read_state_dict(path)
    assert not marker.exists()
    # also when it is a zip-format torch checkpoint
    torch.save({"weight": _Exploit(str(marker))}, tmp_path / "evil2.pt")
    with pytest.raises(UnsafeCheckpointError):
        read_state_dict(tmp_path / "evil2.pt")
    assert not marker.exists()


def test_safetensors_and_pt_round_trip(tmp_path):
    model = DigitsCNN()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp_path / "w.safetensors"))
    torch.save({"state_dict": state}, tmp_path / "w.pt")
    for name in ("w.safetensors", "w.pt"):
        fresh = DigitsCNN()
        load_into(fresh, read_state_dict(tmp_path / name))
        assert all(torch.equal(fresh.state_dict()[k], state[k]) for k in state)


def test_state_dict_that_does_not_fit_names_keys(tmp_path):
    state = DigitsCNN().state_dict()
    state.pop("features.0.bias")
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(InvalidInputError) as e:
        load_into(DigitsCNN(), state)
    assert "features.0.bias" in e.value.message and "extra.weight" in e.value.message
