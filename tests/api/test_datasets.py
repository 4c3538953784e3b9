"""Dataset API: list with counts, upload zip or images, thumbnails, refused archives, delete with caches."""

from __future__ import annotations

import io
import zipfile

from PIL import Image

from tests.datasets.test_archive import zip_with_symlink
from tests.datasets.test_store import png, zip_bytes


def test_list_shows_builtins_with_class_balance(client) -> None:
    r = client.get("/api/v1/datasets")
    assert r.status_code == 200
    by_id = {d["id"]: d for d in r.json()}
    assert by_id["digits"]["num_images"] == 1797 and by_id["digits"]["num_classes"] == 10
    assert by_id["lfw_subset"]["class_counts"] == {"face": 100, "non-face": 100}
    assert by_id["skimage_photos"]["builtin"] is True


def test_upload_zip_then_browse_thumbnails_and_images(client) -> None:
    data = zip_bytes(
        {"shapes/round/a.png": png(30), "shapes/round/b.png": png(60), "shapes/square/c.png": png(90)}
    )
    r = client.post(
        "/api/v1/datasets",
        data={"name": "shapes"},
        files={"archive": ("shapes.zip", data, "application/zip")},
    )
    assert r.status_code == 201, r.text
    assert r.json()["class_counts"] == {"round": 2, "square": 1}
    detail = client.get("/api/v1/datasets/shapes").json()
    assert [i["label"] for i in detail["images"]] == ["round", "round", "square"]
    thumb = client.get(detail["images"][2]["thumbnail_url"])
    assert thumb.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(thumb.content)).size == (60, 60)  # 12 px enlarged 5x, crisp
    original = client.get(detail["images"][0]["image_url"])
    assert original.content == png(30)
    assert client.get("/api/v1/datasets/shapes/thumbnails/3").status_code == 404


def test_upload_many_images_with_labels(client) -> None:
    files = [("images", (f"{i}.png", png(i * 40), "image/png")) for i in range(3)]
    r = client.post("/api/v1/datasets", data={"name": "loose", "labels": ["a", "b", "a"]}, files=files)
    assert r.status_code == 201, r.text
    assert r.json()["class_counts"] == {"a": 2, "b": 1}
    r = client.post("/api/v1/datasets", data={"name": "loose"}, files=files)
    assert r.status_code == 409 and "already exists" in r.json()["detail"]


def test_unsafe_archives_are_refused_and_nothing_is_written(client, settings) -> None:
    before = sorted(p.name for p in settings.data_dir.rglob("*"))
    for name, data in {
        "dots": zip_bytes({"c/ok.png": png(1), "../../escape.png": png(2)}),
        "abs": zip_bytes({"c/ok.png": png(1), "/tmp/escape.png": png(2)}),
        "link": zip_with_symlink("/etc/passwd"),
    }.items():
        r = client.post(
            "/api/v1/datasets", data={"name": name}, files={"archive": ("x.zip", data, "application/zip")}
        )
        assert r.status_code == 422, r.text
        assert "refused" in r.json()["detail"]
    assert sorted(p.name for p in settings.data_dir.rglob("*")) == before
    assert not (settings.data_dir.parent / "escape.png").exists()
    names = {d["id"] for d in client.get("/api/v1/datasets").json()}
    assert not names & {"dots", "abs", "link"}


def test_an_archive_bomb_gets_413(client) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("c/a.png", png(1))
        zf.writestr("c/bomb.png", b"\0" * (50 * 1024 * 1024))
    r = client.post(
        "/api/v1/datasets",
        data={"name": "bomb"},
        files={"archive": ("b.zip", buf.getvalue(), "application/zip")},
    )
    assert r.status_code == 413 and "bomb" in r.json()["detail"]


def test_bad_uploads_get_clear_statuses(client) -> None:
    r = client.post("/api/v1/datasets", data={"name": "none"})
    assert r.status_code == 422 and "archive" in r.json()["detail"]
    r = client.post(
        "/api/v1/datasets", data={"name": "nz"}, files={"archive": ("x.zip", b"not a zip", "application/zip")}
    )
    assert r.status_code == 415
    r = client.post(
        "/api/v1/datasets", data={"name": "txt"}, files=[("images", ("a.txt", b"hello", "text/plain"))]
    )
    assert r.status_code == 415 and "a.txt" in r.json()["detail"]
    assert client.get("/api/v1/datasets/nope").status_code == 404
    assert client.delete("/api/v1/datasets/digits").status_code == 409


def test_delete_removes_the_dataset_and_its_cache(client, settings) -> None:
    files = [("images", (f"{i}.png", png(i * 20, size=8), "image/png")) for i in range(6)]
    assert client.post("/api/v1/datasets", data={"name": "temp"}, files=files).status_code == 201
    cache = settings.cache_dir / "datasets" / "temp" / "features"
    cache.mkdir(parents=True)
    (cache / "f.npz").write_bytes(b"x")
    r = client.delete("/api/v1/datasets/temp")
    assert r.status_code == 200 and r.json() == {"deleted": "temp"}
    assert not (settings.cache_dir / "datasets" / "temp").exists()
    assert not (settings.datasets_dir / "temp").exists()
    assert client.get("/api/v1/datasets/temp").status_code == 404


def test_delete_uncounts_the_datasets_caches_from_the_disk_budget(client, settings) -> None:
    files = [("images", (f"{i}.png", png(i * 20, size=8), "image/png")) for i in range(6)]
    assert client.post("/api/v1/datasets", data={"name": "counted"}, files=files).status_code == 201
    budget = client.app.state.services.artifacts.budget
    before = budget.used_bytes()
    budget.write(settings.cache_dir / "datasets" / "counted" / "features" / "f.npz", b"x" * 4000)
    assert budget.used_bytes() == before + 4000
    assert client.delete("/api/v1/datasets/counted").status_code == 200
    assert budget.used_bytes() == before  # issue 12: the count followed the deleted files
