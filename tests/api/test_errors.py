"""Validation errors raised by a pydantic validator are a readable 422, not a 500."""

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, field_validator

from server.api.errors import install_error_handlers


class Body(BaseModel):
    steps: int

    @field_validator("steps")
    @classmethod
    def positive(cls, v: int) -> int:
        if v <= 0:
            raise ValueError("steps must be positive")
        return v


def test_validator_value_error_is_a_readable_422():
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/x")
    def x(body: Body) -> dict:
        return {"steps": body.steps}

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/x", json={"steps": 0})
        assert r.status_code == 422
        assert "steps must be positive" in r.json()["detail"]
        assert c.post("/x", json={"steps": 3}).json() == {"steps": 3}
