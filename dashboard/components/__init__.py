"""Plain functions that return Dash component trees; no callbacks, no HTTP. Pages and callbacks call them."""
