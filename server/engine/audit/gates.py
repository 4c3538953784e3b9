"""Gates for CI: ``'dead>5%, redundant>=3'`` fails a build when the audit finds too much."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from server.engine.audit.results import KINDS
from server.errors import InvalidInputError

GATE_METRICS = (*KINDS, "flagged", "positive_layers", "redundant_layers")
_GATE_RE = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|>|<|==)\s*([0-9]*\.?[0-9]+)\s*(%?)\s*$")


@dataclass(frozen=True)
class Gate:
    metric: str
    op: str
    value: float
    percent: bool

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}{'%' if self.percent else ''}"

    def measure(self, summary: dict[str, Any]) -> float:
        if self.metric in KINDS:
            return summary["percent" if self.percent else "counts"][self.metric]
        if self.metric == "flagged":
            return summary["flagged_percent" if self.percent else "flagged"]
        if self.percent:
            total = max(summary["layers"], 1)
            return 100.0 * summary[self.metric] / total
        return summary[self.metric]

    def failed(self, summary: dict[str, Any]) -> bool:
        v = self.measure(summary)
        return {
            ">": v > self.value,
            ">=": v >= self.value,
            "<": v < self.value,
            "<=": v <= self.value,
            "==": v == self.value,
        }[self.op]


def parse_gates(spec: str) -> list[Gate]:
    """``'dead>5%, redundant>=3'`` -> gates that fail when the condition holds."""
    gates = []
    for part in [p for p in re.split(r"[,;]", spec or "") if p.strip()]:
        m = _GATE_RE.match(part.lower())
        if not m or m.group(1) not in GATE_METRICS:
            raise InvalidInputError(
                f"Cannot read the gate '{part.strip()}': write METRIC OP NUMBER[%], e.g. 'dead>5%', "
                f"with METRIC one of {', '.join(GATE_METRICS)} and OP one of > >= < <= ==."
            )
        gates.append(Gate(m.group(1), m.group(2), float(m.group(3)), m.group(4) == "%"))
    if not gates:
        raise InvalidInputError("The gate is empty; write e.g. 'dead>5%'.")
    return gates
