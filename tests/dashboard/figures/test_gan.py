"""The GAN page's pure figures."""

from dashboard.figures.gan import loss_curves, mode_histogram, score_curves

SNAPS = [
    {"step": 25, "g_loss": 1.2, "d_loss": 0.9, "d_real": 0.7, "d_fake": 0.3},
    {"step": 100, "g_loss": 2.5, "d_loss": 0.25, "d_real": 0.87, "d_fake": 0.1},
    {"step": 1500, "g_loss": 0.96, "d_loss": 1.16, "d_real": 0.64, "d_fake": 0.49},
]


def test_loss_and_score_curves_carry_every_snapshot_and_mark_the_selected_one():
    losses = loss_curves(SNAPS, selected=1)
    assert [t.name for t in losses.data] == ["G loss", "D loss"]
    assert list(losses.data[0].x) == [25, 100, 1500] and list(losses.data[1].y) == [0.9, 0.25, 1.16]
    assert any(s.x0 == 100 for s in losses.layout.shapes)  # the scrubber's position
    scores = score_curves(SNAPS, selected=2)
    assert [t.name for t in scores.data] == ["D(real)", "D(fake)"]
    assert list(scores.data[1].y) == [0.3, 0.1, 0.49]
    assert any(s.y0 == 0.5 for s in scores.layout.shapes)  # "has to guess"
    assert tuple(scores.layout.yaxis.range) == (0, 1)


def test_mode_histogram_marks_missing_classes():
    fig = mode_histogram(
        {
            "labels": ["0", "1", "2"],
            "histogram": [600, 400, 0],
            "missing": [2],
            "classifier": "digits_cnn",
            "n": 1000,
            "mean_confidence": 0.9,
        }
    )
    bar = fig.data[0]
    assert list(bar.y) == [600, 400, 0]
    assert bar.marker.color[2] != bar.marker.color[0]
    assert "1000" in fig.layout.title.text and "0.90" in fig.layout.title.text
