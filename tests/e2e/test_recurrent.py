"""The recurrent page in real headless Chromium: a digit step by step, gradient flow, gates, hidden states."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HEAT = "#rec-states .heatmaplayer image"
# the hidden state's heat map (the second row, under the input pixels), as plotly drew it
HIDDEN = f"""() => {{ const i = document.querySelectorAll('{HEAT}')[1]; return i ? i.getAttribute('href') || i.getAttribute('xlink:href') : null; }}"""
CHANGED = f"(old) => {{ const now = ({HIDDEN})(); return now !== null && now !== old; }}"


def _hidden(page) -> str:
    return page.evaluate(HIDDEN)


def test_recurrent_page_shows_states_gradients_gates_and_hidden_states(explore):
    page = explore.page
    explore.open("/recurrent?digit=3")
    # the models with their held-out accuracy, the LSTM picked
    page.wait_for_selector("#rec-accuracy-table", timeout=60_000)
    assert page.is_checked("#rec-model input[value='seq_lstm']")
    assert "points over the plain RNN" in page.inner_text("#rec-gap")
    assert "%" in page.inner_text("#rec-model")
    # the digit, its states (input, hidden, 4 gates, cell state) and the prediction forming
    page.wait_for_selector("#rec-digit-img", timeout=60_000)
    page.wait_for_function(
        "() => { const i = document.querySelector('#rec-digit-img'); return i && i.complete && i.naturalWidth > 0; }"
    )
    page.wait_for_selector(HEAT, timeout=60_000)
    assert page.locator(HEAT).count() == 7
    assert "reading digit #3" in page.text_content("#rec-states .gtitle")
    page.wait_for_selector("#rec-prediction .heatmaplayer image", timeout=60_000)
    assert "true class 3" in page.inner_text("#rec-caption")
    # gradient flow of the three models, the exploding RNN with and without clipping
    page.wait_for_function(
        "() => document.querySelectorAll('#rec-flow .scatterlayer .trace').length === 3", timeout=120_000
    )
    assert "seq_rnn (first/last" in page.text_content("#rec-flow .legend")
    page.wait_for_function(
        "() => document.querySelectorAll('#rec-exploding .scatterlayer .trace').length === 3", timeout=120_000
    )
    assert "no clipping" in page.text_content("#rec-exploding .legend")
    # gate saturation and the forget-gate histogram, the hidden states projected
    page.wait_for_selector("#rec-saturation .scatterlayer .trace", timeout=120_000)
    page.wait_for_selector("#rec-forget .barlayer .point", timeout=120_000)
    assert "Does the forget gate only use 1 or 0?" in page.inner_text("#rec-gates-note")
    page.wait_for_selector("#rec-projection .scatterlayer .trace", timeout=120_000)
    assert "PCA" in page.text_content("#rec-projection .gtitle")
    explore.screenshot("recurrent-page")
    page.locator("#rec-flow").scroll_into_view_if_needed()
    explore.screenshot("recurrent-gradient-flow")
    page.locator("#rec-projection").scroll_into_view_if_needed()
    explore.screenshot("recurrent-gates-projection")

    # another digit: another heat map
    before = _hidden(page)
    page.fill("#rec-digit", "7")
    page.keyboard.press("Tab")
    page.wait_for_function(CHANGED, arg=before, timeout=60_000)
    page.wait_for_function("() => document.querySelector('#rec-states .gtitle').textContent.includes('#7')")
    assert "true class 7" in page.inner_text("#rec-caption")
    # another model: the GRU has 3 gates and no cell state; the links follow the model
    before = _hidden(page)
    page.click("#rec-model label:has-text('seq_gru')")
    page.wait_for_function(CHANGED, arg=before, timeout=60_000)
    page.wait_for_function(f"() => document.querySelectorAll('{HEAT}').length === 5", timeout=60_000)
    assert page.get_attribute("#rec-link-explore", "href") == "/?model=seq_gru"
    page.wait_for_function(
        "() => document.querySelector('#rec-forget .gtitle').textContent.includes('update gate')",
        timeout=120_000,
    )
    # the plain RNN: no gates, said in words
    page.click("#rec-model label:has-text('seq_rnn')")
    page.wait_for_selector("#rec-gates-info .cl-notice", timeout=60_000)
    assert "it has no gates" in page.inner_text("#rec-gates-info")
    page.wait_for_function(f"() => document.querySelectorAll('{HEAT}').length === 2", timeout=60_000)

    # a digit index out of range: the API's message in the page, the last heat map gone
    page.fill("#rec-digit", "5000")
    page.keyboard.press("Tab")
    page.wait_for_selector("#rec-sequence-error [role=alert]", timeout=60_000)
    assert "out of range" in page.inner_text("#rec-sequence-error")
    assert page.locator(HEAT).count() == 0
    # a clip norm that is not positive
    page.fill("#rec-clip", "-1")
    page.keyboard.press("Tab")
    page.wait_for_selector("#rec-exploding-error [role=alert]", timeout=60_000)
    assert "positive number" in page.inner_text("#rec-exploding-error")
    # back to a valid digit: the message goes
    page.fill("#rec-digit", "0")
    page.keyboard.press("Tab")
    page.wait_for_selector(HEAT, timeout=60_000)
    assert page.locator("#rec-sequence-error [role=alert]").count() == 0
    explore.assert_clean()
