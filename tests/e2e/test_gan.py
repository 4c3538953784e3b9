"""The GAN page in real headless Chromium: the playground, the strip, the training scrubber, the modes."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LOADED = "(sel) => { const i = document.querySelector(sel); return i && i.complete && i.naturalWidth > 0; }"


def test_gan_page_shows_the_game(explore):
    page = explore.page
    explore.open("/gan")
    page.wait_for_selector("#gan-image img", timeout=120_000)
    page.wait_for_function(LOADED, arg="#gan-image img", timeout=60_000)
    first = page.get_attribute("#gan-image img", "src")
    assert "D(real) = " in page.inner_text("#gan-image")
    page.wait_for_selector("#gan-strip img", timeout=60_000)
    assert len(page.query_selector_all("#gan-strip .cl-gan-score")) == 8
    # a latent direction moves the image: another latent, another artifact
    page.fill("#gan-seed", "5")
    page.keyboard.press("Tab")
    page.wait_for_function(
        "(old) => { const i = document.querySelector('#gan-image img'); return i && i.getAttribute('src') !== old; }",
        arg=first,
        timeout=60_000,
    )
    # the scrubber: loss and D curves, the sample grid of the last snapshot
    page.wait_for_selector("#gan-scores .js-plotly-plot .scatterlayer", timeout=60_000)
    page.wait_for_function(LOADED, arg="#gan-samples img", timeout=60_000)
    assert "D(fake)" in page.inner_text("#gan-snapshot-caption")
    page.wait_for_selector("#gan-modes .js-plotly-plot .barlayer", timeout=120_000)
    assert "classes generated" in page.inner_text("#gan-modes-warning") or "Mode collapse" in page.inner_text(
        "#gan-modes-warning"
    )
    assert page.get_attribute("#gan-link-discriminator", "href") == "/?model=dcgan_digits_discriminator"
    explore.screenshot("gan-page")
    explore.assert_clean()


def test_explore_opens_the_discriminator_and_the_generator(explore):
    page = explore.page
    explore.open("/?model=dcgan_digits_discriminator&image=sample:digit3&layer=features.2")
    page.wait_for_selector("#model-weights-badge")
    page.wait_for_selector(".cl-layer-browser")
    assert page.wait_for_selector("#top1-label").inner_text() in ("real", "fake")
    page.wait_for_selector("#filter-grid-tiles[data-layer='features.2']", timeout=60_000)
    assert page.locator("#filter-grid-tiles .cl-tile").count() == 64
    explore.screenshot("gan-explore-discriminator")
    explore.assert_clean()
    explore.open("/?model=dcgan_digits_generator")
    page.wait_for_selector("#model-weights-badge")
    page.wait_for_selector(".cl-layer-browser")
    assert "net.6" in page.inner_text(".cl-layer-browser")
    # a generator's input is the latent of a seed: the seed box replaces the images, the grid fills from it
    page.wait_for_selector("#latent-seed", state="visible", timeout=60_000)
    assert not page.is_visible("#image-upload")
    page.wait_for_selector("#filter-grid-tiles[data-layer='net.3'] .cl-tile", timeout=60_000)
    assert page.wait_for_selector("#top1-label").inner_text() in ("real", "fake")
    page.wait_for_function(LOADED, arg="#input-preview", timeout=60_000)
    assert "seed 0" in page.inner_text("#input-caption")
    first = page.get_attribute("#input-preview", "src")
    page.click("#latent-next")
    page.wait_for_function(
        "(old) => document.querySelector('#input-preview').getAttribute('src') !== old",
        arg=first,
        timeout=60_000,
    )
    page.wait_for_function("() => location.search.includes('image=latent:1')", timeout=30_000)
    assert "seed 1" in page.inner_text("#input-caption")
    explore.screenshot("gan-explore-generator-seed")
    page.fill("#latent-seed", "-3")
    page.keyboard.press("Tab")
    page.wait_for_selector("#latent-status .cl-error, #latent-status [role=alert]", timeout=30_000)
    assert "whole number" in page.inner_text("#latent-status")
    page.locator("#filter-grid-tiles .cl-tile").first.click()
    page.wait_for_selector("#filter-detail:not([hidden])", timeout=30_000)
    explore.screenshot("gan-explore-generator")
