"""AuditService: everything checked before the job, the job keyed by request and data content, and a
run that finds the planted defects and stores its reports as the service's artifacts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_digits

from server.audits import AUDIT_TASK, AuditRequest, audit_key, evaluate_gates, top_images
from server.errors import InvalidInputError, NotFoundError
from tests.audit_models import CLEAN_ID, PLAN, PLANTED_ID
from tests.conftest import encode

pytestmark = pytest.mark.usefixtures("planted_audit_models")


@pytest.fixture
def digits300(services):
    """300 scikit-learn digits stored as a dataset of the test's services."""
    d = load_digits()
    files = [(f"{i}.png", encode((d.images[i] / 16 * 255).astype(np.uint8))) for i in range(300)]
    services.datasets.create_from_files("digits300", files, [str(t) for t in d.target[:300]])
    return services


def test_plan_checks_before_the_job_and_keys_it_by_request_and_content(digits300):
    audits = digits300.audits
    req = AuditRequest(CLEAN_ID, "digits300", what_if=True, fail_on="dead>5%")
    plan = audits.plan(req)
    info = digits300.datasets.get("digits300")
    assert (plan.kind, plan.params, plan.cache_key) == (AUDIT_TASK, req.params(), audit_key(req, info))
    assert plan.details == {"model": CLEAN_ID, "dataset": "digits300", "untrained": False}
    assert AuditRequest.from_params(plan.params) == req  # the task rebuilds the same request
    assert audits.plan(AuditRequest(CLEAN_ID, "digits300", max_images=50)).cache_key != plan.cache_key
    with pytest.raises(InvalidInputError, match="dead_share"):
        audits.plan(AuditRequest(CLEAN_ID, "digits300", thresholds={"dead_share": 2.0}))
    with pytest.raises(NotFoundError, match="audit_clean"):
        audits.plan(AuditRequest("audit_clen", "digits300"))
    with pytest.raises(NotFoundError, match="dataset"):
        audits.plan(AuditRequest(CLEAN_ID, "digits30"))


def test_what_if_needs_labelled_data_of_the_models_classes(digits300):
    files = [(f"{i}.png", encode(np.full((8, 8), i * 20, np.uint8))) for i in range(4)]
    digits300.datasets.create_from_files("unlabelled", files)
    with pytest.raises(InvalidInputError, match="unlabelled"):
        digits300.audits.plan(AuditRequest(CLEAN_ID, "unlabelled", what_if=True))
    digits300.datasets.create_from_files("pets", files, ["cat", "dog"] * 2)
    with pytest.raises(InvalidInputError, match="cat"):
        digits300.audits.plan(AuditRequest(CLEAN_ID, "pets", what_if=True))


def test_run_finds_the_planted_defects_and_stores_the_reports(digits300):
    progress: list[float] = []
    req = AuditRequest(PLANTED_ID, "digits300", fail_on="dead>1%")
    report = digits300.audits.run(req, lambda f, _m: progress.append(f))
    assert {(f["layer"], f["filter"]) for f in report["flags"] if f["kind"] == "dead"} == {
        (layer, f) for layer, fs in PLAN.dead.items() for f in fs
    }
    assert report["images"] == 300 and report["dataset"]["id"] == "digits300" and report["untrained"] is False
    assert report["gates"][0]["failed"] is True and report["what_if"] is None
    assert progress[0] == 0.0 and progress == sorted(progress) and progress[-1] == 0.97
    key = audit_key(req, digits300.datasets.get("digits300"))
    assert report["artifacts"]["json"] == digits300.artifacts.url(key, "audit.json")
    stored = json.loads(digits300.artifacts.path(key, "audit.json").read_text())
    assert stored["summary"] == report["summary"]
    assert digits300.artifacts.exists(key, "audit.html")
    for url in report["artifacts"]["correlation"].values():
        assert digits300.artifacts.exists(key, url.rsplit("/", 1)[1])


def test_top_images_are_the_strongest_images_per_filter_by_dataset_index():
    pooled = np.array([[0.1, 5.0], [0.9, 1.0], [0.5, 3.0]])  # 3 images x 2 filters
    assert top_images(pooled, [10, 20, 30], k=2) == [[20, 30], [10, 30]]
    assert top_images(None, [1, 2]) == []


def test_gates_report_value_and_outcome():
    summary = {"counts": {"dead": 3, "redundant": 0}, "percent": {"dead": 2.0, "redundant": 0.0}}
    got = evaluate_gates("dead>5, redundant>=0, dead>1%", summary)
    assert [(g["gate"], g["value"], g["failed"]) for g in got] == [
        ("dead>5", 3, False),
        ("redundant>=0", 0, True),
        ("dead>1%", 2.0, True),
    ]


def test_the_clean_model_is_clean(digits300):
    report = digits300.audits.run(AuditRequest(CLEAN_ID, "digits300", max_images=100))
    assert report["images"] == 100 and report["flags"] == [] and report["summary"]["clean"] is True


