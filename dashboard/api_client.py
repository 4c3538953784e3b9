"""The one module that knows the API's URLs; turns every failure into an ``ApiError`` with a readable message.

Callbacks call the functions of ``ApiClient`` and catch ``ApiError`` to show ``str(error)`` in the page.
Every call is timed (``ApiClient.elapsed_ms`` and the ``timings`` it returns), so the page and the
dashboard benchmark can say how much of a view's time was spent in the API.
"""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

from dashboard.settings import DashboardSettings, get_settings

API = "/api/v1"
ARTIFACT_PREFIX = f"{API}/artifacts/"
# The browser loads artifacts from the dashboard's own origin; dashboard/app.py forwards this prefix to the API.
BROWSER_ARTIFACT_PREFIX = "/api-artifacts/"


class ApiError(Exception):
    """A failed API call, with the message to show the user (the API's ``detail`` when it sent one)."""

    def __init__(self, message: str, status: int | None = None, error: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error = error

    def __str__(self) -> str:
        return self.message


@dataclass
class CallTimer:
    """Milliseconds spent in API calls, summed per request path (thread-safe; one per rendered view)."""

    calls: list[tuple[str, float]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, what: str, ms: float) -> None:
        with self._lock:
            self.calls.append((what, ms))

    @property
    def total_ms(self) -> float:
        return sum(ms for _, ms in self.calls)


def _readable(response: httpx.Response) -> ApiError:
    """An ``ApiError`` from an error response: ``{"detail": ...}`` when the API sent it, else the status."""
    detail: Any = None
    error = None
    try:
        body = response.json()
        if isinstance(body, dict):
            detail, error = body.get("detail"), body.get("error")
    except ValueError:
        pass
    if isinstance(detail, list):  # FastAPI's raw validation list, should a route bypass the handlers
        detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    if not detail:
        detail = f"The API answered {response.status_code} {response.reason_phrase or ''}".strip() + "."
    return ApiError(str(detail), status=response.status_code, error=error)


class ApiClient:
    """Typed calls to the ConvLens API over HTTP. ``http`` may be any ``httpx.Client`` (tests pass a
    Starlette ``TestClient`` of the real app)."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str = "",
        timeout: float = 120.0,
        http: httpx.Client | None = None,
    ) -> None:
        """``http``, when given, must carry its own ``base_url`` (paths here are relative)."""
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = http or httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)
        if http is not None:
            self._http.headers.update(headers)

    @classmethod
    def from_settings(cls, settings: DashboardSettings) -> ApiClient:
        return cls(settings.resolved_api_url, token=settings.api_token)

    # --- transport --------------------------------------------------------------------------------------

    def request(
        self, method: str, path: str, *, timer: CallTimer | None = None, **kwargs: Any
    ) -> httpx.Response:
        start = time.perf_counter()
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ApiError(
                f"The API at {self.base_url} did not answer in time ({type(exc).__name__})."
            ) from exc
        except httpx.TransportError as exc:
            raise ApiError(
                f"Cannot reach the ConvLens API at {self.base_url}: {exc or type(exc).__name__}. "
                "Is it running (python -m server)?"
            ) from exc
        finally:
            if timer is not None:
                timer.add(f"{method} {path.split('?')[0]}", (time.perf_counter() - start) * 1000.0)
        if response.status_code >= 400:
            raise _readable(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(f"The API sent a response that is not JSON for {path}.") from exc

    @staticmethod
    def _params(untrained: bool) -> dict[str, str]:
        return {"untrained": "true"} if untrained else {}

    # --- resources --------------------------------------------------------------------------------------

    def ready(self) -> dict[str, Any]:
        return self._json("GET", "/readyz")

    def models(self, timer: CallTimer | None = None) -> list[dict[str, Any]]:
        return self._json("GET", f"{API}/models", timer=timer)

    def model_card(
        self, model: str, untrained: bool = False, timer: CallTimer | None = None
    ) -> dict[str, Any]:
        return self._json("GET", f"{API}/models/{quote(model)}", params=self._params(untrained), timer=timer)

    def layers(self, model: str, untrained: bool = False, timer: CallTimer | None = None) -> dict[str, Any]:
        return self._json(
            "GET", f"{API}/models/{quote(model)}/layers", params=self._params(untrained), timer=timer
        )

    def predict(
        self,
        model: str,
        image: bytes,
        *,
        filename: str = "image.png",
        untrained: bool = False,
        top_k: int = 5,
        precision: str = "exact",
        timer: CallTimer | None = None,
    ) -> dict[str, Any]:
        return self._json(
            "POST",
            f"{API}/models/{quote(model)}/predict",
            params=self._params(untrained),
            files={"image": (filename, image, "application/octet-stream")},
            data={"top_k": str(top_k), "precision": precision},
            timer=timer,
        )

    def activations(
        self,
        model: str,
        image: bytes | None,
        layer: str,
        *,
        filename: str = "image.png",
        untrained: bool = False,
        latent_seed: int | None = None,
        precision: str = "exact",
        top_k: int | None = None,
        timer: CallTimer | None = None,
    ) -> dict[str, Any]:
        """A layer's activations for an image, or for a generator's latent of ``latent_seed`` (no image); with
        ``top_k`` the image's predictions too, from the same forward."""
        data = {"layer": layer, "precision": precision}
        if latent_seed is not None:
            data["latent_seed"] = str(latent_seed)
        if top_k is not None:
            data["top_k"] = str(top_k)
        return self._json(
            "POST",
            f"{API}/models/{quote(model)}/activations",
            params=self._params(untrained),
            files={"image": (filename, image, "application/octet-stream")} if image is not None else None,
            data=data,
            timer=timer,
        )

    def filter_weights(
        self, model: str, layer: str, index: int, untrained: bool = False, timer: CallTimer | None = None
    ) -> dict[str, Any]:
        return self._json(
            "GET",
            f"{API}/models/{quote(model)}/layers/{quote(layer)}/weights/{int(index)}",
            params=self._params(untrained),
            timer=timer,
        )

    # --- attributions and DeepVis (issue 4) -----------------------------------------------------------

    def attributions(
        self,
        model: str,
        image: bytes,
        *,
        method: str,
        layer: str | None = None,
        channel: int | None = None,
        neuron: int | None = None,
        class_index: int | None = None,
        position: str = "max",
        top_k: int | None = None,
        filename: str = "image.png",
        untrained: bool = False,
        timer: CallTimer | None = None,
    ) -> dict[str, Any]:
        fields = {
            "method": method,
            "layer": layer,
            "channel": channel,
            "neuron": neuron,
            "class_index": class_index,
            "position": position,
            "top_k": top_k,
        }
        return self._json(
            "POST",
            f"{API}/models/{quote(model)}/attributions",
            params=self._params(untrained),
            files={"image": (filename, image, "application/octet-stream")},
            data={k: str(v) for k, v in fields.items() if v is not None},
            timer=timer,
        )

    def _start_model_job(
        self, model: str, route: str, body: dict[str, Any], untrained: bool, timer: CallTimer | None
    ) -> dict[str, Any]:
        """``POST /models/{model}/{route}`` with a JSON body: the job-start reply."""
        path = f"{API}/models/{quote(model)}/{route}"
        return self._json("POST", path, params=self._params(untrained), json=body, timer=timer)

    def start_weights_pull(self, model: str, timer: CallTimer | None = None) -> dict[str, Any]:
        """``POST /models/{model}/weights/pull``: download the official weights as a job (when the API allows)."""
        return self._json("POST", f"{API}/models/{quote(model)}/weights/pull", timer=timer)

    def start_deepvis(
        self, model: str, body: dict[str, Any], untrained: bool = False, timer: CallTimer | None = None
    ) -> dict[str, Any]:
        return self._start_model_job(model, "deepvis", body, untrained, timer)

    def start_top_images(
        self, model: str, body: dict[str, Any], untrained: bool = False, timer: CallTimer | None = None
    ) -> dict[str, Any]:
        return self._start_model_job(model, "top-images", body, untrained, timer)

    # --- datasets and projections (issue 5) ----------------------------------------------------------

    def datasets(self, timer: CallTimer | None = None) -> list[dict[str, Any]]:
        return self._json("GET", f"{API}/datasets", timer=timer)

    def create_dataset(
        self,
        name: str,
        *,
        archive: tuple[str, bytes] | None = None,
        images: list[tuple[str, bytes]] | None = None,
        labels: list[str] | None = None,
        timer: CallTimer | None = None,
    ) -> dict[str, Any]:
        """Upload a zip (``archive``) or many image files (``images``) as a new dataset."""
        files: list[tuple[str, tuple[str, bytes, str]]] = []
        if archive is not None:
            files.append(("archive", (archive[0], archive[1], "application/zip")))
        for fname, data in images or []:
            files.append(("images", (fname, data, "application/octet-stream")))
        data: dict[str, Any] = {"name": name}
        if labels:
            data["labels"] = labels
        return self._json("POST", f"{API}/datasets", data=data, files=files, timer=timer)

    def dataset_thumbnail(self, dataset: str, index: int, timer: CallTimer | None = None) -> bytes:
        return self.request(
            "GET", f"{API}/datasets/{quote(dataset)}/thumbnails/{int(index)}", timer=timer
        ).content

    def dataset_image(self, dataset: str, index: int, timer: CallTimer | None = None) -> bytes:
        return self.request(
            "GET", f"{API}/datasets/{quote(dataset)}/images/{int(index)}", timer=timer
        ).content

    def projection_methods(self, timer: CallTimer | None = None) -> dict[str, list[dict[str, Any]]]:
        return self._json("GET", f"{API}/projections/methods", timer=timer)

    def perplexity_guidance(self, n: int, timer: CallTimer | None = None) -> dict[str, Any]:
        return self._json("GET", f"{API}/projections/perplexity-guidance", params={"n": n}, timer=timer)

    def start_projection(self, body: dict[str, Any], timer: CallTimer | None = None) -> dict[str, Any]:
        return self._json("POST", f"{API}/projections", json=body, timer=timer)

    def steer_projection(
        self, job_id: str, values: dict[str, Any], timer: CallTimer | None = None
    ) -> dict[str, Any]:
        return self._json("PATCH", f"{API}/projections/{quote(job_id)}", json=values, timer=timer)

    def projection_points(self, job_id: str, timer: CallTimer | None = None) -> dict[str, Any]:
        return self._json("GET", f"{API}/projections/{quote(job_id)}/points", timer=timer)

    def projection_activation(
        self, job_id: str, channel: int, timer: CallTimer | None = None
    ) -> dict[str, Any]:
        return self._json(
            "GET",
            f"{API}/projections/{quote(job_id)}/activation",
            params={"channel": int(channel)},
            timer=timer,
        )

    def projection_csv(self, job_id: str, timer: CallTimer | None = None) -> str:
        return self.request("GET", f"{API}/projections/{quote(job_id)}/export.csv", timer=timer).text

    def start_audit(self, body: dict[str, Any], timer: CallTimer | None = None) -> dict[str, Any]:
        return self._json("POST", f"{API}/audits", json=body, timer=timer)

    def audit_thresholds(self, timer: CallTimer | None = None) -> dict[str, float]:
        return self._json("GET", f"{API}/audits/thresholds", timer=timer)

    def checkpoints(self, model: str, timer: CallTimer | None = None) -> list[str]:
        return self._json("GET", f"{API}/checkpoints/{quote(model)}", timer=timer)["checkpoints"]

    def start_checkpoint_compare(
        self, body: dict[str, Any], timer: CallTimer | None = None
    ) -> dict[str, Any]:
        return self._json("POST", f"{API}/checkpoints/compare", json=body, timer=timer)

    def compare(
        self,
        image: bytes,
        form: dict[str, str],
        *,
        filename: str = "image.png",
        timer: CallTimer | None = None,
    ) -> dict[str, Any]:
        """One image through two sides: ``form`` holds model_a, checkpoint_a, layer_a, model_b, ... (strings)."""
        return self._json(
            "POST",
            f"{API}/compare",
            files={"image": (filename, image, "application/octet-stream")},
            data={k: v for k, v in form.items() if v not in (None, "")},
            timer=timer,
        )

    def start_cka(self, body: dict[str, Any], timer: CallTimer | None = None) -> dict[str, Any]:
        return self._json("POST", f"{API}/compare/cka", json=body, timer=timer)

    def gan_generate(self, gan: str, body: dict[str, Any], timer: CallTimer | None = None) -> dict[str, Any]:
        return self._json("POST", f"{API}/gan/{quote(gan)}/generate", json=body, timer=timer)

    def gan_interpolate(
        self, gan: str, body: dict[str, Any], timer: CallTimer | None = None
    ) -> dict[str, Any]:
        return self._json("POST", f"{API}/gan/{quote(gan)}/interpolate", json=body, timer=timer)

    def gan_training(self, gan: str, timer: CallTimer | None = None) -> dict[str, Any]:
        return self._json("GET", f"{API}/gan/{quote(gan)}/training", timer=timer)

    def gan_modes(self, gan: str, n: int = 1000, timer: CallTimer | None = None) -> dict[str, Any]:
        return self._json("GET", f"{API}/gan/{quote(gan)}/modes", params={"n": str(n)}, timer=timer)

    # --- recurrent models (issue 15) ------------------------------------------------------------------

    def sequence(
        self,
        model: str,
        *,
        dataset: str | None = None,
        index: int | None = None,
        image: bytes | None = None,
        filename: str = "image.png",
        untrained: bool = False,
        timer: CallTimer | None = None,
    ) -> dict[str, Any]:
        """One digit step by step: a dataset item (``dataset`` + ``index``) or an uploaded ``image``."""
        path = f"{API}/models/{quote(model)}/sequence"
        if image is not None:
            files = {"image": (filename, image, "application/octet-stream")}
            return self._json("POST", path, params=self._params(untrained), files=files, timer=timer)
        body = {"dataset": dataset, "index": index}
        return self._json("POST", path, params=self._params(untrained), json=body, timer=timer)

    def gate_stats(
        self,
        model: str,
        dataset: str = "digits",
        bins: int = 20,
        untrained: bool = False,
        timer: CallTimer | None = None,
    ) -> dict[str, Any]:
        params = {"dataset": dataset, "bins": str(bins), **self._params(untrained)}
        return self._json("GET", f"{API}/models/{quote(model)}/gate-stats", params=params, timer=timer)

    def gradient_flow(
        self,
        models: list[str],
        dataset: str = "digits",
        limit: int = 256,
        snapshot: str | None = None,
        timer: CallTimer | None = None,
    ) -> dict[str, Any]:
        params = {"models": ",".join(models), "dataset": dataset, "limit": str(limit)}
        if snapshot is not None:
            params["snapshot"] = snapshot
        return self._json("GET", f"{API}/recurrent/gradient-flow", params=params, timer=timer)

    def gradient_flow_exploding(
        self,
        dataset: str = "digits",
        limit: int = 256,
        clip: float = 1.0,
        gain: float | None = None,
        timer: CallTimer | None = None,
    ) -> dict[str, Any]:
        params = {"dataset": dataset, "limit": str(limit), "clip": str(clip)}
        if gain is not None:
            params["gain"] = str(gain)
        return self._json("GET", f"{API}/recurrent/gradient-flow/exploding", params=params, timer=timer)

    def job(self, job_id: str, since: int | None = None, timer: CallTimer | None = None) -> dict[str, Any]:
        params = {"since": str(since)} if since is not None else {}
        return self._json("GET", f"{API}/jobs/{quote(job_id)}", params=params, timer=timer)

    def cancel_job(self, job_id: str, timer: CallTimer | None = None) -> dict[str, Any]:
        return self._json("DELETE", f"{API}/jobs/{quote(job_id)}", timer=timer)

    def artifact(self, path: str, timer: CallTimer | None = None) -> httpx.Response:
        """GET an artifact by the URL path the API returned (``/api/v1/artifacts/<key>/<name>``)."""
        if not path.startswith(ARTIFACT_PREFIX):
            raise ApiError(f"Not an artifact path: {path!r}.", status=404)
        return self.request("GET", path, timer=timer)

    def artifact_array(self, path: str, timer: CallTimer | None = None) -> np.ndarray:
        """A ``.npy`` artifact (by the URL path the API returned) as an array."""
        try:
            return np.load(io.BytesIO(self.artifact(path, timer=timer).content), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ApiError(f"The API sent an artifact that is not a .npy array: {path}.") from exc


def browser_url(artifact_path: str) -> str:
    """The URL the browser loads for an API artifact path: the dashboard's own proxy route."""
    if not artifact_path.startswith(ARTIFACT_PREFIX):
        raise ValueError(f"not an artifact path: {artifact_path!r}")
    return BROWSER_ARTIFACT_PREFIX + artifact_path[len(ARTIFACT_PREFIX) :]


_client: ApiClient | None = None
_client_lock = threading.Lock()


def get_client() -> ApiClient:
    """The process-wide client, built from settings on first use (``set_client`` replaces it in tests)."""
    global _client
    with _client_lock:
        if _client is None:
            _client = ApiClient.from_settings(get_settings())
        return _client


def set_client(client: ApiClient | None) -> None:
    global _client
    with _client_lock:
        _client = client
