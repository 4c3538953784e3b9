"""Neuron audit: dead, saturated, near-constant and redundant filters, positive-only layers,
layer similarity (linear CKA), cluster-to-next-layer drive, class separability per layer,
checkpoint comparison and what-if zeroing.

One forward pass over a dataset feeds streaming per-channel statistics for every conv and linear
layer (:mod:`.stats`) at the point where its units are judged (:mod:`.response`); everything else is
computed from those statistics and the weights by pure functions that also take plain arrays
(:mod:`.checks`, :mod:`.similarity`), so they are tested on hand-set values. :mod:`.run` is the
audit itself; :mod:`.gates`, :mod:`.checkpoints` and :mod:`.whatif` build on it.
"""

from server.engine.audit.checkpoints import (
    ChangedFilter,
    CheckpointComparison,
    LayerUpdate,
    check_same_architecture,
    compare_series,
    compare_state_dicts,
    epoch_of,
    most_changed_filters,
)
from server.engine.audit.checks import (
    Redundancy,
    dead_filters,
    low_variance_filters,
    positive_weight_share,
    redundant_filters,
    saturated_units,
    weight_cosine,
)
from server.engine.audit.gates import GATE_METRICS, Gate, parse_gates
from server.engine.audit.response import (
    ResponsePoint,
    at_response_points,
    output_channels,
    response_points,
)
from server.engine.audit.results import KINDS, AuditResult, Batch, FilterFlag, LayerAudit
from server.engine.audit.run import analyse, audit_model
from server.engine.audit.similarity import (
    best_matches,
    centred_gram,
    cka_between,
    cka_from_grams,
    cluster_drive,
    correlation_clusters,
    input_drive,
    knn_purity_from_gram,
    linear_cka,
)
from server.engine.audit.stats import ChannelAccumulator, ChannelStatistics, correlation_from_comoment
from server.engine.audit.thresholds import AuditThresholds
from server.engine.audit.whatif import WhatIf, accuracy_on, what_if_zeroing

__all__ = [
    "GATE_METRICS",
    "KINDS",
    "AuditResult",
    "AuditThresholds",
    "Batch",
    "ChangedFilter",
    "ChannelAccumulator",
    "ChannelStatistics",
    "CheckpointComparison",
    "FilterFlag",
    "Gate",
    "LayerAudit",
    "LayerUpdate",
    "Redundancy",
    "ResponsePoint",
    "WhatIf",
    "accuracy_on",
    "analyse",
    "at_response_points",
    "audit_model",
    "best_matches",
    "centred_gram",
    "check_same_architecture",
    "cka_between",
    "cka_from_grams",
    "cluster_drive",
    "compare_series",
    "compare_state_dicts",
    "correlation_clusters",
    "correlation_from_comoment",
    "dead_filters",
    "epoch_of",
    "input_drive",
    "knn_purity_from_gram",
    "linear_cka",
    "low_variance_filters",
    "most_changed_filters",
    "output_channels",
    "parse_gates",
    "positive_weight_share",
    "redundant_filters",
    "response_points",
    "saturated_units",
    "weight_cosine",
    "what_if_zeroing",
]
