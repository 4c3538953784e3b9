"""DeepVisService: targets and knobs checked before the job, renders keyed by their content, frames
through the sink (which can stop the render)."""

from __future__ import annotations

import pytest

from server.deepvis import DEEPVIS_TASK
from server.errors import InvalidInputError
from server.jobs import JobCancelled


def test_plan_validates_the_target_and_keys_the_render_by_every_knob(services):
    plan = services.deepvis.plan("digits_cnn", False, {"class_index": 3}, "deepvis", {"steps": 4, "seed": 1})
    assert plan.kind == DEEPVIS_TASK
    assert plan.params == {
        "model": "digits_cnn",
        "untrained": False,
        "target": {"class_index": 3},
        "preset": "deepvis",
        "knobs": {"steps": 4, "seed": 1},
    }
    assert plan.details["model"] == "digits_cnn" and plan.details["config"]["steps"] == 4
    same = services.deepvis.plan("digits_cnn", False, {"class_index": 3}, "deepvis", {"steps": 4, "seed": 1})
    other = services.deepvis.plan("digits_cnn", False, {"class_index": 3}, "deepvis", {"steps": 4, "seed": 2})
    assert same.cache_key == plan.cache_key != other.cache_key
    untrained = services.deepvis.plan(
        "digits_cnn", True, {"class_index": 3}, "deepvis", {"steps": 4, "seed": 1}
    )
    assert untrained.cache_key != plan.cache_key
    with pytest.raises(InvalidInputError, match="Channel 64 is out of range"):
        services.deepvis.plan("digits_cnn", False, {"layer": "features.3", "channel": 64}, "deepvis", {})


def test_render_streams_frames_through_the_sink_and_stores_the_images(services):
    seen = []
    knobs = {"steps": 6, "seed": 0, "frame_every": 3}
    plan = services.deepvis.plan("digits_cnn", False, {"layer": "features.3", "channel": 2}, "deepvis", knobs)
    out = services.deepvis.render(plan.params, lambda p, m, frame: seen.append((p, frame)))
    assert [p for p, _ in seen] == pytest.approx([i / 6 for i in range(1, 7)])
    frames = [f for _, f in seen if f is not None]
    assert [f["step"] for f in frames] == [3, 6]
    for url in (frames[-1]["image_url"], out["image_url"], out["npy_url"]):
        key, name = url.rsplit("/", 2)[1:]
        assert services.artifacts.exists(key, name)
    assert len(out["values"]) == 6 and "class_probability" not in out


def test_a_sink_that_raises_stops_the_render(services):
    def stop_at_two(progress, _message, _frame):
        if progress >= 2 / 1000:
            raise JobCancelled("stop")

    with pytest.raises(JobCancelled):
        services.deepvis.render(
            {"model": "digits_cnn", "target": {"class_index": 1}, "knobs": {"steps": 1000}}, stop_at_two
        )


def test_second_opinion_model_by_setting(zoo, digits_model):
    from server.deepvis import second_opinion_id

    lite0 = zoo.load("efficientnet_lite0")
    assert (
        second_opinion_id(zoo, "auto", lite0) == "efficientnet_lite1"
    )  # a Lite model other than the rendered
    assert second_opinion_id(zoo, "auto", zoo.load("efficientnet_lite1")) == "efficientnet_lite0"
    assert second_opinion_id(zoo, "efficientnet_lite2", lite0) == "efficientnet_lite2"
    assert second_opinion_id(zoo, "none", lite0) is None
    assert second_opinion_id(zoo, "no_such_model", lite0) is None
    assert second_opinion_id(zoo, "digits_cnn", lite0) is None  # other classes: no opinion
    assert second_opinion_id(zoo, "auto", digits_model) is None  # no other digits model


def test_class_render_of_digits_has_no_second_opinion(services):
    out = services.deepvis.render(
        {"model": "digits_cnn", "target": {"class_index": 2}, "knobs": {"steps": 3}}
    )
    assert out["second_opinion"] is None and out["verdict"] is None and 0 <= out["class_probability"] <= 1
