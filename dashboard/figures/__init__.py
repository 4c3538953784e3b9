"""Pure functions from API data to ``plotly.graph_objects.Figure``; no Dash, no HTTP (unit tests call them)."""

from dashboard.figures.predictions import predictions_figure
from dashboard.figures.projection import projection_figure
from dashboard.figures.weights import filter_weights_figure, message_figure

__all__ = ["filter_weights_figure", "message_figure", "predictions_figure", "projection_figure"]
