"""A filter's weights as a figure, checked on hand-made payloads with known answers."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from dashboard.figures import filter_weights_figure, message_figure
from dashboard.figures.weights import WRAP


def test_first_conv_weights_are_an_rgb_picture():
    rgb = np.arange(3 * 3 * 3, dtype=np.uint8).reshape(3, 3, 3).tolist()
    fig = filter_weights_figure({"layer": "conv1", "index": 2, "values": [], "rgb": rgb})
    assert isinstance(fig.data[0], go.Image)
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), np.asarray(rgb))
    assert "RGB" in fig.layout.title.text


def test_conv_weights_are_a_heat_map_over_input_channels_symmetric_around_zero():
    values = np.zeros((4, 2, 2))
    values[1, 0, 1] = -3.0  # input channel 1, kernel position (0,1)
    values[3, 1, 0] = 1.5
    fig = filter_weights_figure({"layer": "features.3", "index": 0, "values": values.tolist()})
    hm = fig.data[0]
    assert isinstance(hm, go.Heatmap)
    z = np.asarray(hm.z)
    assert z.shape == (4, 4)  # rows: kh*kw positions, columns: input channels
    assert z[1, 1] == -3.0 and z[2, 3] == 1.5
    assert list(hm.y) == ["(0,0)", "(0,1)", "(1,0)", "(1,1)"]
    assert (hm.zmin, hm.zmax) == (-3.0, 3.0)


def test_depthwise_kernel_is_drawn_as_the_kernel():
    kernel = [[[1.0, -2.0, 0.5], [0.0, 4.0, 0.0], [0.0, 0.0, -1.0]]]
    hm = filter_weights_figure({"layer": "dw", "index": 5, "values": kernel}).data[0]
    np.testing.assert_array_equal(np.asarray(hm.z), np.asarray(kernel[0]))
    assert (hm.zmin, hm.zmax) == (-4.0, 4.0)


def test_pointwise_kernel_with_many_inputs_wraps_into_rows_and_keeps_channel_numbers():
    n = WRAP * 2 + 5
    values = np.linspace(-1, 1, n).reshape(n, 1, 1)
    hm = filter_weights_figure({"layer": "pw", "index": 0, "values": values.tolist()}).data[0]
    z = np.asarray(hm.z, dtype=float)
    assert z.shape == (3, WRAP)
    assert z[2, 4] == pytest.approx(values[WRAP * 2 + 4, 0, 0])
    assert np.isnan(z[2, 5:]).all()  # padding past the last channel stays empty
    assert np.asarray(hm.customdata)[1, 3] == WRAP + 3


def test_linear_weights_are_one_row():
    hm = filter_weights_figure({"layer": "fc", "index": 1, "values": [0.5, -0.25, 0.0]}).data[0]
    assert np.asarray(hm.z).shape == (1, 3)


def test_unexpected_shapes_and_messages_give_an_annotated_empty_figure():
    fig = filter_weights_figure({"layer": "x", "index": 0, "values": np.zeros((2, 2, 2, 2)).tolist()})
    assert fig.data == () and "Cannot draw" in fig.layout.annotations[0].text
    assert message_figure("Pick an image").layout.annotations[0].text == "Pick an image"


def test_a_given_bound_fixes_the_colour_scale_so_two_figures_of_one_filter_compare():
    payload = {"layer": "features.2", "index": 0, "values": np.full((2, 3, 3), 0.1).tolist()}
    own = filter_weights_figure(payload).data[0]
    shared = filter_weights_figure(payload, bound=0.5).data[0]
    assert (own.zmin, own.zmax) == pytest.approx((-0.1, 0.1))
    assert (shared.zmin, shared.zmax) == (-0.5, 0.5)
