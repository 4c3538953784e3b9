"""ConvLens dashboard: a Dash app that talks to the ConvLens API over HTTP only (see dashboard/README.md)."""
