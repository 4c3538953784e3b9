"""The audit page is registered and its layout has every panel."""

from __future__ import annotations


def test_audit_page_is_registered_and_its_layout_has_every_panel():
    import dash

    from dashboard.app import create_app

    create_app()
    page = next(p for p in dash.page_registry.values() if p["path"] == "/audit")
    tree = str(page["layout"](model="digits_cnn"))
    for panel_id in (
        "panel-audit-controls",
        "panel-audit-summary",
        "panel-audit-heatmap",
        "panel-audit-detail",
        "panel-audit-flags",
        "panel-audit-checkpoints",
    ):
        assert panel_id in tree
