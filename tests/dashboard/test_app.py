"""The dashboard's own routes: the top-level static/ as Dash's assets, sample thumbnails, the pages."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from dashboard.app import create_app
from dashboard.settings import DashboardSettings, get_settings


@pytest.fixture(scope="module")
def http():
    get_settings.cache_clear()
    app = create_app()
    return app.server.test_client()


def test_static_is_the_assets_folder_and_its_stylesheets_load_with_every_page(http):
    settings = get_settings()
    page = http.get("/").get_data(as_text=True)
    for css in sorted(settings.static_dir.glob("*.css")):
        assert f"/assets/{css.name}" in page
        served = http.get(f"/assets/{css.name}")
        assert served.status_code == 200 and served.get_data() == css.read_bytes()
    assert "/assets/explore.js" in page and http.get("/assets/explore.js").status_code == 200


def test_sample_thumbnails_are_served_from_the_bundled_samples(http):
    cat = http.get("/samples/chelsea.png?thumb=1")
    assert cat.status_code == 200 and cat.mimetype == "image/png"
    assert max(Image.open(io.BytesIO(cat.get_data())).size) == 96
    digit = Image.open(io.BytesIO(http.get("/samples/digit3.png").get_data()))
    assert digit.size == (96, 96)  # 8x8 scaled up crisply
    assert http.get("/samples/nothing.png").status_code == 404


def test_a_static_dir_from_the_settings_is_served(tmp_path):
    (tmp_path / "site.css").write_text(".cl-x { color: red; }")
    app = create_app(DashboardSettings(static_dir=tmp_path))
    client = app.server.test_client()
    assert "/assets/site.css" in client.get("/").get_data(as_text=True)
    assert client.get("/assets/site.css").get_data(as_text=True) == ".cl-x { color: red; }"
