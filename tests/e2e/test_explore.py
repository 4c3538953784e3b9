"""The explore page in real headless Chromium against real API and dashboard processes."""

from __future__ import annotations

import re

import httpx
import pytest

from dashboard.images import sample_png

pytestmark = pytest.mark.e2e

CAT_CLASSES = {"tiger cat", "tabby", "Egyptian cat"}
UPLOAD_INPUT = "#image-upload input[type=file]"


def wait_ready(live) -> None:
    """The page is up once a model card is shown (models listed, card and layers loaded)."""
    live.page.wait_for_selector("#model-weights-badge")
    live.page.wait_for_selector(".cl-layer-browser")


def upload(live, name: str, data: bytes, mime: str = "image/png") -> None:
    live.page.set_input_files(UPLOAD_INPUT, files=[{"name": name, "mimeType": mime, "buffer": data}])


def layer_channels(api_url: str, model: str, layer: str) -> int:
    layers = httpx.get(f"{api_url}/api/v1/models/{model}/layers", timeout=60).json()["layers"]
    return next(x["output_shape"][0] for x in layers if x["name"] == layer)


def test_upload_a_real_photo_and_the_right_top1_appears(explore, chelsea_jpeg):
    explore.open()
    wait_ready(explore)
    upload(explore, "chelsea.jpg", chelsea_jpeg, "image/jpeg")
    label = explore.page.wait_for_selector("#top1-label")
    assert label.inner_text() in CAT_CLASSES
    explore.page.wait_for_selector("#filter-grid-tiles .cl-tile")
    explore.page.wait_for_function("location.search.includes('image=upload:')")
    explore.screenshot("explore-upload")
    explore.assert_clean()


def test_pick_a_layer_and_the_grid_shows_every_channel(explore):
    explore.open("/?model=efficientnet_lite0&image=sample:coffee")
    wait_ready(explore)
    assert explore.page.wait_for_selector("#top1-label").inner_text() == "espresso"
    layer = "blocks.1.0.bn2.act"  # a ReLU6 whose silent filters the grid must mark
    explore.page.click("summary:has-text('blocks.1')")
    explore.page.click(f"[data-layer='{layer}']")
    grid = explore.page.wait_for_selector(f"#filter-grid-tiles[data-layer='{layer}']")
    expected = layer_channels(explore.api_url, "efficientnet_lite0", layer)
    assert expected == 96
    assert explore.page.locator("#filter-grid-tiles .cl-tile").count() == expected
    assert grid.get_attribute("data-count") == str(expected)
    explore.page.wait_for_function(f"location.search.includes('layer={layer}')")
    # silent filters are the API's, marked in the grid
    acts = httpx.post(
        f"{explore.api_url}/api/v1/models/efficientnet_lite0/activations",
        files={"image": ("coffee.png", sample_png("coffee"))},
        data={"layer": layer},
        timeout=60,
    ).json()
    assert acts["silent_channels"], "this layer should have silent filters on this photo"
    marked = explore.page.eval_on_selector_all(
        "#filter-grid-tiles .cl-tile.is-silent", "els => els.map(e => Number(e.dataset.index))"
    )
    assert sorted(marked) == sorted(acts["silent_channels"])
    # sorting by max activation reorders the same tiles: strongest first, silent ones last
    explore.page.click("#grid-sort >> text=max activation")
    explore.page.wait_for_function(
        "document.querySelector('#filter-grid-tiles .cl-tile').dataset.index !== '0'"
    )
    order = explore.page.eval_on_selector_all(
        "#filter-grid-tiles .cl-tile", "els => els.map(e => Number(e.dataset.index))"
    )
    by_max = sorted(acts["channels"], key=lambda c: (-c["max"], c["index"]))
    assert order == [c["index"] for c in by_max]
    explore.screenshot("explore-grid-sorted")
    explore.assert_clean()


def test_click_a_tile_and_the_detail_view_opens_and_arrow_keys_step(explore):
    explore.open("/?model=efficientnet_lite0&image=sample:chelsea&layer=conv_stem")
    wait_ready(explore)
    explore.page.wait_for_selector("#filter-grid-tiles[data-layer='conv_stem']")
    assert explore.page.locator("#filter-grid-tiles .cl-tile").count() == 32
    explore.page.click("#filter-grid-tiles .cl-tile[data-index='7']")
    explore.page.wait_for_selector("#filter-detail:not([hidden])")
    assert explore.page.inner_text("#detail-index") == "7"
    # the enlarged map really loaded, over the input image
    explore.page.wait_for_function(
        "['detail-map', 'detail-input'].every(id => document.getElementById(id).naturalWidth > 0)"
    )
    assert explore.page.locator("#detail-stats").inner_text().startswith("Filter")
    explore.page.wait_for_selector("#detail-weights-graph .main-svg")  # RGB weights of the first conv
    explore.page.keyboard.press("ArrowRight")
    explore.page.wait_for_function("document.getElementById('detail-index').innerText === '8'")
    explore.page.wait_for_function("location.search.endsWith('filter=8')")  # the URL follows the view
    href = explore.page.get_attribute("#detail-neuron-link", "href")
    assert href == "/neuron/efficientnet_lite0/conv_stem/8"
    explore.screenshot("explore-filter-detail")
    explore.page.keyboard.press("ArrowLeft")
    explore.page.keyboard.press("ArrowLeft")
    explore.page.wait_for_function("document.getElementById('detail-index').innerText === '6'")
    # the opacity slider fades the map over the input image
    explore.page.fill("#detail-opacity input[type=number]", "0.2")
    explore.page.keyboard.press("Tab")
    explore.page.wait_for_function(
        "getComputedStyle(document.getElementById('detail-map')).opacity === '0.2'"
    )
    explore.page.keyboard.press("Escape")
    explore.page.wait_for_selector("#filter-detail", state="hidden")
    explore.page.wait_for_function("!location.search.includes('filter=')")
    explore.assert_clean()


