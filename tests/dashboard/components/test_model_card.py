"""The model card and the picker say where a model came from (issue 18)."""

from dashboard.components.model_card import model_card
from dashboard.views.explore import model_options
from tests.dashboard.trees import texts

LAB = {
    "id": "mynet",
    "architecture": "MyNet",
    "source": "catalogue",
    "pretrained": True,
    "input_size": [3, 32, 32],
    "origin": {
        "class": "mynet:MyNet",
        "checkpoint": "mynet.ckpt",
        "format": "training checkpoint",
        "group": "lab",
    },
}
BUILTIN = {
    "id": "digits_cnn",
    "architecture": "DigitsCNN",
    "source": "convlens",
    "pretrained": True,
    "origin": {
        "class": "server.zoo.digits:DigitsCNN",
        "checkpoint": "final.safetensors",
        "format": "safetensors",
        "group": "built-in",
    },
}


def test_the_picker_groups_built_in_and_lab_models_under_headings():
    options = model_options([LAB, BUILTIN])
    assert [o["value"] for o in options] == ["__group__built-in", "digits_cnn", "__group__lab", "mynet"]
    assert options[0]["disabled"] and options[2]["disabled"]
    assert "Lab models" in options[2]["label"] and options[3]["label"] == "mynet · mynet:MyNet"
    assert [o["value"] for o in model_options([BUILTIN])] == ["__group__built-in", "digits_cnn"]


def test_the_card_shows_class_checkpoint_and_format():
    text = texts(model_card(LAB))
    assert "catalogue · lab model (catalogue)" in text
    assert "mynet:MyNet" in text and "mynet.ckpt (training checkpoint)" in text
    assert "final.safetensors (safetensors)" in texts(model_card(BUILTIN))
