"""Every knob of ConvLens in one place, read from the environment (prefix ``CONVLENS_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
# Docker/compose secrets: one file per knob, named like its variable in lower case
# (/run/secrets/convlens_api_token), read when the directory exists; the environment wins over them.
SECRETS_DIR = Path("/run/secrets")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONVLENS_",
        env_file=".env",
        extra="ignore",
        secrets_dir=SECRETS_DIR if SECRETS_DIR.is_dir() else None,
    )

    # Compute
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_threads: int = Field(0, ge=0, description="torch intra-op threads; 0 keeps torch's default")
    gil_switch_ms: float = Field(
        0.5,
        ge=0,
        description="how often a thread holding Python's GIL hands it over (sys.setswitchinterval), in ms; "
        "0 keeps Python's 5 ms. Compiled CPU kernels run holding the GIL, so with Python's 5 ms a forward "
        "waits up to 5 ms per kernel for request threads, and so do health checks",
    )
    batch_max: int = Field(
        16,
        ge=0,
        description="dynamic batching: concurrent predict/activations forwards of one model and layer run "
        "as one batch of at most this many inputs; 0 or 1 turns it off",
    )

    compile: Literal["auto", "off"] = Field(
        "auto",
        description="compiled inference (torch.compile): 'auto' compiles predict, activations and dataset "
        "features in the background and serves eager until each compile is ready; 'off' serves eager only",
    )
    compile_after: int = Field(
        3,
        ge=1,
        description="compile a (model, layer, batch bucket) once this many forwards asked for it (the "
        "default model's predict is compiled at start-up)",
    )

    # Storage
    models_dir: Path = REPO_ROOT / "models"
    data_dir: Path = REPO_ROOT / "data"
    allow_weight_downloads: bool = Field(
        False,
        description="let a model load download its missing torchvision/timm weights (needs internet); "
        "`convlens weights pull` needs no such permission: running it is the user's request",
    )
    weights_mirror: str = Field(
        "",
        description="base URL of a lab mirror for `convlens weights pull` (the official file names "
        "under it); empty: the official hosts",
    )
    weights_timeout_seconds: float = Field(
        60.0, gt=0, description="`convlens weights pull`: how long a connection may stay silent"
    )
    user_code_dir: Path | None = Field(
        None,
        description='folder of the Python files that catalogue entries\' `module = "file:Class"` name '
        "(imported: the administrator's code); default <models_dir>/code",
    )
    checkpoint_weights: Literal["ema", "raw"] = Field(
        "ema", description="which weights to load from a checkpoint that holds both raw and EMA weights"
    )
    default_model: str = "efficientnet_lite0"
    preload_default_model: bool = True

    # Upload limits
    max_upload_bytes: int = Field(20 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(50_000_000, gt=0)
    max_archive_bytes: int = Field(
        500 * 1024 * 1024, gt=0, description="total uncompressed bytes of a dataset archive"
    )
    max_archive_files: int = Field(100_000, gt=0)
    max_archive_ratio: float = Field(
        200.0, gt=1, description="largest allowed uncompressed/compressed size per member"
    )

    # DeepVis
    deepvis_second_opinion: str = Field(
        "auto",
        description="zoo id of the model that judges DeepVis class images; 'auto' = a Lite model other "
        "than the rendered one, 'none' = off",
    )

    # GANs (issue 16)
    gan_max_images: int = Field(256, ge=1, description="images one generate request may ask for")
    gan_max_steps: int = Field(64, ge=2, description="images one interpolation strip may ask for")
    gan_max_mode_samples: int = Field(5000, ge=10, description="largest n of GET /gan/{id}/modes")

    # Compare (issue 17)
    cka_max_images: int = Field(
        512, ge=2, description="largest max_images of a CKA comparison (POST /api/v1/compare/cka)"
    )

    # Budgets (issue 12)
    model_memory_bytes: int = Field(
        0, ge=0, description="bytes of loaded models; 0: half of RAM on CPU, 80% of free GPU memory on CUDA"
    )

    cache_max_bytes: int = Field(
        5 * 10**9, gt=0, description="disk for recomputable files under data_dir/cache (LRU-evicted)"
    )

    # Admission control of the synchronous inference routes (predict, activations, attributions)
    model_concurrency: int = Field(
        8,
        ge=1,
        description="requests of one model computed at once (their forwards are batched, see batch_max)",
    )
    max_queue: int = Field(16, ge=0, description="requests of one model waiting beyond those; then 503")
    retry_after_seconds: int = Field(1, ge=1, description="Retry-After of a 503 past the queue")
    shutdown_timeout_seconds: float = Field(
        20.0, gt=0, description="after SIGTERM, how long running requests may take before they are cut"
    )

    # Caches
    result_cache_items: int = Field(64, ge=0, description="in-memory results kept per kind (content-keyed)")

    # Network
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8050
    api_url: str = ""  # how the dashboard reaches the API; defaults to http://api_host:api_port
    public_api_url: str = ""  # how the browser reaches the API (links to PNGs); defaults to api_url
    api_token: str = ""  # when set, every route but /healthz and /readyz needs it
    cors_origins: list[str] = []  # defaults to the dashboard's own origin
    dashboard_debug: bool = False

    # Jobs
    job_backend: Literal["inprocess", "celery"] = "inprocess"
    job_workers: int = Field(2, ge=1)
    redis_url: str = "redis://127.0.0.1:6379/0"
    job_ttl_seconds: int = Field(24 * 3600, gt=0)
    job_heartbeat_seconds: float = Field(
        2.0, gt=0, description="how often a Celery worker says a job is alive"
    )
    job_stale_seconds: float = Field(
        20.0, gt=0, description="a running job whose worker was silent this long is marked failed"
    )
    worker_concurrency: int = Field(1, ge=1, description="jobs one Celery worker process runs at once")

    @property
    def resolved_api_url(self) -> str:
        return (self.api_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def resolved_public_api_url(self) -> str:
        return (self.public_api_url or self.resolved_api_url).rstrip("/")

    @property
    def resolved_cors_origins(self) -> list[str]:
        if self.cors_origins:
            return self.cors_origins
        return [
            f"http://{self.dashboard_host}:{self.dashboard_port}",
            f"http://localhost:{self.dashboard_port}",
        ]

    @property
    def resolved_user_code_dir(self) -> Path:
        return self.user_code_dir or self.models_dir / "code"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def compile_cache_dir(self) -> Path:
        """Inductor's on-disk caches (TORCHINDUCTOR_CACHE_DIR), kept across restarts."""
        return self.data_dir / "compile-cache"

    @property
    def datasets_dir(self) -> Path:
        return self.data_dir / "datasets"


@lru_cache
def get_settings() -> Settings:
    return Settings()
