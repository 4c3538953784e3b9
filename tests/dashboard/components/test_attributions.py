"""The filter insights' component tree."""

from __future__ import annotations

from dashboard.components.attributions import filter_insights
from tests.dashboard.trees import find


def test_panel_ids_exist():
    tree = filter_insights()
    ids = {c.id for c in find(tree, lambda c: getattr(c, "id", None))}
    assert {
        "attr-row",
        "attr-position",
        "deepvis-start",
        "deepvis-cancel",
        "deepvis-poll",
        "deepvis-image",
        "deepvis-target",
        "deepvis-class",
        "deepvis-verdict",
    } <= ids


def test_verdict_card_shows_the_verdict_and_the_other_models_top_five():
    from dashboard.components.attributions import verdict_card
    from tests.dashboard.trees import texts

    assert verdict_card({"image_url": "x"}) is None and verdict_card({"second_opinion": None}) is None
    top = [{"index": i, "label": f"label{i}", "probability": 0.5 / (i + 1)} for i in range(5)]
    result = {
        "model": "efficientnet_lite0",
        "target": {"class_index": 1},
        "class_label": "goldfish",
        "second_opinion": {
            "model": "efficientnet_lite1",
            "verdict": "robust feature",
            "own_probability": 0.99,
            "other_probability": 0.25,
            "other_rank": 2,
            "other_top": top,
        },
    }
    card = verdict_card(result)
    text = texts(card)
    assert "robust feature" in text and "efficientnet_lite1" in text and "goldfish at 99.0%" in text
    assert "label1: 25.0%" in text and "rank 2" in text
    strong = next(find(card, lambda c: type(c).__name__ == "Strong"))
    assert strong.className == "cl-verdict-robust"


def test_verdict_card_flags_a_fooling_image_the_rendered_model_is_not_sure_of():
    from dashboard.components.attributions import verdict_card
    from tests.dashboard.trees import texts

    second = {
        "model": "efficientnet_lite1",
        "verdict": "fooling image",
        "own_probability": 0.2,
        "own_sure": False,
        "other_probability": 0.001,
        "other_rank": 300,
        "other_top": [{"index": 7, "label": "cock", "probability": 0.4}],
    }
    result = {"model": "efficientnet_lite0", "target": {"class_index": 1}, "second_opinion": second}
    card = verdict_card(result)
    assert "fooling image" in texts(card) and "has not converged" in texts(card)
    strong = next(find(card, lambda c: type(c).__name__ == "Strong"))
    assert strong.className == "cl-verdict-fooling"
    sure = verdict_card({**result, "second_opinion": {**second, "own_probability": 0.99, "own_sure": True}})
    assert "fooling image" in texts(sure) and "has not converged" not in texts(sure)
