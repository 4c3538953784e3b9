"""CI gates read and evaluated on a real audit."""

from __future__ import annotations

import pytest

from server.engine.audit.gates import parse_gates
from server.errors import InvalidInputError


def test_gates_parse_and_evaluate(planted_result):
    summary = planted_result.summary()  # 3 dead of 250 filters = 1.2 %
    assert [str(g) for g in parse_gates("dead>5%, redundant>=2")] == ["dead>5%", "redundant>=2"]
    assert not parse_gates("dead>5%")[0].failed(summary)
    assert parse_gates("dead>1%")[0].failed(summary)
    assert parse_gates("positive_layers>0")[0].failed(summary)
    for bad in ("dead", "dead>>5", "zombies>1", ""):
        with pytest.raises(InvalidInputError):
            parse_gates(bad)