@pytest.mark.slow
def test_lite0_audit_of_the_skimage_photos_at_224_px(services, lite0):
    """The audit on the default ImageNet model at full resolution: every conv and linear layer is audited,
    and a rectified layer's active shares and dead flags agree with a brute-force forward."""
    import torch

    from server.engine.hooks import active_hook_count, capture
    from server.engine.imaging import preprocess
    from server.engine.layers import CONV_TYPES, LINEAR_TYPES

    report = services.audits.run(AuditRequest("efficientnet_lite0", "skimage_photos"))
    info = services.datasets.get("skimage_photos")
    weighted = [n for n, m in lite0.model.named_modules() if isinstance(m, CONV_TYPES + LINEAR_TYPES)]
    layers = {la["name"]: la for la in report["layers"]}
    assert sorted(layers) == sorted(set(weighted) - set(report["skipped_layers"]))
    assert len(layers) >= 40 and report["images"] == info.num_images and report["untrained"] is False
    dead = {}
    for f in report["flags"]:
        if f["kind"] == "dead":
            dead.setdefault(f["layer"], set()).add(f["filter"])
    assert report["summary"]["counts"]["dead"] == sum(map(len, dead.values()))
    rectified = [la for la in report["layers"] if la["rectified"]]
    layer = next((la for la in rectified if la["name"] in dead), rectified[0])
    positive, positions = 0, 0
    with lite0.lock, torch.inference_mode():
        for _rec, img in services.datasets.iter_images(info.id):
            x = lite0.to_input(preprocess(img, lite0.prep)[0])
            with capture(lite0.model, [layer["response"]]) as outputs:
                outputs.run(x)
                out = outputs[layer["response"]][0]  # (C, H, W)
            positive = positive + (out > 0).flatten(1).sum(1)
            positions += out[0].numel()
    share = (positive.float() / positions).numpy()
    # the audit's shares are over a seeded sample of positions per image; the brute force counts them all
    np.testing.assert_allclose(layer["active_share"], share, atol=0.05)
    flagged = sorted(dead.get(layer["name"], set()))
    assert np.all(share[flagged] < 0.01), share[flagged]  # flagged dead: (almost) never positive on any photo
    assert active_hook_count(lite0.model) == 0


def test_lite0_at_224_px_gets_sparsity_and_checkerboard_per_layer(services):
    """The real thing: EfficientNet-Lite0 (ImageNet weights) on a few of scikit-image's photos at 224 px."""
    report = services.audits.run(
        AuditRequest("efficientnet_lite0", "skimage_photos", max_images=6, batch_size=6)
    )
    assert report["images"] == 6
    assert services.zoo.load("efficientnet_lite0").card.input_size == (3, 224, 224)
    layers = {la["name"]: la for la in report["layers"]}
    for la in report["layers"]:
        sp = la["sparsity"]
        assert 0.0 <= sp["zero_share"] <= 1.0 and 0.0 <= sp["hoyer"] <= 1.0
        assert len(sp["filters"]["hoyer"]) == la["channels"]
    # ReLU6 after BatchNorm zeroes a real share of the stem's and blocks' responses, never all of it
    relu6 = [la for la in report["layers"] if la["activation"] == "ReLU6"]
    assert relu6 and all(la["sparsity"]["floor"] == "<= 0" for la in relu6)
    assert 0.1 < float(np.median([la["sparsity"]["zero_share"] for la in relu6])) < 0.95
    assert report["sparsity"]["layers"] == list(layers)
    board = report["checkerboard"]
    # Lite0 downsamples with stride-2 3x3 and 5x5 convs (odd kernels): every one is flagged
    strided = {la["layer"]: la for la in board["layers"]}
    assert "conv_stem" in strided and set(board["flagged"]) == set(strided)
    assert all(la["kind"] == "conv" and la["stride"] == [2, 2] for la in strided.values())
    assert board["reference_layer"] is not None and board["reference_layer"] not in strided
    stem = strided["conv_stem"]
    assert stem["images"] == 6 and 0.0 < stem["score"] < 1.0 and stem["ratio"] > 0
    assert layers["conv_stem"]["checkerboard"]["score"] == stem["score"]
    assert len(stem["worst"]) == 3 and all(w["url"].endswith(".png") for w in stem["worst"])
    key = stem["worst"][0]["url"].split("/")[-2]
    assert services.artifacts.exists(key, stem["worst"][0]["url"].split("/")[-1])


def test_report_reads_back_a_stored_report_instead_of_running_again(digits300, monkeypatch):
    req = AuditRequest(CLEAN_ID, "digits300", max_images=60)
    first = digits300.audits.report(req)
    monkeypatch.setattr(digits300.audits, "run", lambda *_a, **_k: pytest.fail("ran the audit again"))
    again = digits300.audits.report(req)
    assert again["summary"] == first["summary"] and again["artifacts"] == first["artifacts"]
