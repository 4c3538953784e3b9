"""Recurrent models over time: a digit's sequence trace, gate statistics over a dataset, gradient flow (issue 15).

Application logic over :mod:`server.engine.recurrent` and the zoo; no web imports. Arrays go to the
artifact store as .npy (units x time); their PNG heat maps are rendered on first GET
(:meth:`server.explore.ExploreService.render_on_demand`, ``<array>_heatmap.png``).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch
from PIL import Image

from server.artifacts import ArtifactStore, content_key
from server.datasets.store import DatasetStore
from server.engine import recurrent as rec
from server.engine.features import image_batches
from server.engine.imaging import npy_bytes
from server.errors import InvalidInputError, NotFoundError
from server.zoo.manager import LoadedModel, ZooManager

MAX_GRADIENT_IMAGES = 1024
EXPLODING_SCALE = 2.0  # gain of the exploding RNN's random recurrent matrix (chaotic above 1)
EXPLODING_HIDDEN = 64
EXPLODING_SEED = 0


def recurrent_ids(zoo: ZooManager) -> list[str]:
    return [s.card.id for s in zoo.specs() if s.card.kind == "recurrent"]


class RecurrentService:
    def __init__(self, zoo: ZooManager, datasets: DatasetStore, artifacts: ArtifactStore) -> None:
        self.zoo = zoo
        self.datasets = datasets
        self.artifacts = artifacts
        self._inputs: dict[tuple[str, str], tuple[torch.Tensor, np.ndarray]] = {}
        self._lock = threading.Lock()

    # --- inputs -------------------------------------------------------------------------------------------

    def load(self, model_id: str, untrained: bool = False) -> LoadedModel:
        """A loaded recurrent model; a model of another kind is a 422 that names the recurrent ones."""
        card = self.zoo.card(model_id)  # 404 with suggestions
        if card.kind != "recurrent":
            raise InvalidInputError(
                f"Model '{model_id}' is a {card.kind} model; this needs a recurrent model "
                f"({', '.join(recurrent_ids(self.zoo))})."
            )
        return self.zoo.load(model_id, untrained)

    def dataset_inputs(self, lm: LoadedModel, dataset_id: str) -> tuple[torch.Tensor, np.ndarray]:
        """Every image of the dataset preprocessed for ``lm`` (N, C, H, W) and its label indices (cached)."""
        info = self.datasets.get(dataset_id)  # 404 with suggestions
        key = (dataset_id, f"{info.num_images}:{lm.card.preprocessing}")
        with self._lock:
            hit = self._inputs.get(key)
        if hit is None:
            images = (img for _, img in self.datasets.iter_images(dataset_id))
            x = torch.cat(list(image_batches(images, lm.prep, 256)))
            labels, _ = self.datasets.labels(dataset_id)
            hit = (x, labels)
            with self._lock:
                self._inputs = {key: hit, **{k: v for k, v in self._inputs.items() if k != key}}
                while len(self._inputs) > 4:
                    self._inputs.pop(next(reversed(self._inputs)))
        return hit

    def dataset_item(
        self, lm: LoadedModel, dataset_id: str, index: int
    ) -> tuple[torch.Tensor, int | None, str]:
        info = self.datasets.get(dataset_id)
        if not 0 <= index < info.num_images:
            raise InvalidInputError(
                f"Index {index} is out of range: dataset '{dataset_id}' has {info.num_images} images "
                f"(0..{info.num_images - 1})."
            )
        x, labels = self.dataset_inputs(lm, dataset_id)
        return x[index : index + 1], int(labels[index]), f"{dataset_id}:{index}"

    # --- one sequence -------------------------------------------------------------------------------------

    def sequence_of_image(self, lm: LoadedModel, img: Image.Image, sha: str) -> dict[str, Any]:
        x, _ = lm.preprocess(img)
        return self.sequence(lm, x, None, f"upload:{sha[:16]}")

    def sequence(self, lm: LoadedModel, x: torch.Tensor, label: int | None, source: str) -> dict[str, Any]:
        """Every step of one digit: hidden state, gates, cell state (as .npy + heat-map links) and the prediction."""
        model = lm.model
        with lm.lock:
            seq = model.to_sequence(x.to(lm.device))
            tr = rec.trace_sequence(model.rnn, model.readout, seq.cpu() if lm.device.type == "cpu" else seq)
        key = content_key(lm.cache_key, source, "sequence")
        arrays: dict[str, np.ndarray] = {"hidden": tr.hidden[0].T}  # units x time
        arrays.update({f"gate_{g}": v[0].T for g, v in tr.gates.items()})
        if tr.cell is not None:
            arrays["cell"] = tr.cell[0].T
        links = {}
        for name, arr in arrays.items():
            if not self.artifacts.exists(key, f"{name}.npy"):
                self.artifacts.put(key, f"{name}.npy", npy_bytes(np.ascontiguousarray(arr, dtype=np.float32)))
            links[name] = {
                "npy_url": self.artifacts.url(key, f"{name}.npy"),
                "png_url": self.artifacts.url(key, f"{name}_heatmap.png"),
                "shape": list(arr.shape),
                "min": float(arr.min()),
                "max": float(arr.max()),
            }
        assert tr.probabilities is not None
        probs = tr.probabilities[0]  # (T, C)
        labels = lm.card.labels
        pred = probs.argmax(1)
        final = int(pred[-1])
        settled = int(np.flatnonzero(pred != final).max() + 2) if (pred != final).any() else 1
        return {
            **lm.describe(),
            "kind": tr.kind,
            "source": source,
            "label": None if label is None else labels[label],
            "steps": tr.steps,
            "hidden_size": int(tr.hidden.shape[-1]),
            "inputs": [float(v) for v in tr.inputs[0, :, 0]],
            "reading_order": [int(i) for i in model.order.tolist()],
            "arrays": links,
            "gates": list(tr.gates),
            "prediction": {
                "label": labels[final],
                "probability": float(probs[-1, final]),
                "settled_at_step": settled,  # the first step from which the prediction stays the final one
            },
            # how the answer forms over time: after each step, the top class and every class's probability
            "per_step": {
                "predicted": [labels[int(i)] for i in pred],
                "confidence": [float(probs[t, pred[t]]) for t in range(len(pred))],
                "probabilities": np.round(probs, 5).tolist(),
            },
        }

    # --- dataset-wide ---------------------------------------------------------------------------------------

    def gate_stats(self, lm: LoadedModel, dataset_id: str, bins: int = 20) -> dict[str, Any]:
        """Left/right saturation per unit and gate over every step of every image; the forget-gate histogram."""
        if not 2 <= bins <= 200:
            raise InvalidInputError("bins must be between 2 and 200.")
        x, _ = self.dataset_inputs(lm, dataset_id)
        model = lm.model
        with lm.lock:
            tr = rec.trace_sequence(model.rnn, None, model.to_sequence(x.to(lm.device)).cpu())
        if tr.kind == "rnn":
            raise InvalidInputError(
                f"Model '{lm.card.id}' is a plain RNN: it has no gates. Use an LSTM or GRU "
                f"({', '.join(i for i in recurrent_ids(self.zoo) if i != lm.card.id)})."
            )
        st = rec.gate_stats(tr.gates, tr.kind, bins=bins)
        hist = None
        if st.histogram_counts is not None and st.histogram_edges is not None:
            hist = {
                "gate": st.histogram_gate,
                "edges": st.histogram_edges.tolist(),
                "counts": st.histogram_counts.tolist(),
                "share_below_0_1": float((tr.gates[st.histogram_gate] < rec.LEFT_SATURATED).mean()),
                "share_above_0_9": float((tr.gates[st.histogram_gate] > rec.RIGHT_SATURATED).mean()),
                "share_between": float(
                    (
                        (tr.gates[st.histogram_gate] >= rec.LEFT_SATURATED)
                        & (tr.gates[st.histogram_gate] <= rec.RIGHT_SATURATED)
                    ).mean()
                ),
            }
        return {
            **lm.describe(),
            "dataset": dataset_id,
            "images": int(x.shape[0]),
            "steps_counted": st.steps_counted,
            "thresholds": {"left": rec.LEFT_SATURATED, "right": rec.RIGHT_SATURATED},
            "gates": {
                g: {
                    "left_saturated": st.left[g].round(6).tolist(),
                    "right_saturated": st.right[g].round(6).tolist(),
                }
                for g in st.left
            },
            "histogram": hist,
        }

    def gradient_flow(
        self, model_ids: list[str], dataset_id: str, limit: int = 256, snapshot: str | None = None
    ) -> dict[str, Any]:
        """Mean ||dLoss/dh_t|| for every t, per model, on the first ``limit`` images of the dataset."""
        if not model_ids:
            raise InvalidInputError("Name at least one model in 'models'.")
        if not 1 <= limit <= MAX_GRADIENT_IMAGES:
            raise InvalidInputError(f"limit must be between 1 and {MAX_GRADIENT_IMAGES}.")
        curves = {}
        for model_id in dict.fromkeys(model_ids):
            lm = self.load(model_id)
            x, labels = self.dataset_inputs(lm, dataset_id)
            model = lm.model if snapshot is None else self._snapshot(lm, snapshot)
            y = torch.from_numpy(labels[:limit]).to(lm.device)
            with lm.lock:
                flow = rec.gradient_flow(
                    model.rnn, model.readout, model.to_sequence(x[:limit].to(lm.device)), y
                )
            curves[model_id] = _curve(flow)
        return {
            "dataset": dataset_id,
            "images": min(limit, len(labels)),
            "snapshot": snapshot,
            "models": curves,
        }

    def _snapshot(self, lm: LoadedModel, snapshot: str) -> torch.nn.Module:
        from server.zoo.checkpoints import load_into, read_state_dict

        path = self.zoo.spec(lm.card.id).locate_weights().path
        assert path is not None
        snaps = {p.stem: p for p in sorted(path.parent.glob("epoch_*.safetensors"))}
        if snapshot not in snaps:
            raise NotFoundError.with_suggestions("snapshot", snapshot, snaps)
        model = self.zoo.spec(lm.card.id).build().to(lm.device).eval()
        load_into(model, read_state_dict(snaps[snapshot]))
        return model

    def exploding(
        self, dataset_id: str, limit: int = 256, clip: float = 1.0, scale: float = EXPLODING_SCALE
    ) -> dict:
        """A plain tanh RNN initialised to explode (orthogonal recurrent matrix x ``scale``, small inputs, no bias),
        its gradient flow without clipping and with each step's backpropagated gradient clipped to ``clip``."""
        if not clip > 0:
            raise InvalidInputError("clip must be a positive norm.")
        if not 1.0 <= scale <= 10.0:
            raise InvalidInputError("scale must be between 1 and 10.")
        if not 1 <= limit <= MAX_GRADIENT_IMAGES:
            raise InvalidInputError(f"limit must be between 1 and {MAX_GRADIENT_IMAGES}.")
        ref = self.load(recurrent_ids(self.zoo)[0])
        x, labels = self.dataset_inputs(ref, dataset_id)
        rnn, readout = rec.exploding_rnn(EXPLODING_HIDDEN, 10, gain=scale, seed=EXPLODING_SEED)
        seq = ref.model.to_sequence(x[:limit])
        y = torch.from_numpy(labels[:limit])
        plain = rec.gradient_flow(rnn, readout, seq, y)
        clipped = rec.gradient_flow(rnn, readout, seq, y, clip=clip)
        return {
            "dataset": dataset_id,
            "images": len(y),
            "scale": scale,
            "clip": clip,
            "models": {"exploding_rnn": _curve(plain), "exploding_rnn_clipped": _curve(clipped)},
        }


def _curve(flow: rec.GradientFlow) -> dict[str, Any]:
    return {
        "norms": [float(v) for v in flow.norms],
        "first_to_last_ratio": flow.ratio,
        "loss": flow.loss,
        "clip": flow.clip,
    }
