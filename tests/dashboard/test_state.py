"""The explore page's view state, as the URL carries it."""

from __future__ import annotations

from dashboard.state import ExploreState


def test_state_round_trips_through_the_query_string():
    state = ExploreState(
        model="digits_cnn", image="sample:digit3", layer="features.3", filter=7, untrained=True
    )
    query = state.query()
    assert query == "?model=digits_cnn&image=sample:digit3&layer=features.3&filter=7&untrained=1"
    from urllib.parse import parse_qsl

    assert ExploreState.from_query(dict(parse_qsl(query[1:]))) == state


def test_state_from_a_bad_link_is_lenient():
    state = ExploreState.from_query({"model": " ", "filter": "-3", "untrained": "no", "layer": "x"})
    assert state == ExploreState(layer="x")
    assert ExploreState().query() == ""