def test_reload_the_copied_url_and_the_same_view_comes_back(explore, browser):
    explore.open("/?image=sample:coffee")
    wait_ready(explore)
    explore.page.click("summary:has-text('blocks.2')")
    explore.page.click("[data-layer='blocks.2']")
    explore.page.wait_for_selector("#filter-grid-tiles[data-layer='blocks.2']")
    explore.page.click("#filter-grid-tiles .cl-tile[data-index='11']")
    explore.page.wait_for_selector("#filter-detail:not([hidden])")
    explore.page.wait_for_function("location.search.includes('filter=11')")
    copied = explore.page.url
    assert re.search(r"model=efficientnet_lite0&image=sample:coffee&layer=blocks\.2&filter=11", copied)
    top1 = explore.page.inner_text("#top1-label")

    other = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    explore.console.attach(other)
    try:
        other.goto(copied)
        other.wait_for_selector("#filter-detail:not([hidden])")
        assert other.inner_text("#detail-index") == "11"
        assert other.inner_text("#top1-label") == top1
        assert other.get_attribute("#filter-grid-tiles", "data-layer") == "blocks.2"
        assert other.locator("[data-layer='blocks.2'].is-selected").count() == 1
        assert other.url == copied
    finally:
        other.context.close()
    explore.assert_clean()


def test_a_text_file_named_png_gives_a_readable_error(explore):
    explore.open("/?image=sample:chelsea")
    wait_ready(explore)
    explore.page.wait_for_selector("#filter-grid-tiles .cl-tile")
    upload(explore, "notes.png", b"These are my notes, not a picture.\n")
    alert = explore.page.wait_for_selector("#upload-status [role=alert]")
    text = alert.inner_text()
    assert "notes.png" in text and "not a recognised image" in text
    # the page is still usable: the previous image's view stays
    assert explore.page.inner_text("#top1-label") in CAT_CLASSES
    assert explore.page.locator("#filter-grid-tiles .cl-tile").count() > 0
    explore.screenshot("explore-upload-error")
    # dropping the same file again is answered again, not silently ignored
    with explore.page.expect_response(
        lambda r: "_dash-update-component" in r.url and "upload-status" in (r.request.post_data or "")
    ) as answer:
        upload(explore, "notes.png", b"These are my notes, not a picture.\n")
    assert "not a recognised image" in answer.value.text()
    explore.assert_clean()


def test_untrained_weights_carry_a_clear_badge(explore):
    explore.open("/?model=squeezenet1_1&untrained=1&image=sample:rocket")
    badge = explore.page.wait_for_selector("#model-weights-badge")
    assert "UNTRAINED" in badge.inner_text()
    explore.page.wait_for_selector("#filter-grid-tiles .cl-tile")
    assert "meaningless" in explore.page.inner_text("#predictions-graph")
    explore.screenshot("explore-untrained")
    explore.assert_clean()


def test_an_unreachable_api_gives_a_readable_message_not_a_blank_page(browser, e2e_dir):
    """A dashboard whose API is down still renders, and says what is wrong."""
    from tests.e2e.browser import VIEWPORT, ConsoleLog
    from tests.processes import free_port, server_process

    port, dead = free_port(), free_port()
    env = {
        "CONVLENS_API_URL": f"http://127.0.0.1:{dead}",
        "CONVLENS_DASHBOARD_PORT": str(port),
        "CONVLENS_DATA_DIR": str(e2e_dir / "data-no-api"),
    }
    url = f"http://127.0.0.1:{port}"
    with server_process("dashboard", env, f"{url}/", e2e_dir / "logs" / f"dashboard-no-api-{port}.log"):
        page = browser.new_context(viewport=VIEWPORT).new_page()
        console = ConsoleLog()
        console.attach(page)
        try:
            page.goto(f"{url}/?image=sample:chelsea")
            alert = page.wait_for_selector("#model-error [role=alert]", timeout=30_000)
            assert "Cannot reach the ConvLens API" in alert.inner_text()
            assert page.locator(".cl-topbar").is_visible() and page.locator("#panel-image").is_visible()
        finally:
            page.context.close()
    assert console.errors == []
