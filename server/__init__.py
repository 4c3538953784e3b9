"""ConvLens backend: a pure compute core (``server.engine``), a model zoo (``server.zoo``) and a thin HTTP API."""

__version__ = "0.1.0"
