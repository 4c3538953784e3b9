"""What each page shows, as plain functions: Dash input values in, output values out.

One module per page. A view calls ``dashboard.api_client`` and builds its outputs from
``dashboard.components`` and ``dashboard.figures``; every ``ApiError`` becomes a readable message in the
page. Views never read Dash's callback context (the callbacks pass ``triggered_id`` in), so unit tests
call them directly with a real API behind the client.
"""
