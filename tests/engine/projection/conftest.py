"""Fixtures of the projection tests."""

from __future__ import annotations

import pytest

from server.engine.projection import tsne


@pytest.fixture
def tsne_builds(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts of neighbour graphs (``graph``) and affinity matrices (``P``) t-SNE builds during a test."""
    builds = {"graph": 0, "P": 0}
    real_build, real_compute = tsne.build_neighbor_graph, tsne.GraphAffinities._compute

    def counting_build(*a, **kw):
        builds["graph"] += 1
        return real_build(*a, **kw)

    def counting_compute(self, perplexity):
        builds["P"] += 1
        return real_compute(self, perplexity)

    monkeypatch.setattr(tsne, "build_neighbor_graph", counting_build)
    monkeypatch.setattr(tsne.GraphAffinities, "_compute", counting_compute)
    return builds
